"""/redcap/api/ through Django's test client (CSRF checks on), as REDCap clients call it.

The tests in test_pycap.py drive the same endpoint with the real PyCap
client over HTTP; these cover each parameter, refusal and site boundary.
"""

import csv
import io
import json

import pytest
from django.test import override_settings

from registry3d.audit.models import AuditEvent
from registry3d.cases import services as case_services
from registry3d.cases.models import Case, CaseVersion
from registry3d.redcap.datadict import API_KEYS
from registry3d.sites import services
from registry3d.sites.models import ApiToken
from tests.redcap.conftest import API, case_data, error_of, redcap_post

NO_PERMISSION = "You do not have permissions to use the API"


def problems_of(response) -> list[list[str]]:
    """An import's error: REDCap's lines of record, field, value, message."""
    return list(csv.reader(io.StringIO(error_of(response))))


def export(api, token, **params):
    response = redcap_post(api, token=token, content="record", format="json", **params)
    assert response.status_code == 200, response.content
    return json.loads(b"".join(response.streaming_content))


def import_json(api, token, rows, **params):
    return redcap_post(
        api, token=token, content="record", format="json", data=json.dumps(rows), **params
    )


# --- Tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "0" * 31, "a" * 32, "F" * 32, "G" * 32, "r3d_" + "x" * 40],
    ids=["missing", "short", "lowercase", "unknown", "not-hex", "api-token-shape"],
)
def test_a_missing_or_unknown_token_gets_403_in_redcaps_json_shape(redcap_world, api, token):
    response = redcap_post(api, token=token, content="metadata", format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"error": NO_PERMISSION}


def test_errors_are_xml_without_a_format_and_csv_text_with_csv(redcap_world, api):
    xml = redcap_post(api, token="F" * 32, content="version")
    assert xml.status_code == 403
    assert xml.content.decode() == (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<hash>\n'
        f"  <error>{NO_PERMISSION}</error>\n</hash>"
    )
    text = redcap_post(api, token="F" * 32, content="metadata", format="csv")
    assert text.content.decode() == f"ERROR: {NO_PERMISSION}"
    returned = redcap_post(
        api, token="F" * 32, content="metadata", format="csv", returnFormat="json"
    )
    assert json.loads(returned.content) == {"error": NO_PERMISSION}


def test_an_api_token_does_not_work_here_and_a_redcap_token_not_at_the_api(redcap_world, api):
    _, api_token = services.create_token(
        redcap_world.site_a, redcap_world.alice, name="API", scope="write"
    )
    assert api.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {api_token}").status_code == 200
    response = redcap_post(api, token=api_token, content="version")
    assert response.status_code == 403
    bearer = f"Bearer {redcap_world.alice_token}"
    assert api.get("/api/v1/whoami", HTTP_AUTHORIZATION=bearer).status_code == 401


def test_a_revoked_token_or_one_whose_owner_left_gets_403(redcap_world, api):
    token = ApiToken.objects.get(user=redcap_world.bob, kind="redcap")
    assert redcap_post(api, token=redcap_world.bob_token, content="version").status_code == 200
    services.revoke_token(token)
    assert redcap_post(api, token=redcap_world.bob_token, content="version").status_code == 403
    services.remove_membership(redcap_world.site_a, redcap_world.alice)
    assert redcap_post(api, token=redcap_world.alice_token, content="version").status_code == 403


def test_only_form_encoded_posts_are_answered(redcap_world, api):
    response = api.get(API, {"token": redcap_world.alice_token, "content": "version"})
    assert response.status_code == 405
    assert error_of(response) == "The REDCap API takes form-encoded POST requests"


def test_an_unknown_content_or_format_gets_400(redcap_world, api):
    unknown = redcap_post(api, token=redcap_world.alice_token, content="surveyLink", format="json")
    assert unknown.status_code == 400
    assert error_of(unknown) == 'The value of the parameter "content" is not valid'
    xml = redcap_post(api, token=redcap_world.alice_token, content="metadata", format="xml")
    assert xml.status_code == 400
    assert "format=xml is not supported by this registry; use json or csv" in xml.content.decode()


# --- What the project is -----------------------------------------------------------------------


def test_the_version_is_plain_text(redcap_world, api):
    response = redcap_post(api, token=redcap_world.bob_token, content="version")
    assert response.status_code == 200
    assert response.content == b"14.0.0"


