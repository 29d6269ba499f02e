"""The validator against cases generated from the dictionary itself."""

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry3d.dictionary.examples import synthetic_case
from registry3d.dictionary.loader import load_dictionary
from registry3d.dictionary.validation import Validator
from tests.dictionary.conftest import CASE_FILE

DICTIONARY = load_dictionary(CASE_FILE)
VALIDATOR = Validator(DICTIONARY)


def errors(problems):
    return [p for p in problems if p.severity == "error"]


def valid_case(seed: int, **options) -> dict:
    return synthetic_case(DICTIONARY, random.Random(seed), **options)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), questionnaire=st.booleans())
def test_generated_cases_are_valid(seed, questionnaire):
    case = valid_case(seed, with_questionnaire=questionnaire)
    assert errors(VALIDATOR.validate(case)) == []


def wrong_values(element):
    """Values of the wrong kind for an element, with the code each must give."""
    kind = element.type
    if kind in ("text", "code"):
        return [(12345, "wrong_type")]
    if kind in ("integer", "decimal"):
        values = [("12", "wrong_type")]
        if kind == "integer":
            values.append((1.5, "wrong_type"))
        if element.max is not None:
            values.append((element.max + 1, "out_of_range"))
        if element.min is not None:
            values.append((element.min - 1, "out_of_range"))
        return values
    if kind == "boolean":
        return [("yes", "wrong_type")]
    if kind == "choice":
        return [("no_such_code", "not_in_value_set")]
    if kind == "year_month":
        return [("2026-13", "bad_format"), ("July 2026", "bad_format")]
    if kind == "duration":
        return [(-1, "out_of_range"), ("about an hour", "wrong_type")]
    return []


def mutable_elements():
    found = []
    for element in DICTIONARY.elements.values():
        if element.is_group:
            found += [(element, item) for item in element.elements]
        else:
            found.append((None, element))
    return found


@pytest.mark.parametrize(
    "group, element", mutable_elements(), ids=[e.path_name for _, e in mutable_elements()]
)
def test_one_wrong_value_is_reported_at_its_path_with_its_code(group, element):
    for number, (value, code) in enumerate(wrong_values(element)):
        case = valid_case(number, with_questionnaire=True)
        if group is None:
            case[element.name] = value
            path = element.name
        else:
            if not case.get(group.name):
                case[group.name] = [{}]
            case[group.name][-1][element.name] = value
            path = f"{group.name}[{len(case[group.name])}].{element.name}"
        found = errors(VALIDATOR.validate(case))
        assert [(p.path, p.code) for p in found] == [(path, code)], (value, found)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), data=st.data())
def test_any_single_mutation_names_only_the_mutated_path(seed, data):
    case = valid_case(seed, with_questionnaire=True)
    group, element = data.draw(st.sampled_from(mutable_elements()))
    candidates = wrong_values(element)
    if not candidates:
        return
    value, code = data.draw(st.sampled_from(candidates))
    if group is None:
        case[element.name] = value
        path = element.name
    else:
        items = case.setdefault(group.name, [{}]) or [{}]
        case[group.name] = items
        index = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
        items[index][element.name] = value
        path = f"{group.name}[{index + 1}].{element.name}"
    assert [(p.path, p.code) for p in errors(VALIDATOR.validate(case))] == [(path, code)]


def test_unknown_elements_are_named_at_the_top_and_inside_groups():
    case = valid_case(1)
    case["favourite_colour"] = "blue"
    case["prints"][0]["glitter"] = True
    found = {(p.path, p.code, p.message) for p in VALIDATOR.validate(case)}
    assert (
        "favourite_colour",
        "unknown_element",
        "'favourite_colour' is not an element of dictionary version 1.1.0",
    ) in found
    assert (
        "prints[1].glitter",
        "unknown_element",
        "'glitter' is not an element of prints",
    ) in found


