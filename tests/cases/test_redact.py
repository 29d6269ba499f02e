"""Identifiers typed by mistake: never in the audit trail, and removable by redaction.

Each door plants its own string in a free-text element: the service,
a patch, a CSV import, the physician's questionnaire and a withdrawal. The
identifier screen is switched off here (it is tested on its own), so the
strings stand for whatever it would miss.
"""

import json
import sys

import polars as pl
import pytest
from click.testing import CliRunner
from django.apps import apps
from django.core import mail
from django.test import Client

from registry3d.audit.digests import digest
from registry3d.audit.models import AuditEvent
from registry3d.audit.services import verify_chain
from registry3d.cases import services
from registry3d.cases.models import Case, CaseVersion
from registry3d.cases.redaction import REDACTED
from registry3d.cli import main
from registry3d.dictionary import registry
from registry3d.questionnaires.models import QuestionnaireResponse
from registry3d.reports import snapshot
from tests.cases.conftest import a_case, printers_for
from tests.conftest import client_for, csrf_post
from tests.intake.import_files import case_rows, write_csv
from tests.questionnaires.conftest import GOOD_ANSWERS, link_in

SAVED = "Segmented for Jane Roe at home"
PATCHED = "Call back Jane Roe tomorrow"
IMPORTED = "Printed on request of Jane Roe"
ANSWERED = "Jane Roe liked the model"
REASON = "Jane Roe asked to leave"
PLANTED = [SAVED, PATCHED, IMPORTED, ANSWERED, REASON, "Jane Roe"]
OTHER_SITE = "Trimmed for Richard Poe"


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def unscreened(monkeypatch):
    """Let every planted string through the identifier screen, wherever it is called."""
    for name, module in list(sys.modules.items()):
        if name.startswith("registry3d") and hasattr(module, "find_identifier"):
            monkeypatch.setattr(module, "find_identifier", lambda text: None)


@pytest.fixture
def labels(world):
    printers_for(world.site_b)
    return printers_for(world.site_a)


def with_comment(data: dict, number: int, comment: str) -> dict:
    parts = [dict(p) for p in data["anatomic_parts"]]
    parts[number - 1]["comment"] = comment
    return dict(data, anatomic_parts=parts)


def audit_text() -> str:
    """Every column of every audit event, as stored."""
    rows = AuditEvent.objects.order_by("seq").values_list()
    return "\n".join(json.dumps(row, default=str, ensure_ascii=False) for row in rows)


def database_text() -> str:
    """Every value of every row of every table the registry's models hold."""
    out = []
    for model in apps.get_models():
        for row in model.objects.all().values_list():
            out.append(json.dumps(row, default=str, ensure_ascii=False))
    return "\n".join(out)


def planted_world(world, labels, tmp_path, on_commit) -> dict[str, Case]:
    """Plant one string through each door; return the cases that hold them."""
    saved = services.save_case(
        world.site_a,
        case_uid="R-SAVED",
        data=with_comment(a_case(1, labels), 2, SAVED),
        status="submitted",
        actor=world.alice,
    ).case
    # The same value again in another case, to compare digests.
    services.save_case(
        world.site_a,
        case_uid="R-TWIN",
        data=with_comment(a_case(3, labels), 2, SAVED),
        status="submitted",
        actor=world.alice,
    )
    patched = services.save_case(
        world.site_a, case_uid="R-PATCHED", data=a_case(5, labels), actor=world.alice
    ).case
    patched = services.patch_case(
        patched,
        {"anatomic_parts": with_comment(patched.data, 1, PATCHED)["anatomic_parts"]},
        actor=world.alice,
    ).case
    answered = answered_case(world, labels, on_commit)
    rows = case_rows(2, labels, seed=4, prefix="R-IMP")
    rows[0]["anatomic_parts_1_comment"] = IMPORTED
    result = run("import", str(write_csv(tmp_path / "cases.csv", rows)), "--site", "SITEA")
    assert result.exit_code == 0, result.output
    withdrawn = services.save_case(
        world.site_a, case_uid="R-WITHDRAWN", data=a_case(9, labels), actor=world.alice
    ).case
    withdrawn = services.withdraw_case(withdrawn, REASON, actor=world.alice)
    other = services.save_case(
        world.site_b,
        case_uid="R-OTHER",
        data=with_comment(a_case(10, labels), 1, OTHER_SITE),
        actor=world.carol,
    ).case
    return {
        "saved": saved,
        "patched": patched,
        "imported": Case.objects.get(case_uid="R-IMP-00001"),
        "answered": answered,
        "withdrawn": withdrawn,
        "other": other,
    }