def test_the_project_is_the_tokens_site_and_not_longitudinal(redcap_world, api):
    response = redcap_post(api, token=redcap_world.bob_token, content="project", format="json")
    info = json.loads(response.content)
    assert info["project_title"].startswith("SITEA – Site A Hospital")
    assert (info["is_longitudinal"], info["has_repeating_instruments_or_events"]) == (0, 1)
    carol = redcap_post(api, token=redcap_world.carol_token, content="project", format="json")
    assert json.loads(carol.content)["project_title"].startswith("SITEB")
    events = redcap_post(
        api, token=redcap_world.bob_token, content="formEventMapping", format="json"
    )
    assert events.status_code == 400
    assert error_of(events) == "You cannot export form/event mappings for classic projects"


def test_metadata_has_redcaps_18_keys_and_filters_by_form_and_field(redcap_world, api):
    token = redcap_world.bob_token
    everything = json.loads(
        redcap_post(api, token=token, content="metadata", format="json").content
    )
    assert all(list(row) == API_KEYS for row in everything)
    assert everything[0]["field_name"] == "record_id"
    prints = json.loads(
        redcap_post(
            api, token=token, content="metadata", format="json", forms=["prints"], fields=["sex"]
        ).content
    )
    assert {row["form_name"] for row in prints} == {"prints", "case"}
    assert [r["field_name"] for r in prints if r["form_name"] == "case"] == ["sex"]
    bad = redcap_post(api, token=token, content="metadata", format="json", fields=["sex", "mrn"])
    assert bad.status_code == 400
    assert error_of(bad) == "The following values in the parameter \"fields\" are not valid: 'mrn'"
    as_csv = redcap_post(api, token=token, content="metadata", format="csv")
    header = next(csv.reader(io.StringIO(as_csv.content.decode())))
    assert header == API_KEYS


def test_export_field_names_give_each_checkbox_choice_its_column(redcap_world, api):
    rows = json.loads(
        redcap_post(
            api, token=redcap_world.bob_token, content="exportFieldNames", format="json"
        ).content
    )
    uses = [r for r in rows if r["original_field_name"] == "intended_uses"]
    assert uses[0] == {
        "original_field_name": "intended_uses",
        "choice_value": "pre_procedural_planning",
        "export_field_name": "intended_uses___pre_procedural_planning",
    }
    assert {
        "original_field_name": "case_complete",
        "choice_value": "",
        "export_field_name": ("case_complete"),
    } in rows
    one = redcap_post(
        api, token=redcap_world.bob_token, content="exportFieldNames", format="json", field="sex"
    )
    assert json.loads(one.content) == [
        {"original_field_name": "sex", "choice_value": "", "export_field_name": "sex"}
    ]


def test_instruments_and_the_repeating_ones(redcap_world, api):
    token = redcap_world.bob_token
    names = json.loads(redcap_post(api, token=token, content="instrument", format="json").content)
    assert names[0] == {"instrument_name": "case", "instrument_label": "Case and patient"}
    repeating = json.loads(
        redcap_post(api, token=token, content="repeatingFormsEvents", format="json").content
    )
    assert [r["form_name"] for r in repeating] == [
        "imaging",
        "anatomic_parts",
        "prints",
        "cpt_lines",
    ]


def test_the_next_record_name_follows_the_largest_numeric_case_id(redcap_world, api):
    for uid in ("7", "12", "A-99"):
        case_services.save_case(redcap_world.site_a, case_uid=uid, data={})
    case_services.save_case(redcap_world.site_b, case_uid="500", data={})
    response = redcap_post(api, token=redcap_world.bob_token, content="generateNextRecordName")
    assert response.content == b"13"


# --- Exporting records -------------------------------------------------------------------------


def test_a_token_exports_only_its_own_sites_records(redcap_world, api):
    case_services.save_case(
        redcap_world.site_a, case_uid="A-1", data={"object_type": "anatomic_model"}
    )
    case_services.save_case(
        redcap_world.site_b, case_uid="B-1", data={"object_type": "anatomic_guide"}
    )
    assert [r["record_id"] for r in export(api, redcap_world.bob_token)] == ["A-1"]
    assert [r["record_id"] for r in export(api, redcap_world.carol_token)] == ["B-1"]
    # Asking for another site's record by name finds nothing, as for one that does not exist.
    assert export(api, redcap_world.carol_token, records=["A-1"]) == []
    assert export(api, redcap_world.carol_token, records=["NOPE-1"]) == []


