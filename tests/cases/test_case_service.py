"""The one write path: validation, versions, history, audit, concurrency."""

import pytest

from registry3d.audit.digests import digest, digest_changes
from registry3d.audit.models import AuditEvent
from registry3d.audit.services import verify_chain
from registry3d.cases import services
from registry3d.cases.errors import CaseExists, InvalidCase, NotAllowed, StaleVersion
from registry3d.cases.models import Case, CaseVersion
from registry3d.lib.pseudonym import patient_key
from tests.cases.conftest import a_case


def save(world, labels, uid="C-1", status="submitted", **options):
    data = options.pop("data", None) or a_case(1, labels)
    return services.save_case(
        world.site_a, case_uid=uid, data=data, status=status, actor=world.alice, **options
    )


def test_a_case_is_created_with_its_version_history_and_audit(world, printers):
    result = save(world, printers[0])
    case = result.case
    assert (result.created, result.changed, case.version, case.status) == (
        True,
        True,
        1,
        "submitted",
    )
    assert case.dictionary_version == "1.1.0"
    assert case.object_type == case.data["object_type"]
    assert case.case_month == case.data["case_year_month"]
    version = CaseVersion.objects.get(case=case)
    # The first version stores no changes (they would repeat its data); it
    # says it changed every value from nothing.
    assert version.changes == {}
    assert version.changed["age_years"] == [None, case.data["age_years"]]
    assert version.changed == services.differences({}, case.data)
    event = AuditEvent.objects.get(action="case.submitted")
    assert (event.object_id, event.site, event.actor) == ("C-1", world.site_a, world.alice)
    # The trail names the element with a keyed digest, never the value.
    assert event.changes["elements"]["sex"] == [None, digest(case.data["sex"])]
    assert set(event.changes["elements"]) == set(version.changed)


def test_the_same_content_twice_is_one_version(world, printers):
    data = a_case(2, printers[0])
    first = save(world, printers[0], data=data)
    again = save(world, printers[0], data=dict(data))
    assert (again.changed, again.case.version) == (False, 1)
    assert CaseVersion.objects.filter(case=first.case).count() == 1
    assert AuditEvent.objects.filter(object_id="C-1").count() == 1


def test_a_change_is_a_new_version_recording_what_changed(world, printers):
    data = a_case(3, printers[0])
    save(world, printers[0], data=data)
    result = save(world, printers[0], data=dict(data, age_years=data["age_years"] + 1))
    assert result.case.version == 2
    latest = CaseVersion.objects.get(case=result.case, version=2)
    assert latest.changes == {"age_years": [data["age_years"], data["age_years"] + 1]}
    event = AuditEvent.objects.get(action="case.updated")
    assert event.changes["elements"] == digest_changes(latest.changes)
    assert verify_chain().ok is True


def test_a_stale_version_changes_nothing_and_says_what_changed(world, printers):
    data = a_case(4, printers[0])
    save(world, printers[0], data=data)
    save(world, printers[0], data=dict(data, age_years=20), expected_version=1)
    with pytest.raises(StaleVersion) as caught:
        save(world, printers[0], data=dict(data, sex="unknown"), expected_version=1)
    assert caught.value.changes == {"age_years": [data["age_years"], 20]}
    case = Case.objects.get()
    assert (case.version, case.data["age_years"], case.data["sex"]) == (2, 20, data["sex"])


def test_a_draft_may_be_incomplete_but_a_submission_lists_every_problem(world, printers):
    draft = save(world, printers[0], status="draft", data={"object_type": "anatomic_guide"})
    assert draft.case.status == "draft"
    with pytest.raises(InvalidCase) as caught:
        save(world, printers[0], status="submitted", data={"object_type": "anatomic_guide"})
    paths = {p.path for p in caught.value.problems}
    assert {"sex", "guide_type", "prints", "effort_cad_clinician"} <= paths
    assert Case.objects.get().status == "draft"


def test_a_printer_of_another_site_is_refused(world, printers):
    data = a_case(5, printers[1])  # labels exist at site B only
    data["prints"][0]["printer_label"] = "NOT-AT-A"
    with pytest.raises(InvalidCase) as caught:
        save(world, printers[0], data=data)
    assert ("prints[1].printer_label", "rule_R6") in {
        (p.path, p.code) for p in caught.value.problems
    }