def answered_case(world, labels, on_commit) -> Case:
    """A case whose physician answered the questionnaire through the emailed link."""
    data = a_case(7, labels)
    dictionary = registry.current().dictionary
    for name in [e.name for s in dictionary.questionnaire_sections() for e in s.elements]:
        data.pop(name, None)
    case = services.save_case(
        world.site_a, case_uid="R-ANSWERED", data=data, status="submitted", actor=world.alice
    ).case
    mail.outbox.clear()
    with on_commit(execute=True):  # the e-mail leaves when the request's change commits
        sent = csrf_post(
            client_for(world.alice),
            f"/sites/SITEA/cases/{case.case_uid}/questionnaire/",
            {
                "action": "send",
                "email": "dr.lee@hospital.example.org",
                "specialty": "cardiothoracic_surgery",
            },
        )
    assert sent.status_code == 302
    path = link_in(mail.outbox[-1])
    physician = Client(enforce_csrf_checks=True)
    physician.get(path)
    done = physician.post(
        path,
        dict(GOOD_ANSWERS, ua_comment=ANSWERED),
        HTTP_X_CSRFTOKEN=physician.cookies["csrftoken"].value,
    )
    assert done.status_code == 302
    case.refresh_from_db()
    assert case.data["ua_comment"] == ANSWERED
    return case


@pytest.fixture
def planted(world, labels, tmp_path, unscreened, django_capture_on_commit_callbacks):
    return planted_world(world, labels, tmp_path, django_capture_on_commit_callbacks)


# --- The audit trail ---------------------------------------------------------------------------


def test_no_planted_string_reaches_the_audit_trail_through_any_door(planted):
    text = audit_text()
    for string in PLANTED:
        assert string not in text
    assert verify_chain().ok is True


def test_the_versions_keep_the_values_and_the_events_their_digests(planted):
    saved = planted["saved"]
    assert saved.data["anatomic_parts"][1]["comment"] == SAVED
    events = AuditEvent.objects.filter(object_id__in=["R-SAVED", "R-TWIN"], action="case.submitted")
    digests = {e.changes["elements"]["anatomic_parts[2].comment"][1] for e in events}
    assert digests == {digest(SAVED)}
    assert len(digest(SAVED)) == 16
    patched = AuditEvent.objects.get(object_id="R-PATCHED", action="case.updated")
    assert patched.changes["elements"]["anatomic_parts[1].comment"] == [None, digest(PATCHED)]
    withdrawn = AuditEvent.objects.get(object_id="R-WITHDRAWN", action="case.withdrawn")
    assert withdrawn.changes["reason"] == digest(REASON)
    answered = AuditEvent.objects.get(action="questionnaire.answered")
    assert answered.changes["answers"]["ua_comment"] == digest(ANSWERED)
    assert CaseVersion.objects.get(case=planted["withdrawn"], version=2).note == REASON


def test_the_own_sites_history_page_still_shows_the_values(planted, world):
    page = client_for(world.alice).get("/sites/SITEA/cases/R-PATCHED/")
    assert page.status_code == 200
    assert PATCHED in page.content.decode()


# --- Redaction ---------------------------------------------------------------------------------


def redact_on_page(client, site, case_uid, element, reason):
    return csrf_post(
        client,
        "/audit/redact/",
        {"site": site, "case_uid": case_uid, "element": element, "reason": reason},
    )