def test_exported_records_are_redcaps_flat_rows(redcap_world, api):
    data = case_data(5, redcap_world.labels)
    case_services.save_case(
        redcap_world.site_a, case_uid="A-1", data=data, status="submitted", actor=redcap_world.alice
    )
    rows = export(api, redcap_world.bob_token)
    main = rows[0]
    assert (
        main["record_id"],
        main["redcap_repeat_instrument"],
        main["redcap_repeat_instance"],
    ) == (
        "A-1",
        "",
        "",
    )
    assert main["object_type"] == data["object_type"]
    assert main["case_complete"] == "2"
    assert [
        r["redcap_repeat_instance"] for r in rows if r["redcap_repeat_instrument"] == "prints"
    ] == [str(n) for n in range(1, len(data["prints"]) + 1)]
    # Every row has every column, as REDCap's JSON export does.
    assert len({tuple(r) for r in rows}) == 1


def test_a_records_export_filters_by_fields_and_forms(redcap_world, api):
    data = case_data(5, redcap_world.labels)
    case_services.save_case(redcap_world.site_a, case_uid="A-1", data=data)
    case_services.save_case(redcap_world.site_a, case_uid="A-2", data={"sex": "female"})
    rows = export(api, redcap_world.bob_token, fields=["sex", "intended_uses"], records=["A-1"])
    assert [r["record_id"] for r in rows] == ["A-1"]
    assert set(rows[0]) == {
        "record_id",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "sex",
    } | {
        f"intended_uses___{c}"
        for c in (
            "pre_procedural_planning",
            "procedure_rehearsal_simulation",
            "intra_procedural_reference",
            "intra_procedural_guidance_guide",
            "device_or_implant_sizing_prefitting",
            "plate_prebending",
            "patient_education_consent",
            "trainee_education",
            "multidisciplinary_communication",
            "other",
        )
    }
    prints = export(api, redcap_world.bob_token, forms=["prints"])
    assert {r["redcap_repeat_instrument"] for r in prints} == {"prints"}
    assert "prints_complete" in prints[0] and "sex" not in prints[0]
    bad = redcap_post(
        api, token=redcap_world.bob_token, content="record", format="json", forms=["billing"]
    )
    assert (
        error_of(bad) == "The following values in the parameter \"forms\" are not valid: 'billing'"
    )


def test_a_csv_export_is_redcaps_header_and_rows(redcap_world, api):
    case_services.save_case(redcap_world.site_a, case_uid="A-1", data={"sex": "male"})
    response = redcap_post(
        api, token=redcap_world.bob_token, content="record", format="csv", type="flat"
    )
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["record_id"] == "A-1" and rows[0]["sex"] == "male"


def test_options_the_registry_cannot_honour_are_refused_not_ignored(redcap_world, api):
    token = redcap_world.bob_token
    cases = [
        (
            {"filterLogic": "[sex] = 'male'"},
            "filterLogic is not supported by this registry; filter by records",
        ),
        ({"type": "eav"}, "type=eav is not supported by this registry; use type=flat"),
        ({"rawOrLabel": "label"}, "rawOrLabel=label is not supported; use raw"),
        (
            {"action": "delete", "records": ["A-1"]},
            "Only exporting and importing records is "
            "supported here; withdraw a case in the registry instead of deleting it",
        ),
    ]
    for params, message in cases:
        response = redcap_post(api, token=token, content="record", format="json", **params)
        assert response.status_code == 400, params
        assert error_of(response) == message


def test_request_parameters_that_look_like_identifiers_are_not_echoed(redcap_world, api):
    """A refused parameter is named, its value only when it is shaped like a name (#15)."""
    token = redcap_world.bob_token
    cases = [
        (
            {"content": "record", "fields": ["sex", "John Smith 617-555-0100"]},
            'The following values in the parameter "fields" are not valid: this name',
        ),
        (
            {"content": "record", "fields": ["Maria_Garcia"]},
            'The following values in the parameter "fields" are not valid: this name',
        ),
        (
            {"content": "exportFieldNames", "field": "John Smith DOB 3/3/1950"},
            "The field this name is not a valid field",
        ),
        (
            {"content": "exportFieldNames", "field": "favourite_colour"},
            "The field 'favourite_colour' is not a valid field",
        ),
        (
            {"content": "record", "rawOrLabel": "SSN 123-45-6789"},
            "this rawOrLabel is not supported; use raw",
        ),
        (
            {"content": "record", "type": "Smith_John"},
            "this type is not supported by this registry; use type=flat",
        ),
    ]
    for params, message in cases:
        response = redcap_post(api, token=token, format="json", **params)
        assert response.status_code == 400, params
        assert error_of(response) == message


