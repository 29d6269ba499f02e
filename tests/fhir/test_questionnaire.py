"""The dictionary as FHIR Questionnaires, and the CapabilityStatement, read with fhir.resources."""

import json

import pytest
from django.test import Client
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire

from registry3d.dictionary import registry
from tests.fhir.conftest import FHIR_JSON, question_items

pytestmark = pytest.mark.django_db
BASE = "https://registry3d.org/fhir/Questionnaire/"
HELP = "http://hl7.org/fhir/questionnaire-item-control"


def get(name):
    reply = Client().get(f"/fhir/Questionnaire/{name}")
    assert reply.status_code == 200
    assert reply["Content-Type"].split(";")[0] == FHIR_JSON
    return reply, Questionnaire.model_validate_json(reply.content)


def test_both_questionnaires_are_public_and_name_the_dictionary_version():
    dictionary = registry.current().dictionary
    for name, title in (
        ("registry3d-case", "Registry3dCase"),
        ("registry3d-physician", "Registry3dPhysician"),
    ):
        reply, questionnaire = get(name)
        assert reply["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
        assert questionnaire.id == name
        assert questionnaire.url == BASE + name
        assert questionnaire.version == dictionary.version == "1.1.0"
        assert questionnaire.name == title
        assert questionnaire.status == "active"  # 1.1.0 is published
        assert questionnaire.title.startswith("3D printing case: ")


def test_every_dictionary_element_is_an_item_with_its_label_and_help():
    dictionary = registry.current().dictionary
    items = {}
    helps = {}
    for name in ("registry3d-case", "registry3d-physician"):
        _, questionnaire = get(name)
        items.update(question_items(questionnaire))

        def walk(children):
            for item in children or []:
                if item.type == "display":
                    assert item.extension[0].valueCodeableConcept.coding[0].code == "help"
                    assert item.extension[0].valueCodeableConcept.coding[0].system == HELP
                    helps[item.linkId.removesuffix(".help")] = item.text
                walk(item.item)

        walk(questionnaire.item)
    for section in dictionary.sections:
        assert items[section.id].type == "group"
        assert items[section.id].text == section.label
        assert helps[section.id] == section.help
    for path, element in dictionary.all_elements.items():
        assert path in items, f"{path} is not in any Questionnaire"
        assert items[path].text == element.label
        assert helps[path] == element.help
        assert items[path].code[0].code == path
    sections = {s.id for s in dictionary.sections}
    assert set(items) == set(dictionary.all_elements) | sections


def test_link_ids_are_unique_in_each_questionnaire():
    for name in ("registry3d-case", "registry3d-physician"):
        reply, _ = get(name)
        seen = []

        def walk(children, seen=seen):
            for item in children or []:
                seen.append(item["linkId"])
                walk(item.get("item"))

        walk(json.loads(reply.content)["item"])
        assert len(seen) == len(set(seen))


def test_the_case_questionnaire_holds_the_case_sections_and_the_physician_one_the_rest():
    dictionary = registry.current().dictionary
    _, case = get("registry3d-case")
    _, physician = get("registry3d-physician")
    assert [i.linkId for i in case.item] == [s.id for s in dictionary.case_sections()]
    assert [i.linkId for i in physician.item] == ["user_assessment"]


def test_item_types_follow_the_dictionary():
    dictionary = registry.current().dictionary
    _, case = get("registry3d-case")
    _, physician = get("registry3d-physician")
    items = {**question_items(case), **question_items(physician)}
    expected = {
        "text": "string",
        "code": "string",
        "integer": "integer",
        "decimal": "decimal",
        "boolean": "boolean",
        "choice": "choice",
        "multi_choice": "choice",
        "year_month": "string",
        "duration": "integer",
        "integer_list": "integer",
        "group": "group",
    }
    for path, element in dictionary.all_elements.items():
        item = items[path]
        wanted = (
            "text" if element.free_text and element.max_length > 255 else expected[element.type]
        )
        assert item.type == wanted, path
        repeats = element.type in ("multi_choice", "integer_list", "group")
        assert bool(item.repeats) is repeats, path
        if element.value_set is not None:
            assert [o.valueCoding.code for o in item.answerOption] == (
                element.value_set.active_codes()
            )
        else:
            assert item.answerOption is None, path
        if element.required:
            assert item.required is True, path


def _extensions(item) -> dict:
    return {e.url.rsplit("/", 1)[-1]: e for e in item.extension or []}


def test_ranges_units_patterns_and_repeats_are_extensions():
    _, case = get("registry3d-case")
    items = question_items(case)
    age = _extensions(items["age_years"])
    assert (age["minValue"].valueInteger, age["maxValue"].valueInteger) == (0, 120)
    assert (
        age["questionnaire-unit"].valueCoding.system,
        age["questionnaire-unit"].valueCoding.code,
    ) == (
        "http://unitsofmeasure.org",
        "a",
    )
    month = _extensions(items["case_year_month"])
    assert month["regex"].valueString == r"^[0-9]{4}-(0[1-9]|1[0-2])$"
    assert month["entryFormat"].valueString == "YYYY-MM"
    prints = _extensions(items["prints"])
    assert (
        prints["questionnaire-minOccurs"].valueInteger,
        prints["questionnaire-maxOccurs"].valueInteger,
    ) == (1, 5)
    effort = _extensions(items["effort_cad_clinician"])
    assert effort["maxValue"].valueInteger == 10000
    assert effort["unknown-answer"].valueCode == "unknown"
    assert effort["questionnaire-unit"].valueCoding.code == "min"
    cost = _extensions(items["prints.material_cost_usd"])
    assert cost["questionnaire-unit"].valueCoding.code == "[USD]"
    assert float(cost["maxValue"].valueDecimal) == 100000
    assert items["prints.printer_label"].maxLength == 64
    assert _extensions(items["prints.printer_label"])["regex"].valueString == (
        r"^[A-Za-z0-9_\-]{1,64}$"
    )
    cpt = items["cpt_lines.code"]
    assert {o.valueCoding.system for o in cpt.answerOption} == {"http://www.ama-assn.org/go/cpt"}


def test_required_when_conditions_become_enable_when():
    _, case = get("registry3d-case")
    items = question_items(case)
    laterality = items["anatomic_parts.laterality"]
    assert laterality.required is True
    assert laterality.enableBehavior == "any"
    assert [(c.question, c.operator, c.answerCoding.code) for c in laterality.enableWhen] == [
        ("anatomic_parts.region", "=", "upper_extremity"),
        ("anatomic_parts.region", "=", "lower_extremity"),
        ("anatomic_parts.region", "=", "breast"),
    ]
    assert _extensions(laterality)["required-when"].valueString == (
        "region in ['upper_extremity', 'lower_extremity', 'breast']"
    )
    sterile = items["prints.biocompatible_sterilizable"]
    assert [
        (c.question, c.answerCoding.code if c.answerCoding else c.answerBoolean)
        for c in sterile.enableWhen
    ] == [
        ("object_type", "anatomic_guide"),
        ("used_in_sterile_field", True),
    ]
    assert sterile.enableBehavior == "any"
    cpt_lines = items["cpt_lines"]
    assert [(c.question, c.answerCoding.code) for c in cpt_lines.enableWhen] == [
        ("charge_billed", "billed_cpt_cat_iii")
    ]
    assert items["procedure_cpt"].enableWhen is None  # not required: always shown


def test_an_untranslatable_condition_stays_an_extension_and_the_item_is_shown():
    from registry3d.fhir.questionnaire import enable_when

    dictionary = registry.current().dictionary
    assert enable_when("count(prints) > 1", dictionary, None) is None
    assert (
        enable_when("(sex == 'male' or sex == 'female') and age_years > 3", dictionary, None)
        is None
    )
    assert enable_when("filled(procedure_cpt)", dictionary, None) == {
        "enableWhen": [{"question": "procedure_cpt", "operator": "exists", "answerBoolean": True}]
    }


def test_an_unknown_questionnaire_is_a_404_operation_outcome():
    reply = Client().get("/fhir/Questionnaire/registry3d-secret")
    assert reply.status_code == 404
    outcome = OperationOutcome.model_validate_json(reply.content)
    assert outcome.issue[0].details.text == (
        "No Questionnaire 'registry3d-secret'; there are registry3d-case and registry3d-physician"
    )


def test_metadata_says_fhir_4_3_0_and_what_is_supported():
    reply = Client().get("/fhir/metadata")
    assert reply.status_code == 200
    assert reply["Content-Type"] == "application/fhir+json; fhirVersion=4.3"
    statement = CapabilityStatement.model_validate_json(reply.content)
    assert statement.fhirVersion == "4.3.0"
    assert statement.kind == "instance"
    supported = {r.type: [i.code for i in r.interaction] for r in statement.rest[0].resource}
    assert supported == {"Questionnaire": ["read"], "QuestionnaireResponse": ["create"]}