@pytest.mark.parametrize(
    "uid, key, message",
    [
        ("bad uid!", None, "Case ID: use 1 to 64 letters, digits, - or _"),
        ("C-2", "1234567", "Patient key: expected the pseudonymous key"),
        ("C-2", "12345678901234567890", "Patient key: expected the pseudonymous key"),
        ("C-2", "JohnSmith19500303", "Patient key: expected the pseudonymous key"),
        ("C-2", "a" * 63, "Patient key: expected the pseudonymous key"),
        ("C-2", "A" * 64, "Patient key: expected the pseudonymous key"),
        ("C-2", "g" * 64, "Patient key: expected the pseudonymous key"),
        ("123-45-6789", None, "Case ID: looks like a Social Security number; use your site's"),
        ("123456789", None, "Case ID: looks like a Social Security number"),
        ("1950-03-03", None, "Case ID: looks like a date; use your site's own case identifier"),
        ("19500303", None, "Case ID: looks like a date"),
        ("03-03-1950", None, "Case ID: looks like a date"),
        ("1950/03/03", None, "Case ID: looks like a date"),
        ("CASE-1950-03-03", None, "Case ID: looks like a date"),
        ("617-555-0100", None, "Case ID: looks like a phone number"),
        ("6175550100", None, "Case ID: looks like a phone number"),
        ("(617)555-0100", None, "Case ID: looks like a phone number"),
        ("jsmith@example.org", None, "Case ID: looks like an e-mail address"),
    ],
)
def test_record_fields_are_checked(world, printers, uid, key, message):
    with pytest.raises(InvalidCase) as caught:
        save(world, printers[0], uid=uid, patient_key=key)
    assert caught.value.problems[0].message.startswith(message)
    assert Case.objects.exists() is False


def test_a_refused_case_id_is_named_with_the_rule_and_never_echoed(world, printers):
    with pytest.raises(InvalidCase) as caught:
        save(world, printers[0], uid="1950-03-03")
    assert caught.value.problems[0].message == (
        "Case ID: looks like a date; use your site's own case identifier, never a name, "
        "record number, date, phone number, SSN or e-mail"
    )
    assert services.shown_case_uid("1950-03-03") == ""
    assert services.shown_case_uid("CASE-7") == "CASE-7"


@pytest.mark.parametrize(
    ("uid", "kind"),
    [
        ("Smith_John_MRN1234567", "a medical record or account number"),
        ("Garcia_Maria_MRN7654321", "a medical record or account number"),
        ("MRN00123456", "a medical record or account number"),
        ("Smith-John", "a person's name"),
        ("B-1234567", "a long number that may be a record number"),
    ],
)
def test_a_case_id_that_holds_a_name_or_a_record_number_is_refused(world, printers, uid, kind):
    """Well formed, but a case ID lands in every export and audit event (#15)."""
    with pytest.raises(InvalidCase) as caught:
        save(world, printers[0], uid=uid)
    assert [p.message for p in caught.value.problems] == [
        f"Case ID: looks like {kind}; use your site's own case identifier, never a name, "
        "record number, date, phone number, SSN or e-mail"
    ]
    assert services.shown_case_uid(uid) == ""
    assert Case.objects.exists() is False


@pytest.mark.parametrize(
    "uid",
    [
        "CASE-7",
        "3DP-2026-0042",
        "2026-017",
        "A12",
        "42",
        "SITE_2026_001",
        "ALPHA-CASE-000",
        "HOT-0",
        "NE-1",
        "BASE-1",
        "C-1",
        "DEMO01-00001",
        "R-IMP-00001",
        "B-0012-3456",
        "R-123456",
    ],
)
def test_lab_case_ids_are_accepted(world, printers, uid):
    assert services.case_uid_kind(uid) is None
    assert services.check_record(uid, None, "draft") == []


def test_only_a_key_the_registry_made_is_a_patient_key(world):
    key = patient_key("SITEA", "12345678")
    assert services.check_record("C-1", key, "draft") == []
    assert services.check_record("C-1", key.upper(), "draft")[0].path == "patient_key"