def test_a_records_export_is_written_to_the_audit_trail(redcap_world, api):
    export(api, redcap_world.bob_token, fields=["sex"])
    event = AuditEvent.objects.get(action="redcap.records_exported")
    assert event.site == redcap_world.site_a and event.actor == redcap_world.bob
    assert event.via.startswith("redcap token ")
    assert event.changes == {"format": "json", "fields": ["sex"]}


# --- Importing records -------------------------------------------------------------------------


def test_an_import_creates_a_draft_and_complete_instruments_submit_a_case(redcap_world, api):
    draft = import_json(api, redcap_world.alice_token, [{"record_id": "N-1", "sex": "female"}])
    assert draft.status_code == 200
    assert json.loads(draft.content) == {"count": 1}
    case = Case.objects.get(site=redcap_world.site_a, case_uid="N-1")
    assert (case.status, case.data) == ("draft", {"sex": "female"})
    assert case.created_by == redcap_world.alice
    assert CaseVersion.objects.get(case=case).note == "imported through the REDCap API"
    data = case_data(9, redcap_world.labels)
    rows = [
        dict(row, **{k: "2" for k in row if k.endswith("_complete")})
        for row in export_rows(redcap_world, data)
    ]
    submitted = import_json(api, redcap_world.alice_token, rows, returnContent="ids")
    assert json.loads(submitted.content) == ["S-1"]
    case = Case.objects.get(site=redcap_world.site_a, case_uid="S-1")
    assert case.status == "submitted"


def export_rows(world, data: dict, uid: str = "S-1") -> list[dict]:
    """The flat rows REDCap would export for a case with ``data``."""
    from registry3d.dictionary import registry
    from registry3d.redcap.project import project_of
    from registry3d.redcap.records import record_rows

    return record_rows(project_of(registry.current().dictionary), uid, data, "submitted")


def test_an_import_with_bad_records_lists_every_problem_and_writes_nothing(redcap_world, api):
    case_services.save_case(redcap_world.site_a, case_uid="OLD-1", data={"sex": "male"})
    rows = [
        {"record_id": "OLD-1", "sex": "female"},
        {
            "record_id": "N-1",
            "object_type": "anatomic_thing",
            "age_years": "forty",
            "is_point_of_care": "maybe",
            "intended_uses___trainee_education": "2",
        },
        {
            "record_id": "N-1",
            "redcap_repeat_instrument": "prints",
            "redcap_repeat_instance": "1",
            "copies": "-3",
        },
        {"record_id": "N-2", "favourite_colour": "blue"},
        {
            "record_id": "N-3",
            "redcap_repeat_instrument": "prints",
            "redcap_repeat_instance": "3",
            "copies": "1",
        },
    ]
    response = import_json(api, redcap_world.alice_token, rows)
    assert response.status_code == 400
    assert problems_of(response) == [
        ["N-2", "favourite_colour", "", "is not a field of this project (see exportFieldNames)"],
        [
            "N-1",
            "is_point_of_care",
            "",
            "Made at the point of care: the value is not valid; expected 1 (yes) or 0 (no)",
        ],
        [
            "N-1",
            "age_years",
            "",
            "Patient age (years): the value is not valid; expected a whole number",
        ],
        [
            "N-1",
            "intended_uses___trainee_education",
            "",
            "Intended uses: expected 1 (checked) or 0 (unchecked)",
        ],
        [
            "N-1",
            "object_type",
            "",
            "Type of 3D printed object: the value is not a code of this list; expected "
            "one of anatomic_model, anatomic_guide",
        ],
        [
            "N-1",
            "copies",
            "",
            "prints instance 1: Number of copies: the value is out of range; "
            "expected a whole number from 1 to 50",
        ],
        [
            "N-3",
            "redcap_repeat_instance",
            "",
            "prints: instance 3 follows instance 0; number the instances 1, 2, 3… without gaps",
        ],
    ]
    # Nothing was written, not even the good record.
    assert list(Case.objects.values_list("case_uid", flat=True)) == ["OLD-1"]
    assert Case.objects.get(case_uid="OLD-1").data == {"sex": "male"}


