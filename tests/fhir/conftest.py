"""A full case at Site A, tokens, and an independent reader of FHIR answers.

The reader below uses only fhir.resources and the published Questionnaire:
it does not call the registry's own parser, so a mapping error on either
side shows up as a difference.
"""

import json
from decimal import Decimal

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from registry3d.cases import services as cases
from registry3d.dictionary import registry
from registry3d.lib.pseudonym import patient_key
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services
from tests.api import conftest as api_fixtures
from tests.cases.conftest import a_case, printers_for

# The live server and its world, as the API tests have them.
http = api_fixtures.http
http_world = api_fixtures.http_world

# Planted at input: the MRN behind the patient key must never come out.
MRN = "MRN-4471-0098"
FHIR_JSON = "application/fhir+json"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def full_data(labels) -> dict:
    """A complete anatomic-model case with the physician's answers and every kind of value."""
    data = a_case(33, labels)  # an anatomic model of two parts, two prints, 0559T + 0560T
    data.update(
        respondent_role="surgeon_or_proceduralist",
        ua_easy_to_use="4",
        ua_important="5",
        ua_plan_altered="4",
        est_procedure_time_saved_min=-15,
        plan_change_type=["approach_changed", "implant_or_device_size_changed"],
        ua_comment="The model showed the defect clearly.",
        procedure_cpt="33690",
        primary_diagnosis_icd10="Q21.1",
        intraop_complication="none",
        procedure_duration_min=184,
        vendor_equivalent_price_usd=1250.5,
        post_processing_machine_minutes=45,
        effort_cad_non_clinician="unknown",
        segmentation_software="materialise_mimics",
        segmentation_software_version="25",
        age_years=67,
    )
    data.pop("age_under_1_months", None)
    data["anatomic_parts"][0]["comment"] = "pulmonary trunk"
    return data


def save_full_case(world, labels, uid="A-1"):
    return cases.save_case(
        world.site_a,
        case_uid=uid,
        data=full_data(labels),
        status="submitted",
        patient_key=patient_key("SITEA", MRN),
        actor=world.alice,
    ).case


@pytest.fixture
def fhir_world(http_world, http):
    """Site A's full case, and tokens: Alice writes, Bob reads, Carol writes at Site B."""
    limiter.clear()
    labels = printers_for(http_world.site_a)
    printers_for(http_world.site_b)
    case = save_full_case(http_world, labels)
    _, write = services.create_token(http_world.site_a, http_world.alice, name="W", scope="write")
    _, read = services.create_token(http_world.site_a, http_world.bob, name="R", scope="read")
    _, other = services.create_token(http_world.site_b, http_world.carol, name="B", scope="write")
    return {
        "http": http,
        "world": http_world,
        "labels": labels,
        "case": case,
        "write": write,
        "read": read,
        "other": other,
    }


# --- An independent reader ---------------------------------------------------------------------


def published_questionnaire(name: str) -> Questionnaire:
    reply = Client().get(f"/fhir/Questionnaire/{name}")
    assert reply.status_code == 200
    return Questionnaire.model_validate_json(reply.content)


def question_items(questionnaire: Questionnaire) -> dict:
    """{linkId: Questionnaire item} for every question and group (not display items)."""
    found = {}

    def walk(items):
        for item in items or []:
            if item.type != "display":
                found[item.linkId] = item
            walk(item.item)

    walk(questionnaire.item)
    return found


def _answer_value(answer):
    if answer.valueCoding is not None:
        return answer.valueCoding.code
    for key in ("valueInteger", "valueBoolean", "valueString"):
        value = getattr(answer, key)
        if value is not None:
            return value
    if answer.valueDecimal is not None:
        return (
            float(answer.valueDecimal)
            if isinstance(answer.valueDecimal, Decimal)
            else (answer.valueDecimal)
        )
    if any(e.url == DATA_ABSENT and e.valueCode == "unknown" for e in answer.extension or []):
        return "unknown"
    raise AssertionError(f"unreadable answer {answer}")


def read_answers(response: QuestionnaireResponse, questionnaire: Questionnaire) -> dict:
    """Case data from a QuestionnaireResponse, by the Questionnaire's own item definitions."""
    known = question_items(questionnaire)

    def read(items) -> dict:
        data: dict = {}
        for item in items or []:
            definition = known[item.linkId]
            name = item.linkId.split(".")[-1]
            if definition.type == "group" and definition.repeats:
                data.setdefault(name, []).append(read(item.item))
            elif definition.type == "group":
                data.update(read(item.item))
            else:
                values = [_answer_value(a) for a in item.answer or []]
                data[name] = values if definition.repeats else values[0]
        return data

    return read(response.item)


def read_bundle(body: bytes) -> Bundle:
    return Bundle.model_validate_json(body)


def resources_of(bundle: Bundle, resource_type: str) -> list:
    return [e.resource for e in bundle.entry if e.resource.get_resource_type() == resource_type]


def questionnaire_names() -> tuple[set, set]:
    dictionary = registry.current().dictionary
    physician = {e.name for s in dictionary.questionnaire_sections() for e in s.elements}
    return set(dictionary.elements) - physician, physician


def split(data: dict) -> tuple[dict, dict]:
    """The lab's part and the physician's part of case data."""
    case_names, physician = questionnaire_names()
    return (
        {k: v for k, v in data.items() if k in case_names},
        {k: v for k, v in data.items() if k in physician},
    )


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