def test_too_many_repeats_are_reported():
    case = valid_case(2)
    case["prints"] = [copy.deepcopy(case["prints"][0]) for _ in range(6)]
    found = errors(VALIDATOR.validate(case))
    assert [(p.path, p.code, p.message) for p in found] == [
        ("prints", "too_many", "Prints: at most 5 allowed, 6 given")
    ]


def test_a_multiple_choice_names_the_bad_entry_and_repeats():
    case = valid_case(3)
    case["intended_uses"] = ["pre_procedural_planning", "dancing"]
    found = errors(VALIDATOR.validate(case))
    assert [(p.path, p.code) for p in found] == [("intended_uses[2]", "not_in_value_set")]
    case["intended_uses"] = ["pre_procedural_planning", "pre_procedural_planning"]
    found = errors(VALIDATOR.validate(case))
    assert [(p.path, p.code) for p in found] == [("intended_uses", "duplicate_value")]


def find(case, **changes):
    case = copy.deepcopy(case)
    case.update(changes)
    return {(p.path, p.code, p.severity) for p in VALIDATOR.validate(case)}


def model_case(seed=10):
    for n in range(seed, seed + 100):
        case = valid_case(n)
        if case["object_type"] == "anatomic_model":
            return case
    raise AssertionError("no model case")


def guide_case(seed=10):
    for n in range(seed, seed + 100):
        case = valid_case(n)
        if case["object_type"] == "anatomic_guide":
            return case
    raise AssertionError("no guide case")


def test_a_draft_may_be_incomplete_but_a_submission_may_not():
    draft = {"object_type": "anatomic_guide", "age_years": 54}
    assert VALIDATOR.validate(draft, complete=False) == []
    found = {(p.path, p.code, p.message) for p in VALIDATOR.validate(draft, complete=True)}
    assert ("sex", "required", "Sex is required") in found
    assert (
        "guide_type",
        "required",
        "Type of anatomic guide is required when Type of 3D printed object is Anatomic guide",
    ) in found
    assert not any(p[0] == "anatomic_parts" for p in found)


def test_required_when_inside_a_group_item():
    case = model_case()
    case["anatomic_parts"][0].update(region="upper_extremity", laterality=None)
    found = find(case)
    assert ("anatomic_parts[1].laterality", "required", "error") in found


def test_a_model_may_not_have_a_guide_type():
    assert ("guide_type", "rule_R1", "error") in find(model_case(), guide_type="cutting_guide")


def test_exactly_one_print_is_primary():
    case = model_case()
    case["prints"] = [dict(case["prints"][0], print_role="secondary")]
    assert ("prints", "rule_R7", "error") in find(case)


def test_prints_refer_only_to_defined_parts():
    case = model_case()
    case["prints"][0]["part_numbers"] = [len(case["anatomic_parts"]) + 1]
    assert ("prints[1].part_numbers", "rule_R5", "error") in find(case)


def test_printers_must_be_in_the_sites_inventory_when_it_is_known():
    case = model_case()
    label = case["prints"][0]["printer_label"]
    assert VALIDATOR.validate(case, site_printer_labels=[label]) == [] or not errors(
        VALIDATOR.validate(case, site_printer_labels=[label])
    )
    found = {(p.path, p.code) for p in VALIDATOR.validate(case, site_printer_labels=["OTHER"])}
    assert ("prints[1].printer_label", "rule_R6") in found
    # Unknown inventory (e.g. linting a file): the rule is not applied.
    assert not any(p.code == "rule_R6" for p in VALIDATOR.validate(case))


def test_out_of_scope_cases_are_refused():
    found = find(model_case(), is_point_of_care=False, exclusion_check=False)
    assert {("", "rule_R10a", "error"), ("", "rule_R10b", "error")} <= {
        (p, c, s) for p, c, s in found
    } or {
        ("is_point_of_care", "rule_R10a", "error"),
        ("exclusion_check", "rule_R10b", "error"),
    } <= found