def test_a_patient_name_in_free_text_is_refused_and_nothing_is_written(redcap_world, api):
    response = import_json(
        api,
        redcap_world.alice_token,
        [{"record_id": "N-1", "sex": "male", "ua_comment": "Discussed with John Smith, MRN 4412"}],
    )
    assert response.status_code == 400
    (problem,) = problems_of(response)
    assert problem[:2] == ["N-1", "ua_comment"]
    assert "patient identifiers" in problem[3]
    assert Case.objects.exists() is False


def test_normal_keeps_what_empty_cells_leave_out_and_overwrite_removes_it(redcap_world, api):
    case_services.save_case(
        redcap_world.site_a,
        case_uid="A-1",
        data={"sex": "male", "age_years": 40, "intended_uses": ["plate_prebending"]},
    )
    row = {"record_id": "A-1", "sex": "", "age_years": "41", "intended_uses___plate_prebending": ""}
    assert import_json(api, redcap_world.alice_token, [row]).status_code == 200
    case = Case.objects.get(case_uid="A-1")
    assert case.data == {"sex": "male", "age_years": 41, "intended_uses": ["plate_prebending"]}
    overwrite = import_json(api, redcap_world.alice_token, [row], overwriteBehavior="overwrite")
    assert overwrite.status_code == 200
    case.refresh_from_db()
    assert case.data == {"age_years": 41}
    # A checkbox column with 0 unchecks in either mode.
    import_json(
        api,
        redcap_world.alice_token,
        [{"record_id": "A-1", "intended_uses___trainee_education": "1"}],
    )
    import_json(
        api,
        redcap_world.alice_token,
        [{"record_id": "A-1", "intended_uses___trainee_education": "0", "sex": "female"}],
    )
    case.refresh_from_db()
    assert case.data == {"age_years": 41, "sex": "female"}


def test_the_same_import_twice_makes_no_second_version(redcap_world, api):
    rows = [{"record_id": "A-1", "sex": "female"}]
    import_json(api, redcap_world.alice_token, rows)
    import_json(api, redcap_world.alice_token, rows)
    assert Case.objects.get(case_uid="A-1").version == 1


def test_a_read_token_cannot_import(redcap_world, api):
    response = import_json(api, redcap_world.bob_token, [{"record_id": "N-1", "sex": "male"}])
    assert response.status_code == 403
    assert error_of(response) == "You do not have API Import/Update privileges"
    assert Case.objects.exists() is False


def test_another_sites_token_never_touches_a_sites_record_of_the_same_name(redcap_world, api):
    case_services.save_case(redcap_world.site_a, case_uid="A-1", data={"sex": "male"})
    response = import_json(api, redcap_world.carol_token, [{"record_id": "A-1", "sex": "female"}])
    assert json.loads(response.content) == {"count": 1}
    assert Case.objects.get(site=redcap_world.site_a, case_uid="A-1").data == {"sex": "male"}
    assert Case.objects.get(site=redcap_world.site_b, case_uid="A-1").data == {"sex": "female"}


def test_a_withdrawn_case_cannot_be_imported_over(redcap_world, api):
    case = case_services.save_case(redcap_world.site_a, case_uid="A-1", data={"sex": "male"}).case
    case_services.withdraw_case(case, "Entered twice by mistake")
    response = import_json(api, redcap_world.alice_token, [{"record_id": "A-1", "sex": "female"}])
    assert problems_of(response) == [
        ["A-1", "record_id", "", "the case was withdrawn and cannot change"]
    ]


def test_a_csv_import_and_its_csv_answer(redcap_world, api):
    data = "record_id,sex,age_years\nC-1,female,33\nC-2,male,\n"
    response = redcap_post(
        api,
        token=redcap_world.alice_token,
        content="record",
        format="csv",
        type="flat",
        data=data,
        returnFormat="csv",
        returnContent="ids",
    )
    assert response.status_code == 200
    assert response.content.decode() == "id\nC-1\nC-2\n"
    assert Case.objects.get(case_uid="C-1").data == {"sex": "female", "age_years": 33}


def test_import_options_are_checked(redcap_world, api):
    token = redcap_world.alice_token
    rows = [{"record_id": "N-1"}]
    cases = [
        ({"overwriteBehavior": "replace"}, "overwriteBehavior must be normal or overwrite"),
        ({"returnContent": "all"}, "returnContent must be count, ids, auto_ids or nothing"),
        (
            {"forceAutoNumber": "true"},
            "forceAutoNumber is not supported: a record's name is the site's own case ID",
        ),
    ]
    for params, message in cases:
        response = import_json(api, token, rows, **params)
        assert response.status_code == 400, params
        assert error_of(response) == message
    bad_json = redcap_post(api, token=token, content="record", format="json", data="[{")
    assert error_of(bad_json).startswith("data is not valid JSON")
    assert Case.objects.exists() is False


