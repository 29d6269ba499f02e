"""Cases as REDCap flat records: written as REDCap exports them, read back unchanged.

The CSV files are read back with pandas, an independent reader, and the
columns are checked against what REDCap itself names them.
"""

import io
import random

import pandas as pd
import pytest

from registry3d.cases import services as case_services
from registry3d.cases.models import Case
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.pseudonym import patient_key
from registry3d.redcap import records
from registry3d.redcap.project import project_of
from tests.redcap.conftest import add_printers, case_data

SEEDS = range(200)


@pytest.fixture(scope="module")
def dictionary():
    return registry.current().dictionary


@pytest.fixture(scope="module")
def project(dictionary):
    return project_of(dictionary)


def canonical(dictionary, data: dict) -> dict:
    """Case data with every multiple choice in its value set's order.

    REDCap's checkboxes have no order of their own, so the order of the
    choices is the one thing a round trip through REDCap does not keep.
    """

    def fix(element, value):
        if element is not None and element.type == "multi_choice" and isinstance(value, list):
            return sorted(value, key=element.value_set.active_codes().index)
        return value

    out = {}
    for name, value in data.items():
        element = dictionary.elements.get(name)
        if element is not None and element.is_group:
            items = {i.name: i for i in element.elements}
            value = [{k: fix(items.get(k), v) for k, v in item.items()} for item in value]
        out[name] = fix(element, value)
    return out


class Cases:
    """An iterable of cases that can be walked once only, as a queryset iterator can."""

    def __init__(self, cases):
        self.cases = cases
        self.walked = False

    def __iter__(self):
        assert self.walked is False, "the cases were read twice"
        self.walked = True
        yield from self.cases


def test_synthetic_cases_come_back_from_redcap_rows_unchanged(dictionary, project):
    for seed in SEEDS:
        data = synthetic_case(dictionary, random.Random(seed), with_questionnaire=seed % 2 == 0)
        rows = records.record_rows(project, f"C-{seed}", data, "submitted")
        incoming, problems = records.read_rows(project, rows)
        assert problems == [], seed
        assert [r.record_id for r in incoming] == [f"C-{seed}"]
        back, problems = records.apply(project, incoming[0], None)
        assert problems == [], seed
        assert canonical(dictionary, back) == canonical(dictionary, data), seed
        assert records.status_of(project, incoming[0], None) == "submitted"


def test_the_records_csv_read_by_pandas_gives_the_cases_back(world, dictionary, project):
    labels = add_printers(world.site_a)
    originals = {}
    for seed in range(40):
        status = "submitted" if seed % 3 else "draft"
        data = case_data(seed, labels, with_questionnaire=seed % 2 == 0)
        case_services.save_case(
            world.site_a, case_uid=f"A-{seed:03d}", data=data, status=status, actor=world.alice
        )
        originals[f"A-{seed:03d}"] = (data, status)
    cases = Cases(Case.objects.filter(site=world.site_a).order_by("case_uid").iterator())
    out = io.StringIO()
    assert records.write_records_csv(cases, out) == 40
    frame = pd.read_csv(io.StringIO(out.getvalue()), dtype=str, keep_default_na=False)
    assert list(frame.columns[:3]) == [
        "record_id",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
    ]
    assert list(frame.columns) == project.export_columns()
    rows = frame.to_dict("records")
    incoming, problems = records.read_rows(project, rows)
    assert problems == []
    assert sorted(r.record_id for r in incoming) == sorted(originals)
    for each in incoming:
        data, status = originals[each.record_id]
        back, problems = records.apply(project, each, None)
        assert problems == []
        assert canonical(dictionary, back) == canonical(dictionary, data), each.record_id
        assert records.status_of(project, each, None) == status


def test_repeating_groups_are_repeating_instrument_rows(world, project):
    labels = add_printers(world.site_a)
    data = case_data(3, labels)
    case = case_services.save_case(
        world.site_a, case_uid="A-1", data=data, status="submitted", actor=world.alice
    ).case
    rows = records.case_rows(project, case)
    main, *instances = rows
    assert (main["redcap_repeat_instrument"], main["redcap_repeat_instance"]) == ("", "")
    expected = [
        (group, str(number))
        for group in ("imaging", "anatomic_parts", "prints", "cpt_lines")
        for number in range(1, len(data.get(group) or []) + 1)
    ]
    assert [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in instances] == (
        expected
    )
    first_print = next(r for r in instances if r["redcap_repeat_instrument"] == "prints")
    assert first_print["printer_label"] == data["prints"][0]["printer_label"]
    assert first_print["prints_complete"] == "2"
    assert "printer_label" not in main and "object_type" not in first_print


def test_checkboxes_are_one_column_per_choice_and_yes_no_is_1_or_0(project):
    data = {
        "object_type": "anatomic_model",
        "is_point_of_care": True,
        "exclusion_check": False,
        "intended_uses": ["patient_education_consent", "pre_procedural_planning"],
    }
    main = records.record_rows(project, "X-1", data, "draft")[0]
    assert main["is_point_of_care"] == "1"
    assert main["exclusion_check"] == "0"
    assert main["intended_uses___pre_procedural_planning"] == "1"
    assert main["intended_uses___patient_education_consent"] == "1"
    assert main["intended_uses___trainee_education"] == "0"
    assert "intended_uses" not in main
    assert main["case_complete"] == "0"
    assert main["user_assessment_complete"] == "0"


def test_a_checkbox_code_with_capitals_gets_redcaps_lowercase_column(dictionary, project):
    # REDCap lowers the code in the column name (getExtendedCheckboxCodeFormatted).
    from registry3d.redcap.datadict import checkbox_suffix

    assert checkbox_suffix("0559T") == "0559t"
    assert checkbox_suffix("a-b.c") == "a_b_c"
    for each in project.fields.values():
        for column, code in each.choices:
            assert column == f"{each.name}___{code.lower()}"


def test_withdrawn_cases_are_left_out_of_the_records_file(world, project):
    case = case_services.save_case(
        world.site_a, case_uid="GONE-1", data={"object_type": "anatomic_model"}, actor=world.alice
    ).case
    case_services.save_case(
        world.site_a, case_uid="KEPT-1", data={"object_type": "anatomic_model"}, actor=world.alice
    )
    case_services.withdraw_case(case, "Entered twice by mistake", actor=world.alice)
    out = io.StringIO()
    written = records.write_records_csv(Case.objects.order_by("case_uid").iterator(), out)
    assert written == 1
    assert "GONE-1" not in out.getvalue() and "KEPT-1" in out.getvalue()


def test_the_records_file_holds_no_patient_key_and_no_record_number(world):
    mrn = "MRN-00482913"
    key = patient_key(world.site_a.code, mrn)
    case_services.save_case(
        world.site_a,
        case_uid="A-1",
        data={"object_type": "anatomic_model", "age_years": 44},
        patient_key=key,
        actor=world.alice,
    )
    out = io.StringIO()
    records.write_records_csv(Case.objects.iterator(), out)
    text = out.getvalue()
    assert "A-1" in text and "44" in text
    assert key not in text
    assert mrn not in text and "00482913" not in text
    assert "patient_key" not in text


def test_the_dictionary_csv_written_for_redcap_is_the_generated_one(dictionary):
    from registry3d.dictionary import generators

    out = io.StringIO()
    records.write_dictionary_csv(dictionary, out)
    assert out.getvalue() == generators.redcap_csv(dictionary)
