"""POST /fhir/QuestionnaireResponse over real HTTP, as site software sends it."""

import copy
import json

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from registry3d.cases.models import Case, CaseVersion
from registry3d.lib.pseudonym import patient_key
from tests.fhir.conftest import (
    MRN,
    published_questionnaire,
    read_answers,
    read_bundle,
    resources_of,
    split,
)

PATH = "/fhir/QuestionnaireResponse"
CASE_Q = "https://registry3d.org/fhir/Questionnaire/registry3d-case"
PHYSICIAN_Q = "https://registry3d.org/fhir/Questionnaire/registry3d-physician"


def post(fhir_world, resource, token="write", raw=None, headers=None):
    body = raw if raw is not None else json.dumps(resource).encode()
    return fhir_world["http"].call(
        "POST",
        PATH,
        token=fhir_world[token] if token else None,
        raw=body,
        headers={"Content-Type": "application/fhir+json", **(headers or {})},
    )


def exported(fhir_world, uid="A-1") -> dict:
    """The case's responses as the Bundle gives them, by questionnaire."""
    reply = fhir_world["http"].call("GET", f"/api/v1/cases/{uid}/fhir", token=fhir_world["read"])
    assert reply.status == 200, reply.body
    out = {}
    for entry in json.loads(reply.body)["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "QuestionnaireResponse":
            resource = copy.deepcopy(resource)
            resource.pop("id")
            resource["subject"].pop("reference")  # a Bundle's own reference
            out[resource["questionnaire"].split("|")[0]] = resource
    return out


def issues_of(reply) -> list[tuple[str, str]]:
    outcome = OperationOutcome.model_validate_json(reply.body)
    return [(i.details.text, (i.expression or [""])[0]) for i in outcome.issue]


def as_new_case(resource: dict, uid: str) -> dict:
    resource = copy.deepcopy(resource)
    resource["identifier"]["value"] = uid
    return resource


def test_a_case_exported_and_posted_to_another_id_has_the_same_data(fhir_world):
    original = fhir_world["case"]
    responses = exported(fhir_world)
    created = post(fhir_world, as_new_case(responses[CASE_Q], "A-2"))
    assert created.status == 201, created.body
    assert created.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
    stored = QuestionnaireResponse.model_validate_json(created.body)
    assert stored.identifier.value == "A-2"
    answered = post(fhir_world, as_new_case(responses[PHYSICIAN_Q], "A-2"))
    assert answered.status == 200, answered.body
    copy_ = Case.objects.get(site=fhir_world["world"].site_a, case_uid="A-2")
    assert copy_.data == original.data
    assert (copy_.status, copy_.patient_key) == ("submitted", original.patient_key)
    assert copy_.version == 2  # the case, then the physician's answers
    notes = list(CaseVersion.objects.filter(case=copy_).order_by("version").values_list("note"))
    assert notes == [("FHIR QuestionnaireResponse",), ("FHIR QuestionnaireResponse, physician",)]
    # And it reads back the same as it went in.
    again = exported(fhir_world, "A-2")
    assert again[CASE_Q] == as_new_case(responses[CASE_Q], "A-2")


def test_posting_the_same_response_twice_is_one_version(fhir_world):
    responses = exported(fhir_world)
    first = post(fhir_world, responses[CASE_Q])
    assert first.status == 200, first.body  # A-1 exists: an update that changes nothing
    assert first.headers["ETag"] == 'W/"1"'
    assert Case.objects.get(case_uid="A-1").version == 1


def test_a_case_response_keeps_the_physicians_answers(fhir_world):
    responses = exported(fhir_world)
    changed = copy.deepcopy(responses[CASE_Q])
    for section in changed["item"]:
        for item in section["item"]:
            if item["linkId"] == "turnaround_days":
                item["answer"] = [{"valueInteger": 19}]
    reply = post(fhir_world, changed)
    assert reply.status == 200, reply.body
    case = Case.objects.get(case_uid="A-1")
    assert case.data["turnaround_days"] == 19
    assert case.data["ua_important"] == "5"
    assert case.version == 2


def test_the_physicians_response_replaces_the_physicians_answers(fhir_world):
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": PHYSICIAN_Q,
        "identifier": {"system": "urn:registry3d:case-uid", "value": "A-1"},
        "status": "completed",
        "item": [
            {
                "linkId": "user_assessment",
                "item": [
                    {
                        "linkId": "respondent_role",
                        "answer": [{"valueCoding": {"code": "trainee"}}],
                    },
                    {"linkId": "ua_important", "answer": [{"valueCoding": {"code": "2"}}]},
                    {
                        "linkId": "plan_change_type",
                        "answer": [{"valueCoding": {"code": "none"}}],
                    },
                ],
            }
        ],
    }
    reply = post(fhir_world, resource)
    assert reply.status == 200, reply.body
    data = Case.objects.get(case_uid="A-1").data
    _, physician = split(data)
    assert physician == {
        "respondent_role": "trainee",
        "ua_important": "2",
        "plan_change_type": ["none"],
    }
    stored = QuestionnaireResponse.model_validate_json(reply.body)
    assert read_answers(stored, published_questionnaire("registry3d-physician")) == physician


