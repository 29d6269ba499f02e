"""CPT 0559T-0562T rules, case by case, including the unit caps by date of service."""

import pytest

from registry3d.dictionary import cpt
from registry3d.dictionary.loader import load_dictionary
from tests.dictionary.conftest import CASE_FILE

DICTIONARY = load_dictionary(CASE_FILE)


def model(components: int, month="2026-06", flags=True):
    parts = [
        {"region": "heart", "structure": "myocardium", "cpt_component": True if flags else None}
        for _ in range(components)
    ]
    return {
        "object_type": "anatomic_model",
        "case_year_month": month,
        "anatomic_parts": parts,
        "prints": [{"print_role": "primary"}],
    }


def guide(guides: int, month="2026-06"):
    return {
        "object_type": "anatomic_guide",
        "case_year_month": month,
        "prints": [{"print_role": "primary" if n == 0 else "secondary"} for n in range(guides)],
    }


def lines(*pairs):
    return [{"code": code, "units": units} for code, units in pairs]


def check(case, *pairs):
    case = dict(case, cpt_lines=lines(*pairs))
    return [
        (path, code, severity) for path, code, _message, severity in cpt.check(DICTIONARY, case)
    ]


@pytest.mark.parametrize(
    "components, expected",
    [(1, {"0559T": 1}), (2, {"0559T": 1, "0560T": 1}), (6, {"0559T": 1, "0560T": 5})],
)
def test_expected_units_for_models_follow_the_components(components, expected):
    assert cpt.expected_units(model(components)) == expected


def test_parts_that_are_not_separate_components_expect_no_code():
    case = model(2)
    for part in case["anatomic_parts"]:
        part["cpt_component"] = False
    assert cpt.expected_units(case) == {}


def test_unflagged_parts_give_no_expectation():
    assert cpt.expected_units(model(3, flags=False)) is None


@pytest.mark.parametrize(
    "guides, expected",
    [(1, {"0561T": 1}), (2, {"0561T": 1, "0562T": 1}), (3, {"0561T": 1, "0562T": 2})],
)
def test_expected_units_for_guides_follow_the_prints(guides, expected):
    assert cpt.expected_units(guide(guides)) == expected


def test_correct_model_coding_passes():
    assert check(model(3), ("0559T", 1), ("0560T", 2)) == []


def test_correct_guide_coding_passes():
    assert check(guide(2), ("0561T", 1), ("0562T", 1)) == []


def test_an_add_on_without_its_primary_is_an_error():
    assert ("cpt_lines[1].code", "cpt_add_on_without_primary", "error") in check(
        model(3), ("0560T", 2)
    )
    assert ("cpt_lines[1].code", "cpt_add_on_without_primary", "error") in check(
        guide(2), ("0562T", 1)
    )


def test_model_codes_on_a_guide_case_are_an_error():
    found = check(guide(1), ("0559T", 1))
    assert ("cpt_lines[1].code", "cpt_wrong_object_type", "error") in found


def test_a_code_reported_twice_is_an_error():
    found = check(model(2), ("0559T", 1), ("0559T", 1))
    assert ("cpt_lines[2].code", "cpt_duplicate", "error") in found


@pytest.mark.parametrize(
    "month, units, over",
    [
        ("2026-03", 2, True),  # before the April 2026 MUE change: 1 unit
        ("2026-03", 1, False),
        ("2026-04", 5, False),  # from April 2026: 5 units
        ("2026-04", 6, True),
        ("2019-07", 2, True),
    ],
)
def test_0560T_units_are_capped_by_date_of_service(month, units, over):
    found = check(model(units + 1, month), ("0559T", 1), ("0560T", units))
    assert (("cpt_lines[2].units", "cpt_units_over_cap", "error") in found) is over


@pytest.mark.parametrize(
    "month, units, over", [("2026-03", 2, True), ("2026-04", 2, False), ("2026-04", 3, True)]
)
def test_0562T_units_are_capped_by_date_of_service(month, units, over):
    found = check(guide(units + 1, month), ("0561T", 1), ("0562T", units))
    assert (("cpt_lines[2].units", "cpt_units_over_cap", "error") in found) is over


def test_the_over_cap_message_names_the_cap_and_period():
    case = dict(model(4, "2026-02"), cpt_lines=lines(("0559T", 1), ("0560T", 3)))
    messages = [m for _p, c, m, _s in cpt.check(DICTIONARY, case) if c == "cpt_units_over_cap"]
    assert messages == [
        "0560T allows at most 1 unit per date of service from 2019-07 to 2026-03; 3 were reported"
    ]


def test_units_that_differ_from_the_case_are_a_warning():
    found = check(model(3), ("0559T", 1), ("0560T", 1))
    assert found == [("cpt_lines[2].units", "cpt_units_unexpected", "warning")]


def test_the_expectation_respects_the_cap():
    # Six components support five 0560T units before the cap; before April 2026, one.
    assert check(model(7, "2026-02"), ("0559T", 1), ("0560T", 1)) == []


def test_a_case_without_cpt_lines_is_not_checked():
    assert cpt.check(DICTIONARY, model(3)) == []