def test_unusual_values_are_warnings_not_errors():
    case = valid_case(4, with_questionnaire=True)
    case["est_procedure_time_saved_min"] = 700
    problems = VALIDATOR.validate(case)
    assert errors(problems) == []
    assert [(p.path, p.code, p.message) for p in problems] == [
        (
            "est_procedure_time_saved_min",
            "unusually_high",
            f"{DICTIONARY.elements['est_procedure_time_saved_min'].label}: the value is above 600 "
            "minutes; please check it",
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Patient John Smith",
        "call 555-123-4567",
        "MRN 12345678",
        "born 03/14/1961",
        "mail jane.doe@example.org",
    ],
)
def test_identifiers_in_free_text_are_refused(text):
    case = model_case()
    case["anatomic_parts"][0]["comment"] = text
    found = errors(VALIDATOR.validate(case))
    assert [(p.path, p.code) for p in found] == [
        ("anatomic_parts[1].comment", "identifier_suspected")
    ]
    assert text not in found[0].message


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("cad_software", "cad_software_other"),
        ("segmentation_software", "segmentation_software_other"),
        ("prints.material_trade_name", "prints[1].material_trade_name_other"),
    ],
)
def test_identifiers_in_the_name_of_another_product_are_refused(where, path):
    """An unlisted product's name is typed: a patient's name there is refused."""
    case = model_case()
    if "." in where:
        group, name = where.split(".")
        case[group][0].update({name: "other", f"{name}_other": "Dr Jones"})
    else:
        case.update({where: "other", f"{where}_other": "Dr Jones"})
    found = errors(VALIDATOR.validate(case))
    assert [(p.path, p.code) for p in found] == [(path, "identifier_suspected")]
    assert "Jones" not in found[0].message


def test_product_names_are_codes_and_their_versions_are_bounded():
    case = model_case()
    case.update(cad_software="materialise_3_matic", cad_software_version="18.0")
    case["segmentation_software_version"] = "25.0 SP1"
    case["prints"][0]["material_trade_name"] = "stratasys_veroclear"
    assert errors(VALIDATOR.validate(case)) == []
    screened = {name for name, e in DICTIONARY.all_elements.items() if e.screened}
    assert {"cad_software_other", "prints.material_trade_name_other", "ua_comment"} <= screened


def test_every_text_element_is_screened_even_when_a_pattern_bounds_it():
    """A pattern bounds the shape, not the content: ``Smith_John`` fits a label (#15)."""
    texts = {name for name, e in DICTIONARY.all_elements.items() if e.type == "text"}
    screened = {name for name, e in DICTIONARY.all_elements.items() if e.screened}
    tokens = {name for name, e in DICTIONARY.all_elements.items() if e.token}
    assert texts == screened
    assert {"prints.printer_label", "cad_software_version"} <= tokens


def test_a_printer_label_that_fits_its_pattern_but_holds_a_name_and_a_date_is_refused():
    case = model_case()
    case["prints"][0]["printer_label"] = "Smith_John_1950-03-03"
    found = errors(VALIDATOR.validate(case))
    assert [p.as_dict() for p in found] == [
        {
            "path": "prints[1].printer_label",
            "code": "identifier_suspected",
            "message": "Printer: this looks like a full date; the registry never stores "
            "patient identifiers, so remove it",
            "severity": "error",
        }
    ]


@pytest.mark.parametrize("typed", ["25", "18.0", "5.6.1", "2024.2", "25 SP1", "2024.1 HF2"])
def test_a_software_version_of_up_to_three_parts_or_a_year_and_a_part_is_accepted(typed):
    case = model_case()
    case["segmentation_software_version"] = typed
    assert errors(VALIDATOR.validate(case)) == []