def test_a_new_draft_case_from_a_response(fhir_world):
    resource = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{CASE_Q}|1.1.0",
        "identifier": {"system": "urn:registry3d:site:SITEA:case-uid", "value": "D-1"},
        "subject": {
            "identifier": {
                "system": "urn:registry3d:site:SITEA:patient-key",
                "value": patient_key("SITEA", "MRN-0000-0001"),
            }
        },
        "status": "in-progress",
        "item": [
            {
                "linkId": "case",
                "item": [
                    {"linkId": "age_years", "answer": [{"valueInteger": 44}]},
                    {"linkId": "case_year_month", "answer": [{"valueString": "2026-05"}]},
                ],
            },
            {
                "linkId": "effort",
                "item": [
                    {
                        "linkId": "effort_cad_clinician",
                        "answer": [
                            {
                                "extension": [
                                    {
                                        "url": "http://hl7.org/fhir/StructureDefinition/"
                                        "data-absent-reason",
                                        "valueCode": "unknown",
                                    }
                                ]
                            }
                        ],
                    }
                ],
            },
        ],
    }
    reply = post(fhir_world, resource, headers={"Prefer": "return=OperationOutcome"})
    assert reply.status == 201, reply.body
    assert issues_of(reply)[0] == ("Case D-1 stored, version 1", "")
    case = Case.objects.get(case_uid="D-1")
    assert case.status == "draft"
    assert case.data == {
        "age_years": 44,
        "case_year_month": "2026-05",
        "effort_cad_clinician": "unknown",
    }


# --- Bad input: one issue per bad item, nothing written ---------------------------------------


def nothing_written(fhir_world):
    assert Case.objects.count() == 1
    assert Case.objects.get(case_uid="A-1").version == 1


def test_a_body_that_is_not_json_is_400(fhir_world):
    reply = post(fhir_world, None, raw=b"{not json")
    assert reply.status == 400
    ((text, _),) = issues_of(reply)
    assert text.startswith("The body is not JSON: ")
    nothing_written(fhir_world)


def test_another_resource_type_is_400(fhir_world):
    reply = post(fhir_world, {"resourceType": "Patient", "name": [{"family": "Doe"}]})
    assert reply.status == 400
    assert issues_of(reply) == [
        ("Expected a QuestionnaireResponse, got resourceType 'Patient'", "resourceType")
    ]
    nothing_written(fhir_world)


def test_what_fhir_resources_refuses_is_422_located_by_link_id(fhir_world):
    responses = exported(fhir_world)
    bad = as_new_case(responses[CASE_Q], "B-1")
    bad["item"][0]["item"][0]["answer"][0]["valueCoding"] = "anatomic_model"  # not a Coding
    bad["colour"] = "blue"
    reply = post(fhir_world, bad)
    assert reply.status == 422
    found = issues_of(reply)
    assert (
        "Not valid FHIR: Extra inputs are not permitted",
        "QuestionnaireResponse.colour",
    ) in found
    expressions = [e for _, e in found]
    assert (
        "QuestionnaireResponse.item.where(linkId='case').item.where(linkId='object_type')"
        ".answer[0].valueCoding"
    ) in expressions
    nothing_written(fhir_world)