@override_settings(REGISTRY3D_API_WRITES_PER_SECOND=0.001, REGISTRY3D_API_WRITE_BURST=1)
def test_too_many_writes_wait_with_429(redcap_world, api):
    rows = [{"record_id": "N-1", "sex": "male"}]
    assert import_json(api, redcap_world.alice_token, rows).status_code == 200
    response = import_json(api, redcap_world.alice_token, rows)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert error_of(response).startswith("Too many writes with this token; wait")


@override_settings(REGISTRY3D_API_MAX_BODY_BYTES=2048)
def test_a_body_over_the_limit_gets_413(redcap_world, api):
    rows = [{"record_id": f"N-{i}", "sex": "male"} for i in range(200)]
    response = import_json(api, redcap_world.alice_token, rows)
    assert response.status_code == 413
    assert "at most 2048 are accepted" in error_of(response)
    assert Case.objects.exists() is False


def test_an_import_is_in_the_audit_trail_with_the_redcap_token(redcap_world, api):
    import_json(api, redcap_world.alice_token, [{"record_id": "N-1", "sex": "male"}])
    event = AuditEvent.objects.get(action="case.created")
    prefix = ApiToken.objects.get(user=redcap_world.alice, kind="redcap").prefix
    assert (event.actor, event.via, event.object_id) == (
        redcap_world.alice,
        f"redcap token {prefix}",
        "N-1",
    )


# --- The log --------------------------------------------------------------------------------


def test_the_log_is_the_sites_case_history_in_redcaps_shape(redcap_world, api):
    import_json(api, redcap_world.alice_token, [{"record_id": "N-1", "sex": "male"}])
    import_json(api, redcap_world.alice_token, [{"record_id": "N-1", "sex": "female"}])
    case_services.save_case(redcap_world.site_b, case_uid="B-1", data={"sex": "male"})
    rows = json.loads(
        redcap_post(api, token=redcap_world.bob_token, content="log", format="json").content
    )
    assert [(r["username"], r["action"], r["details"]) for r in rows] == [
        ("alice@a.example.org", "Update record N-1", "status = 'draft', sex = 'female'"),
        ("alice@a.example.org", "Create record N-1", "status = 'draft', sex = 'male'"),
    ]
    assert set(rows[0]) == {"timestamp", "username", "action", "details"}
    carol = json.loads(
        redcap_post(api, token=redcap_world.carol_token, content="log", format="json").content
    )
    assert [r["action"] for r in carol] == ["Create record B-1"]
    one = json.loads(
        redcap_post(
            api, token=redcap_world.carol_token, content="log", format="json", record="N-1"
        ).content
    )
    assert one == []


def test_no_patient_key_or_record_number_leaves_through_the_api(redcap_world, api):
    from registry3d.lib.pseudonym import patient_key

    mrn = "MRN-00482913"
    key = patient_key("SITEA", mrn)
    case_services.save_case(
        redcap_world.site_a,
        case_uid="A-1",
        data={"object_type": "anatomic_model", "age_years": 44},
        patient_key=key,
    )
    answers = [
        b"".join(
            redcap_post(
                api, token=redcap_world.bob_token, content="record", format=fmt
            ).streaming_content
        )
        for fmt in ("json", "csv")
    ]
    for content in ("metadata", "exportFieldNames", "log", "project"):
        answers.append(
            redcap_post(api, token=redcap_world.bob_token, content=content, format="json").content
        )
    assert b"A-1" in answers[0] and b"A-1" in answers[1]
    for answer in answers:
        assert key.encode() not in answer
        assert b"00482913" not in answer
        assert b"patient_key" not in answer


def test_the_log_never_mentions_a_changed_patient_key(redcap_world, api):
    from registry3d.lib.pseudonym import patient_key

    case = case_services.save_case(redcap_world.site_a, case_uid="A-1", data={"sex": "male"}).case
    case_services.patch_case(case, {}, patient_key=patient_key("SITEA", "MRN-7731"))
    rows = json.loads(
        redcap_post(api, token=redcap_world.bob_token, content="log", format="json").content
    )
    assert [r["action"] for r in rows] == ["Update record A-1", "Create record A-1"]
    assert "patient_key" not in json.dumps(rows)