def test_redaction_leaves_no_planted_string_anywhere(planted, world, tmp_path):
    for uid, element in [
        ("R-SAVED", "anatomic_parts[2].comment"),
        ("R-TWIN", "anatomic_parts[2].comment"),
        ("R-PATCHED", "anatomic_parts[1].comment"),
        ("R-WITHDRAWN", "withdrawn_reason"),
    ]:
        result = run(
            "case", "redact", "SITEA", uid, "--element", element, "--reason", "a name typed in"
        )
        assert result.exit_code == 0, result.output
    assert run("case", "show", "SITEA", "R-PATCHED").exit_code == 0
    admin = client_for(world.ada)
    for uid, element in [
        ("R-IMP-00001", "anatomic_parts[1].comment"),
        ("R-ANSWERED", "ua_comment"),
    ]:
        response = redact_on_page(admin, "SITEA", uid, element, "a name typed in by mistake")
        assert response.status_code == 302, response.content.decode()

    text = database_text()
    for string in PLANTED:
        assert string not in text, string
    assert OTHER_SITE in text  # the other site's case was not touched
    assert verify_chain().ok is True
    verified = run("audit", "verify")
    assert verified.exit_code == 0 and "Audit trail intact" in verified.output

    snapshot.build(tmp_path / "snapshot.parquet")
    table = pl.read_parquet(tmp_path / "snapshot.parquet")
    dumped = table.write_csv()
    for string in PLANTED:
        assert string not in dumped
    assert set(table["case_id"]) >= {planted["saved"].pk, planted["answered"].pk}

    out = tmp_path / "export"
    exported = run("export", "--site", "SITEA", "--format", "csv", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    files = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    assert REDACTED in files
    for string in PLANTED:
        assert string not in files


def test_redaction_keeps_versions_marks_every_one_and_records_why(planted, world):
    patched = planted["patched"]
    before = patched.updated_at
    result = run(
        "case",
        "redact",
        "SITEA",
        "R-PATCHED",
        "--element",
        "anatomic_parts[1].comment",
        "--reason",
        "a name typed in",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "redacted anatomic_parts[1].comment in SITEA/R-PATCHED (versions 2)\n"
    case = Case.objects.get(pk=patched.pk)
    assert (case.version, case.data["anatomic_parts"][0]["comment"]) == (2, REDACTED)
    assert case.updated_at > before
    assert CaseVersion.objects.get(case=case, version=2).changes["anatomic_parts[1].comment"] == [
        None,
        REDACTED,
    ]
    assert CaseVersion.objects.filter(case=case).count() == 2
    event = AuditEvent.objects.get(action="case.redacted")
    assert (event.object_id, event.site) == ("R-PATCHED", world.site_a)
    assert event.actor_label.startswith("command line (")
    assert event.changes == {
        "element": "anatomic_parts[1].comment",
        "reason": "a name typed in",
        "versions": [2],
        "version": 2,
    }


def test_the_withdrawal_reason_is_redacted_in_the_case_and_its_version(planted):
    result = run(
        "case",
        "redact",
        "SITEA",
        "R-WITHDRAWN",
        "--element",
        "withdrawn_reason",
        "--reason",
        "name",
    )
    assert result.exit_code == 0, result.output
    case = Case.objects.get(case_uid="R-WITHDRAWN")
    assert (case.status, case.withdrawn_reason) == ("withdrawn", REDACTED)
    assert CaseVersion.objects.get(case=case, version=2).note == REDACTED


def test_the_physicians_stored_answers_are_redacted_too(planted, world):
    admin = client_for(world.ada)
    response = redact_on_page(admin, "SITEA", "R-ANSWERED", "ua_comment", "a name in the comment")
    assert response.status_code == 302
    stored = QuestionnaireResponse.objects.get(request__case=planted["answered"])
    assert stored.answers["ua_comment"] == REDACTED
    assert Case.objects.get(case_uid="R-ANSWERED").data["ua_comment"] == REDACTED
    page = admin.get(response["Location"])
    assert "Redacted ua_comment in SITEA/R-ANSWERED (versions 2)." in page.content.decode()


@pytest.mark.parametrize(
    "element, reason, message",
    [
        (
            "anatomic_parts[1]..comment",
            "a name",
            "Element: 'anatomic_parts[1]..comment' is not an element path; use a name like "
            "ua_comment or anatomic_parts[2].comment",
        ),
        (
            "anatomic_parts[3].comment",
            "a name",
            "anatomic_parts[3].comment holds no value in case R-PATCHED; nothing to redact",
        ),
        ("ua_comment", "a name", "ua_comment holds no value in case R-PATCHED; nothing to redact"),
        (
            "age_years",
            "a name",
            "age_years holds a value that is not text; only text can be redacted "
            "(correct a number, code or checkbox by editing the case)",
        ),
        (
            "sex",
            "a name",
            "sex holds a code of its value set; only free text can be redacted",
        ),
        (
            "anatomic_parts[1].comment",
            "  ",
            "Reason: say in 3 to 500 characters why the value is removed",
        ),
        (
            "anatomic_parts[1].comment",
            "it said Jane Roe",
            "Reason: it repeats the value being removed; say why it is removed, not what it said",
        ),
    ],
)
def test_a_bad_redaction_says_why_and_changes_nothing(planted, element, reason, message):
    before = database_text()
    seq = AuditEvent.objects.order_by("-seq").first().seq
    result = run("case", "redact", "SITEA", "R-PATCHED", "--element", element, "--reason", reason)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert database_text() == before
    assert AuditEvent.objects.order_by("-seq").first().seq == seq


def test_a_reason_naming_a_patient_is_refused(world, labels):
    case = services.save_case(
        world.site_a,
        case_uid="R-1",
        data=with_comment(a_case(1, labels), 1, "see the notes"),
        actor=world.alice,
    ).case
    result = run(
        "case",
        "redact",
        "SITEA",
        "R-1",
        "--element",
        "anatomic_parts[1].comment",
        "--reason",
        "asked by MRN 12345678",
    )
    assert result.exit_code == 1
    assert result.output == (
        "Error: Reason: this looks like a medical record or account number; say why the "
        "value is removed, without patient details\n"
    )
    assert Case.objects.get(pk=case.pk).data["anatomic_parts"][0]["comment"] == "see the notes"


def test_an_unknown_case_is_a_one_line_error(world):
    result = run("case", "redact", "SITEA", "NOPE", "--element", "ua_comment", "--reason", "x y z")
    assert (result.exit_code, result.output) == (1, "Error: SITEA has no case 'NOPE'\n")


# --- The page --------------------------------------------------------------------------------


def test_only_registry_admins_find_the_redaction_page(planted, world):
    for user in (world.alice, world.bob, world.mona, world.carol, world.dan):
        client = client_for(user)
        assert client.get("/audit/redact/").status_code == 404, user
        response = redact_on_page(client, "SITEA", "R-SAVED", "anatomic_parts[2].comment", "why")
        assert response.status_code == 404, user
    assert Case.objects.get(case_uid="R-SAVED").data["anatomic_parts"][1]["comment"] == SAVED
    assert not AuditEvent.objects.filter(action="case.redacted").exists()
    page = client_for(world.ada).get("/audit/redact/?site=SITEA&case=R-SAVED")
    assert page.status_code == 200
    assert 'value="R-SAVED"' in page.content.decode()


def test_the_page_shows_a_refusal_next_to_the_field(planted, world):
    response = redact_on_page(client_for(world.ada), "SITEA", "R-SAVED", "age_years", "a name")
    assert response.status_code == 400
    assert "age_years holds a value that is not text" in response.content.decode()
    response = redact_on_page(client_for(world.ada), "SITEB", "R-SAVED", "ua_comment", "a name")
    assert "SITEB has no case R-SAVED" in response.content.decode()
    assert not AuditEvent.objects.filter(action="case.redacted").exists()