def test_unknown_items_and_wrong_answer_types_each_get_an_issue(fhir_world):
    responses = exported(fhir_world)
    bad = as_new_case(responses[CASE_Q], "B-2")
    case_section = bad["item"][0]
    case_section["item"].append({"linkId": "patient_name", "answer": [{"valueString": "Jane"}]})
    for item in case_section["item"]:
        if item["linkId"] == "age_years":
            item["answer"] = [{"valueString": "67"}]
        if item["linkId"] == "is_point_of_care":
            item["answer"] = [{"valueInteger": 1}]
    printed = next(s for s in bad["item"] if s["linkId"] == "printed_model")
    second = [i for i in printed["item"] if i["linkId"] == "prints"][1]
    for item in second["item"]:
        if item["linkId"] == "prints.copies":
            item["answer"] = [{"valueInteger": True}]
        if item["linkId"] == "prints.material":
            item["answer"] = [{"valueCoding": {"system": "http://snomed.info/sct", "code": "x"}}]
    bad["item"].append({"linkId": "sex", "answer": [{"valueCoding": {"code": "female"}}]})
    reply = post(fhir_world, bad)
    assert reply.status == 422, reply.body
    case_path = "QuestionnaireResponse.item.where(linkId='case')"
    prints_path = (
        "QuestionnaireResponse.item.where(linkId='printed_model').item.where(linkId='prints')[1]"
    )
    assert sorted(issues_of(reply)) == sorted(
        [
            (
                "Unknown item 'patient_name' in group 'case': the registry3d-case "
                "Questionnaire has no such item",
                f"{case_path}.item.where(linkId='patient_name')",
            ),
            (
                "Patient age (years) (age_years) expects valueInteger (a whole number); "
                "got valueString",
                f"{case_path}.item.where(linkId='age_years').answer[0]",
            ),
            (
                "Made at the point of care (is_point_of_care) expects valueBoolean "
                "(true or false); got valueInteger",
                f"{case_path}.item.where(linkId='is_point_of_care').answer[0]",
            ),
            (
                "Number of copies (prints.copies) expects valueInteger (a whole number); "
                "got valueInteger",
                f"{prints_path}.item.where(linkId='prints.copies').answer[0]",
            ),
            (
                "Material (prints.material) expects a code of "
                "https://registry3d.org/fhir/CodeSystem/material",
                f"{prints_path}.item.where(linkId='prints.material').answer[0].valueCoding",
            ),
            (
                "Item 'sex' belongs in group 'case', not at the top level",
                "QuestionnaireResponse.item[7]",
            ),
        ]
    )
    assert not Case.objects.filter(case_uid="B-2").exists()


def test_the_dictionarys_problems_name_the_item(fhir_world):
    responses = exported(fhir_world)
    bad = as_new_case(responses[CASE_Q], "B-3")
    printed = next(s for s in bad["item"] if s["linkId"] == "printed_model")
    first = [i for i in printed["item"] if i["linkId"] == "prints"][0]
    for item in first["item"]:
        if item["linkId"] == "prints.material":
            item["answer"] = [{"valueCoding": {"code": "unobtainium"}}]
    case_section = bad["item"][0]
    case_section["item"] = [i for i in case_section["item"] if i["linkId"] != "sex"]
    reply = post(fhir_world, bad)
    assert reply.status == 422
    found = dict((e, t) for t, e in issues_of(reply))
    prints_path = (
        "QuestionnaireResponse.item.where(linkId='printed_model').item.where(linkId='prints')[0]"
        ".item.where(linkId='prints.material')"
    )
    assert found[prints_path].startswith("Material: the value is not a code of this list")
    assert found["QuestionnaireResponse.item.where(linkId='case').item.where(linkId='sex')"] == (
        "Sex is required"
    )
    assert not Case.objects.filter(case_uid="B-3").exists()


@pytest.mark.parametrize(
    ("change", "message", "expression"),
    [
        (
            {"status": "stopped"},
            "status is not accepted: send in-progress (a draft), completed or amended",
            "QuestionnaireResponse.status",
        ),
        (
            {"questionnaire": "https://example.org/Questionnaire/other"},
            f"Unknown questionnaire: expected {CASE_Q} or {PHYSICIAN_Q}",
            "QuestionnaireResponse.questionnaire",
        ),
        (
            {"questionnaire": f"{CASE_Q}|0.9.0"},
            "These are answers to version 0.9.0 of registry3d-case; this registry reads "
            "version 1.1.0 (GET /fhir/Questionnaire/registry3d-case)",
            "QuestionnaireResponse.questionnaire",
        ),
        (
            {"identifier": {"system": "urn:mrn", "value": "12345678"}},
            "identifier must carry the site's case ID: system urn:registry3d:case-uid (or "
            "urn:registry3d:site:SITEA:case-uid) and value the case ID",
            "QuestionnaireResponse.identifier",
        ),
        (
            {"subject": {"reference": "Patient/1", "display": "Jane Doe"}},
            "subject must be the patient key as an identifier with system "
            "urn:registry3d:site:SITEA:patient-key, and nothing else (no reference, no name)",
            "QuestionnaireResponse.subject",
        ),
    ],
)
def test_record_fields_are_checked(fhir_world, change, message, expression):
    resource = {**exported(fhir_world)[CASE_Q], **change}
    reply = post(fhir_world, resource)
    assert reply.status == 422, reply.body
    assert issues_of(reply) == [(message, expression)]
    nothing_written(fhir_world)