def test_identifiers_in_free_text_are_refused_naming_the_field(world, printers):
    data = a_case(6, printers[0], ua_comment="Spoke with Mrs. Jones about it")
    with pytest.raises(InvalidCase) as caught:
        save(world, printers[0], data=data)
    assert [(p.path, p.code) for p in caught.value.problems] == [
        ("ua_comment", "identifier_suspected")
    ]


def test_ages_over_89_are_stored_as_90(world, printers):
    result = save(world, printers[0], data=a_case(7, printers[0], age_years=97))
    assert result.case.data["age_years"] == 90


def test_a_submitted_case_stays_submitted_and_a_withdrawn_one_is_frozen(world, printers):
    data = a_case(8, printers[0])
    result = save(world, printers[0], data=data)
    with pytest.raises(NotAllowed, match="stays submitted"):
        save(world, printers[0], status="draft", data=data)
    services.withdraw_case(result.case, "Entered twice", actor=world.alice)
    with pytest.raises(NotAllowed, match="was withdrawn"):
        save(world, printers[0], data=dict(data, age_years=1))
    case = Case.objects.get()
    assert (case.status, case.version, case.withdrawn_reason) == ("withdrawn", 2, "Entered twice")
    assert AuditEvent.objects.filter(action="case.withdrawn").count() == 1


def test_a_withdrawal_needs_a_reason_without_identifiers(world, printers):
    case = save(world, printers[0]).case
    with pytest.raises(InvalidCase, match="Reason: say in 3 to 500 characters"):
        services.withdraw_case(case, "")
    with pytest.raises(InvalidCase, match="looks like a phone number"):
        services.withdraw_case(case, "call 555-123-4567")
    assert Case.objects.get().status == "submitted"


def test_create_only_refuses_an_existing_case_id(world, printers):
    save(world, printers[0])
    with pytest.raises(CaseExists, match="SITEA already has a case C-1"):
        save(world, printers[0], create_only=True)


def test_the_same_case_id_at_two_sites_is_two_cases(world, printers):
    save(world, printers[0])
    services.save_case(
        world.site_b,
        case_uid="C-1",
        data=a_case(1, printers[1]),
        status="submitted",
        actor=world.carol,
    )
    assert Case.objects.filter(case_uid="C-1").count() == 2


def test_patch_changes_some_elements_and_removes_with_none(world, printers):
    case = save(
        world, printers[0], status="draft", data={"object_type": "anatomic_model", "age_years": 40}
    ).case
    result = services.patch_case(case, {"age_years": 41, "object_type": None}, actor=world.alice)
    assert result.case.data == {"age_years": 41}
    assert result.case.version == 2


def test_patient_keys_are_stable_per_site_and_differ_between_sites(world):
    assert patient_key("SITEA", "12-345 678") == patient_key("SITEA", "12345678")
    assert patient_key("SITEA", "12345678") != patient_key("SITEB", "12345678")
    assert len(patient_key("SITEA", "12345678")) == 64


def test_a_refused_new_case_inside_a_transaction_leaves_the_transaction_usable(world, printers):
    from django.db import transaction

    save(world, printers[0])
    with transaction.atomic():
        with pytest.raises(CaseExists):
            save(world, printers[0], create_only=True)
        save(world, printers[0], uid="C-2", create_only=True)
    assert sorted(Case.objects.values_list("case_uid", flat=True)) == ["C-1", "C-2"]
    assert CaseVersion.objects.count() == 2
    assert AuditEvent.objects.filter(action="case.submitted").count() == 2
    assert verify_chain().ok


def test_a_new_case_is_stored_whole_with_its_version_and_event(world, printers):
    data = a_case(4, printers[0])
    result = save(world, printers[0], uid="C-9", create_only=True, data=data)
    stored = Case.objects.get(pk=result.case.pk)
    assert stored.data == result.case.data == data
    assert abs((stored.updated_at - stored.created_at).total_seconds()) < 1
    assert (stored.created_by, stored.site, stored.code) == (
        world.alice,
        world.site_a,
        result.case.code,
    )
    version = CaseVersion.objects.get(case=stored)
    assert (version.version, version.data, version.changed_by) == (1, stored.data, world.alice)
    event = AuditEvent.objects.get(object_id="C-9")
    assert event.changes["elements"]["age_years"] == [None, digest(stored.data["age_years"])]
    assert data["object_type"] == stored.object_type