@pytest.mark.parametrize(
    "typed",
    [
        "Mimics 25",
        "John Smith",
        "1950-03-03",
        "03/03/1950",
        "617.555.0100",
        "123.45.6789",
        "192.168.1.10",
        "01103",
        "v25",
        "25 by JS",
        "1950.03.03",
        "2024.1.1",
    ],
)
def test_a_software_version_is_a_number_not_text(typed):
    case = model_case()
    case["segmentation_software_version"] = typed
    found = errors(VALIDATOR.validate(case))
    assert [p.path for p in found] == ["segmentation_software_version"]


@pytest.mark.parametrize("complete", [True, False])
def test_a_product_is_named_in_words_only_when_it_is_not_listed(complete):
    case = model_case()
    case.update(cad_software="blender", cad_software_other="Blender fork")
    case["prints"][0].update(material_trade_name_other="House resin")
    found = {(p.path, p.message) for p in errors(VALIDATOR.validate(case, complete=complete))}
    assert found == {
        (
            "cad_software_other",
            "Name the CAD or mesh software only when it is not listed; choose Other, or clear "
            "the name.",
        ),
        (
            "prints[1].material_trade_name_other",
            "Name the material only when it is not listed; choose Other, or clear the name.",
        ),
    }
    case.update(cad_software="other")
    case["prints"][0].update(material_trade_name="other")
    assert errors(VALIDATOR.validate(case, complete=complete)) == []


def test_a_retired_code_is_refused_with_its_replacement(dictionary_copy):
    path = dictionary_copy(
        (
            '      - {code: other, label: "Other"}\n',
            '      - {code: other, label: "Other"}\n'
            "      - {code: not_recorded, label: Not recorded, retired_in: 1.2.0,"
            " replaced_by: unknown}\n",
        ),
        ("version: 1.1.0\n", "version: 1.2.0\n"),
        append="  - version: 1.2.0\n    released: 2027-01-01\n    summary: Retire a code.\n"
        "    changes: [{kind: value_renamed, element: sex, from: not_recorded, to: unknown}]\n",
    )
    validator = Validator(load_dictionary(path))
    case = dict(model_case(), sex="not_recorded")
    found = errors(validator.validate(case))
    assert [(p.path, p.code, p.message) for p in found] == [
        (
            "sex",
            "retired_code",
            "Sex: 'not_recorded' was retired in dictionary version 1.2.0; use 'unknown'",
        )
    ]


def test_nan_and_infinity_are_not_numbers():
    case = model_case()
    case["prints"][0]["material_cost_usd"] = float("nan")
    found = errors(VALIDATOR.validate(case))
    assert [(p.path, p.code) for p in found] == [("prints[1].material_cost_usd", "wrong_type")]


def test_case_data_that_is_not_an_object_is_one_clear_problem():
    assert [(p.path, p.code) for p in VALIDATOR.validate(["a", "list"])] == [("", "wrong_type")]


def test_questionnaire_answers_are_checked_on_their_own():
    answers = {
        "respondent_role": "surgeon_or_proceduralist",
        "ua_important": "5",
        "est_procedure_time_saved_min": 30,
    }
    assert VALIDATOR.validate_questionnaire(answers) == []
    found = VALIDATOR.validate_questionnaire({"ua_important": "7", "age_years": 40})
    assert {(p.path, p.code) for p in found} == {
        ("ua_important", "not_in_value_set"),
        ("age_years", "unknown_element"),
        ("respondent_role", "required"),
    }


@pytest.mark.parametrize("key", ["Fatima_Okafor", "Maria_Garcia", "Smith-John"])
def test_an_unknown_element_named_like_a_person_is_not_named_back(key):
    """A key has no spaces, so it is screened as a file name is (#15)."""
    found = VALIDATOR.validate({key: 1, "sex": "female"}, complete=False)
    assert [p.as_dict() for p in found] == [
        {
            "path": "",
            "code": "unknown_element",
            "message": f"this name is not an element of dictionary version {DICTIONARY.version}",
            "severity": "error",
        }
    ]