def test_patient_identifiers_are_refused_and_never_stored(fhir_world):
    responses = exported(fhir_world)
    bad = copy.deepcopy(responses[PHYSICIAN_Q])
    for item in bad["item"][0]["item"]:
        if item["linkId"] == "ua_comment":
            item["answer"] = [{"valueString": f"Seen with MRN {MRN[4:]}, John Smith"}]
    reply = post(fhir_world, bad)
    assert reply.status == 422, reply.body
    ((text, expression),) = issues_of(reply)
    assert expression == (
        "QuestionnaireResponse.item.where(linkId='user_assessment').item.where(linkId='ua_comment')"
    )
    assert "patient identifiers" in text
    named = copy.deepcopy(responses[CASE_Q])
    named["subject"]["display"] = "Jane Doe"
    refused = post(fhir_world, named)
    assert refused.status == 422
    assert issues_of(refused) == [
        (
            "subject.display is not accepted: the registry never takes patient names",
            "QuestionnaireResponse.subject.display",
        )
    ]
    nothing_written(fhir_world)
    dump = json.dumps(list(CaseVersion.objects.values("data", "patient_key")))
    assert "John Smith" not in dump and "Jane Doe" not in dump and MRN[4:] not in dump


def test_a_withdrawn_case_is_a_409(fhir_world):
    from registry3d.cases.services import withdraw_case

    responses = exported(fhir_world)
    withdraw_case(fhir_world["case"], "Entered at the wrong site")
    reply = post(fhir_world, responses[PHYSICIAN_Q])
    assert reply.status == 409
    assert issues_of(reply) == [("Case A-1 was withdrawn and cannot be changed", "")]


# --- Who may post -------------------------------------------------------------------------------


def test_carols_site_b_token_cannot_read_or_write_site_as_case(fhir_world):
    responses = exported(fhir_world)
    for resource in (responses[PHYSICIAN_Q], responses[CASE_Q]):
        # Named with Site A's systems: Site B has no such case.
        reply = post(fhir_world, resource, token="other")
        assert reply.status == 404, reply.body
        assert issues_of(reply) == [("No case with this ID at the token's site", "")]
    plain = copy.deepcopy(responses[PHYSICIAN_Q])
    plain["identifier"]["system"] = "urn:registry3d:case-uid"
    del plain["subject"]
    reply = post(fhir_world, plain, token="other")
    assert reply.status == 404
    assert Case.objects.get(case_uid="A-1").version == 1
    assert Case.objects.filter(site=fhir_world["world"].site_b).exists() is False
    read = fhir_world["http"].call("GET", "/api/v1/cases/A-1/fhir", token=fhir_world["other"])
    assert read.status == 404


def test_a_read_token_gets_403_and_no_token_401(fhir_world):
    responses = exported(fhir_world)
    reply = post(fhir_world, responses[CASE_Q], token="read")
    assert reply.status == 403
    assert issues_of(reply) == [
        ("This token may only read; ask the site manager for a write token", "")
    ]
    anonymous = post(fhir_world, responses[CASE_Q], token=None)
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="registry3d"'
    nothing_written(fhir_world)


def test_get_is_not_allowed_on_the_response_endpoint(fhir_world):
    reply = fhir_world["http"].call("GET", PATH, token=fhir_world["write"])
    assert reply.status == 405


def test_the_bundle_reflects_a_posted_response(fhir_world):
    responses = exported(fhir_world)
    post(fhir_world, as_new_case(responses[CASE_Q], "A-3"))
    reply = fhir_world["http"].call("GET", "/api/v1/cases/A-3/fhir", token=fhir_world["read"])
    bundle = read_bundle(reply.body)
    (case_response,) = resources_of(bundle, "QuestionnaireResponse")
    lab, _ = split(fhir_world["case"].data)
    assert read_answers(case_response, published_questionnaire("registry3d-case")) == lab


def test_a_body_over_the_limit_is_413_and_deep_nesting_400(fhir_world):
    from django.test import override_settings

    with override_settings(REGISTRY3D_API_MAX_BODY_BYTES=100):
        reply = post(fhir_world, exported(fhir_world)[CASE_Q])
    assert reply.status == 413
    ((text, _),) = issues_of(reply)
    assert text.endswith("bytes; at most 100 are accepted.")
    deep = b'{"a":' * 40 + b"1" + b"}" * 40
    nested = post(fhir_world, None, raw=deep)
    assert nested.status == 400
    assert issues_of(nested) == [
        ("The JSON body nests 40 levels deep; at most 32 are accepted.", "")
    ]
    nothing_written(fhir_world)
