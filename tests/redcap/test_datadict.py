"""The REDCap data dictionary the registry exports, against REDCap's own upload rules.

The file is read back with pandas; the rules are those of REDCap's data
dictionary upload (its MetaData::error_checking), each shown to catch what
it is for on a file that breaks it.
"""

import copy
import io

import pandas as pd
import pytest

from registry3d.dictionary import generators, registry
from registry3d.redcap import datadict
from registry3d.redcap.datadict import REDCAP_COLUMNS, check_rows, errors, read_csv

REDCAP_TYPES = {
    "text",
    "notes",
    "dropdown",
    "radio",
    "checkbox",
    "yesno",
    "truefalse",
    "calc",
    "file",
    "slider",
    "descriptive",
    "sql",
}


@pytest.fixture(scope="module")
def dictionary():
    return registry.current().dictionary


@pytest.fixture(scope="module")
def rows(dictionary):
    found, problems = read_csv(generators.redcap_csv(dictionary))
    assert problems == []
    return found


def test_pandas_reads_the_dictionary_csv_with_redcaps_18_columns(dictionary):
    frame = pd.read_csv(
        io.StringIO(generators.redcap_csv(dictionary)), dtype=str, keep_default_na=False
    )
    assert list(frame.columns) == REDCAP_COLUMNS
    assert frame.shape[1] == 18
    names = frame["Variable / Field Name"]
    assert names.str.fullmatch(r"[a-z][a-z0-9_]*").all()
    assert (names.str.len() <= 100).all()
    assert not names.str.contains("__").any() and not names.str.endswith("_").any()
    assert set(frame["Field Type"]) <= REDCAP_TYPES
    validations = set(frame["Text Validation Type OR Show Slider Number"]) - {""}
    assert validations == {"integer", "number"}
    assert names.is_unique


def test_the_registrys_redcap_dictionary_breaks_none_of_redcaps_rules(rows):
    assert errors(check_rows(rows)) == []


def test_variable_names_over_26_characters_are_only_redcaps_warning(rows):
    # REDCap accepts names up to 100 characters and warns above 26; the
    # registry keeps its element names so that one name means one thing
    # everywhere (see the README's REDCap section).
    warned = [p for p in check_rows(rows) if p.severity == "warning"]
    assert warned and all("REDCap advises at most 26" in p.message for p in warned)
    assert max(len(p.field) for p in warned) <= 60
    assert "effort_prep_post_processing_non_clinician" in {p.field for p in warned}


def broken(rows, name: str, **changes) -> list[str]:
    """The errors REDCap finds after changing the row of ``name``."""
    edited = copy.deepcopy(rows)
    row = next(r for r in edited if r[datadict.NAME] == name)
    for column, value in changes.items():
        row[datadict.COLUMN_OF[column]] = value
    return [str(p) for p in errors(check_rows(edited))]


def test_each_of_redcaps_rules_catches_what_it_is_for(rows):
    assert broken(rows, "sex", field_name="Sex") == [
        "Row 9, Sex: variable names are lowercase letters, digits and _, starting with a letter"
    ]
    assert broken(rows, "sex", field_name="sex__code") == [
        "Row 9, sex__code: variable names may not hold two underscores in a row (REDCap "
        "renames them)"
    ]
    assert broken(rows, "sex", field_name="case_complete") == [
        "Row 9, case_complete: 'case_complete' is the status field REDCap adds to a form"
    ]
    assert broken(rows, "sex", field_name="action") == [
        "Row 9, action: 'action' is a name REDCap keeps for itself"
    ]
    assert broken(rows, "sex", field_name="x" * 101) == [
        f"Row 9, {'x' * 101}: variable names are at most 100 characters"
    ]
    assert broken(rows, "sex", field_type="date") == [
        "Row 9, sex: unknown field type 'date'; REDCap's are calc, checkbox, descriptive, "
        "dropdown, file, notes, radio, slider, sql, text, truefalse, yesno"
    ]
    assert broken(rows, "sex", select_choices_or_calculations="female, Female | female, F") == [
        "Row 9, sex: choice code female appears twice"
    ]
    assert broken(rows, "sex", select_choices_or_calculations="fe male, Female | male, Male") == [
        "Row 9, sex: choice codes may hold only letters, digits, _ - . (not 'fe male')"
    ]
    assert broken(rows, "sex", select_choices_or_calculations="female Female") == [
        "Row 9, sex: bad choices: choice 'female Female' has no comma; write 'code, label'"
    ]
    assert broken(rows, "age_years", text_validation_type_or_show_slider_number="") == [
        "Row 7, age_years: a minimum or maximum needs a validation type (integer, number, ...)"
    ]
    assert broken(rows, "age_years", text_validation_min="1.5") == [
        "Row 7, age_years: the minimum '1.5' is not a whole number"
    ]
    assert broken(rows, "guide_type", branching_logic="[object_typ] = 'anatomic_guide'") == [
        "Row 31, guide_type: branching logic names 'object_typ', which is not a field"
    ]
    assert broken(rows, "guide_type", branching_logic="[intended_uses] = 'other'") == [
        "Row 31, guide_type: branching logic names checkbox 'intended_uses' without a code; "
        "write [intended_uses(code)]"
    ]
    assert broken(rows, "guide_type", branching_logic="([object_type] = 'x'") == [
        "Row 31, guide_type: branching logic \"([object_type] = 'x'\" has unbalanced brackets "
        "or quotes"
    ]
    assert broken(rows, "sex", required_field="yes") == [
        "Row 9, sex: 'Required Field?' is 'y' or empty, not 'yes'"
    ]


def test_a_form_split_over_two_places_is_refused(rows):
    edited = copy.deepcopy(rows)
    edited.append(dict(edited[3], **{datadict.NAME: "late_field"}))
    assert [str(p) for p in errors(check_rows(edited))] == [
        f"Row {edited[-1]['_row']}, late_field: form 'case' continues here after other forms "
        "(from row 2); a form's fields must be in consecutive rows"
    ]


def test_the_record_id_must_come_first_as_a_text_field(rows):
    edited = copy.deepcopy(rows)
    edited[0][datadict.TYPE] = "dropdown"
    edited[0][datadict.CHOICES] = "1, One"
    assert "Row 2, record_id: the first field is the record ID and must be a text field" in [
        str(p) for p in errors(check_rows(edited))
    ]


def test_a_file_without_redcaps_header_is_refused_whole():
    found, problems = read_csv("name,type\nsex,radio\n")
    assert found == []
    assert [str(p) for p in problems] == [
        "Row 1: the header must be REDCap's 18 data-dictionary columns (missing "
        + ", ".join(repr(c) for c in REDCAP_COLUMNS)
        + ")"
    ]
    _, problems = read_csv(b"\xff\xfe")
    assert [str(p) for p in problems] == ["File: the file is not UTF-8 text; save it as CSV UTF-8"]


def test_a_multiple_choice_condition_is_never_written_as_a_bare_checkbox(dictionary):
    # REDCap would read [intended_uses] = 'other' as always false; the field
    # is then shown always rather than hidden wrongly.
    checkboxes = frozenset({"intended_uses"})
    assert generators.redcap_branching("intended_uses == 'other'", checkboxes) == ""
    assert generators.redcap_branching("object_type == 'anatomic_guide'", checkboxes) == (
        "[object_type] = 'anatomic_guide'"
    )
