"""The files generated from the data dictionary, checked against what their users expect.

The REDCap and JSON Schema checks use REDCap's published column and type lists
and the independent ``jsonschema`` library, not the generator's own constants,
so a generator that drifts from the standard fails here.
"""

import copy
import csv
import io
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openpyxl import load_workbook

from registry3d.dictionary import flat, generators, registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.dictionary.validation import Problem
from tests.conftest import client_for

ROOT = Path(__file__).resolve().parents[2]
GENERATED_DIR = ROOT / "docs" / "dictionary"
SEEDS = range(200)

REDCAP_COLUMNS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
REDCAP_FIELD_TYPES = {
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
REDCAP_VALIDATION_TYPES = {
    "integer",
    "number",
    "number_1dp",
    "number_2dp",
    "number_3dp",
    "number_4dp",
    "number_comma_decimal",
    "date_ymd",
    "date_mdy",
    "date_dmy",
    "datetime_ymd",
    "datetime_mdy",
    "datetime_dmy",
    "datetime_seconds_ymd",
    "datetime_seconds_mdy",
    "datetime_seconds_dmy",
    "time",
    "time_mm_ss",
    "email",
    "phone",
    "zipcode",
    "alpha_only",
    "postalcode_canada",
    "ssn",
    "mrn_10d",
    "mrn_generic",
    "vmrn",
}
CHOICE_TYPES = {"dropdown", "radio", "checkbox"}
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.fixture(scope="module")
def dictionary():
    return registry.current().dictionary


@pytest.fixture(scope="module")
def validator():
    return registry.current().validator


@pytest.fixture(scope="module")
def redcap(dictionary):
    """The REDCap data dictionary as (header, rows), read with the csv module."""
    reader = csv.reader(io.StringIO(generators.redcap_csv(dictionary), newline=""))
    header, *rows = list(reader)
    return header, [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture(scope="module")
def schema_validator(dictionary):
    return Draft202012Validator(generators.json_schema(dictionary))


def item_elements(dictionary):
    return [e for e in dictionary.all_elements.values() if e.group]


def plain_top_elements(dictionary):
    return [e for e in dictionary.elements.values() if not e.is_group]


def error_paths(validator, data) -> set:
    """The top-level element (or '' for the case itself) of each schema error."""
    return {(list(e.absolute_path) or [""])[0] for e in validator.iter_errors(data)}


# --- REDCap ----------------------------------------------------------------------------------


def test_the_redcap_csv_has_redcaps_18_columns_in_redcaps_order(redcap):
    header, rows = redcap
    assert header == REDCAP_COLUMNS
    assert all(len(row) == 18 for row in rows)


def test_the_first_redcap_field_is_the_record_id_on_the_first_form(redcap):
    _header, rows = redcap
    first = rows[0]
    assert first["Variable / Field Name"] == "record_id"
    assert first["Form Name"] == "case"
    assert first["Field Type"] == "text"
    assert first["Field Label"] == "Record ID"


def test_every_redcap_field_type_is_one_of_redcaps(redcap):
    _header, rows = redcap
    types = {row["Field Type"] for row in rows}
    assert types <= REDCAP_FIELD_TYPES, types - REDCAP_FIELD_TYPES


def test_redcap_validation_types_and_limits_are_redcaps_and_only_on_text_fields(redcap):
    _header, rows = redcap
    for row in rows:
        name = row["Variable / Field Name"]
        validation = row["Text Validation Type OR Show Slider Number"]
        if validation:
            assert validation in REDCAP_VALIDATION_TYPES, (name, validation)
            assert row["Field Type"] == "text", name
        for limit in ("Text Validation Min", "Text Validation Max"):
            if row[limit]:
                assert validation, f"{name} has a {limit} without a validation type"
                assert NUMBER_RE.match(row[limit]), (name, limit, row[limit])


def test_redcap_numbers_carry_the_dictionarys_type_and_range(dictionary, redcap):
    _header, rows = redcap
    by_name = {row["Variable / Field Name"]: row for row in rows}
    age = by_name["age_years"]
    assert (
        age["Text Validation Type OR Show Slider Number"],
        age["Text Validation Min"],
        age["Text Validation Max"],
    ) == ("integer", "0", "120")
    scale = by_name["scale_percent"]
    assert scale["Text Validation Type OR Show Slider Number"] == "number"


def test_every_dictionary_element_is_one_redcap_field_and_every_group_a_form(dictionary, redcap):
    _header, rows = redcap
    names = Counter(row["Variable / Field Name"] for row in rows)
    assert [n for n, count in names.items() if count > 1] == []
    expected = {e.name for e in dictionary.all_elements.values() if not e.is_group}
    assert set(names) == expected | {"record_id"}
    forms = {row["Variable / Field Name"]: row["Form Name"] for row in rows}
    for group in dictionary.groups():
        # A repeating group is a repeating instrument holding exactly its items.
        assert {n for n, form in forms.items() if form == group.name} == {
            i.name for i in group.elements
        }


def test_the_fields_of_each_redcap_form_are_contiguous(redcap):
    # REDCap refuses a data dictionary whose instruments are interleaved.
    _header, rows = redcap
    forms = [row["Form Name"] for row in rows]
    runs = [form for i, form in enumerate(forms) if i == 0 or forms[i - 1] != form]
    assert len(runs) == len(set(runs)), runs


def test_redcap_variable_and_form_names_are_lowercase_and_start_with_a_letter(redcap):
    _header, rows = redcap
    for row in rows:
        for column in ("Variable / Field Name", "Form Name"):
            value = row[column]
            assert re.fullmatch(r"[a-z][a-z0-9_]*", value), (column, value)
            assert len(value) <= 100, value


def test_redcap_choices_are_code_comma_label_separated_by_bars(dictionary, redcap):
    _header, rows = redcap
    checked = 0
    for row in rows:
        name, kind = row["Variable / Field Name"], row["Field Type"]
        choices = row["Choices, Calculations, OR Slider Labels"]
        if kind not in CHOICE_TYPES:
            assert choices == "", name
            continue
        pairs = [part.strip().split(", ", 1) for part in choices.split(" | ")]
        assert all(len(pair) == 2 and pair[1].strip() for pair in pairs), (name, choices)
        codes = [code for code, _label in pairs]
        assert all(re.fullmatch(r"[A-Za-z0-9_]+", code) for code in codes), (name, codes)
        assert len(codes) == len(set(codes)), name
        element = dictionary.elements.get(name) or next(
            e for e in dictionary.all_elements.values() if e.name == name
        )
        assert codes == element.value_set.active_codes(), name
        checked += 1
    assert checked > 20


def test_redcap_branching_logic_names_existing_fields_and_their_codes(redcap):
    _header, rows = redcap
    by_name = {row["Variable / Field Name"]: row for row in rows}

    def codes_of(row):
        if row["Field Type"] in ("yesno", "truefalse"):
            return {"0", "1"}
        choices = row["Choices, Calculations, OR Slider Labels"]
        return {part.split(",", 1)[0].strip() for part in choices.split("|")}

    logic = {n: r["Branching Logic (Show field only if...)"] for n, r in by_name.items()}
    assert logic["guide_type"] == "[object_type] = 'anatomic_guide'"
    for name, text in logic.items():
        for field, value in re.findall(r"\[([a-z0-9_]+)\] (?:=|<>) '([^']*)'", text):
            assert field in by_name, (name, field)
            assert value in codes_of(by_name[field]), (name, field, value)


def test_redcap_required_and_identifier_flags_are_y_or_empty(dictionary, redcap):
    _header, rows = redcap
    required = {row["Variable / Field Name"] for row in rows if row["Required Field?"] == "y"}
    assert {row["Required Field?"] for row in rows} <= {"", "y"}
    assert {row["Identifier?"] for row in rows} <= {"", "y"}
    assert {"object_type", "age_years", "sex"} <= required
    # Required when shown: shown only for guides by its branching logic.
    guide_type = next(r for r in rows if r["Variable / Field Name"] == "guide_type")
    assert "guide_type" in required
    assert (
        guide_type["Branching Logic (Show field only if...)"] == "[object_type] = 'anatomic_guide'"
    )
    identifiers = {row["Variable / Field Name"] for row in rows if row["Identifier?"] == "y"}
    assert identifiers == {e.name for e in dictionary.all_elements.values() if e.free_text}


# --- Everything is documented ----------------------------------------------------------------


def test_every_element_has_a_label_help_provenance_and_a_source_unless_proposed(dictionary):
    undocumented = []
    for path, element in dictionary.all_elements.items():
        if not element.label.strip() or not element.help.strip():
            undocumented.append(f"{path}: label or help missing")
        if element.provenance not in ("found", "partial", "proposed"):
            undocumented.append(f"{path}: provenance {element.provenance!r}")
        if element.provenance != "proposed" and not element.source:
            undocumented.append(f"{path}: {element.provenance} but no source")
        if element.source and not all(
            url.startswith(("https://", "http://")) for url in element.source_urls
        ):
            undocumented.append(f"{path}: source {element.source!r} is not a URL or known source")
    assert undocumented == []


def test_every_element_is_in_the_json_schema_with_its_label_and_help(dictionary):
    properties = generators.json_schema(dictionary)["properties"]
    assert set(properties) == set(dictionary.elements)
    for path, element in dictionary.all_elements.items():
        if element.group:
            group = properties[element.group]["anyOf"][0]
            entry = group["items"]["properties"][element.name]["anyOf"][0]
        else:
            entry = properties[element.name]["anyOf"][0]
        assert (entry["title"], entry["description"]) == (element.label, element.help), path
        assert entry["x-provenance"] == element.provenance, path


def test_every_element_is_in_the_import_template_header(dictionary):
    header = next(csv.reader(io.StringIO(generators.template_csv(dictionary))))
    assert header[:3] == ["case_uid", "patient_key", "status"]
    assert len(header) == len(set(header))
    missing = [
        e.path_name
        for e in dictionary.all_elements.values()
        if not e.is_group and (f"{e.group}_1_{e.name}" if e.group else e.name) not in header
    ]
    assert missing == []


def test_every_element_is_in_the_dictionary_table_once(dictionary):
    rows = list(csv.DictReader(io.StringIO(generators.table_csv(dictionary))))
    assert [row["element"] for row in rows] == list(dictionary.all_elements)
    for row in rows:
        element = dictionary.all_elements[row["element"]]
        assert (row["label"], row["help"], row["provenance"]) == (
            element.label,
            element.help,
            element.provenance,
        )
        assert row["dictionary_version"] == dictionary.version


def test_every_element_is_a_field_of_the_form_preview(world, dictionary):
    response = client_for(world.alice).get("/dictionary/form/")
    assert response.status_code == 200
    page = response.content.decode()
    names = set(re.findall(r'name="([^"]+)"', page))
    missing = []
    for group in dictionary.groups():
        if f'data-group="{group.name}"' not in page:
            missing.append(group.name)
    for element in dictionary.all_elements.values():
        if element.is_group:
            continue
        if element.group:
            group = dictionary.elements[element.group]
            wanted = [f"{element.group}___N___{element.name}"]  # the new-item template
            if group.required is True or group.min_items:
                wanted.append(f"{element.group}_1_{element.name}")  # the item shown at once
        else:
            wanted = [element.name]
        missing += [name for name in wanted if name not in names]
    assert missing == []


# --- JSON Schema -----------------------------------------------------------------------------


def test_the_json_schema_is_a_valid_2020_12_schema(dictionary):
    schema = generators.json_schema(dictionary)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["x-dictionary-version"] == dictionary.version


def test_200_synthetic_cases_are_valid_under_the_json_schema(dictionary, schema_validator):
    for seed in SEEDS:
        case = synthetic_case(dictionary, random.Random(seed))
        errors = [e.message for e in schema_validator.iter_errors(case)]
        assert errors == [], f"seed {seed}"


def test_an_empty_draft_is_valid_under_the_json_schema(schema_validator):
    assert schema_validator.is_valid({}) is True
    assert schema_validator.is_valid({"age_years": None, "prints": None}) is True


def _mutate(case, kind):
    case = copy.deepcopy(case)
    if kind == "unknown element":
        case["favourite_colour"] = "blue"
    elif kind == "unknown item element":
        case["prints"][0]["favourite_colour"] = "blue"
    elif kind == "wrong type":
        case["age_years"] = "forty"
    elif kind == "wrong item type":
        case["prints"][0]["copies"] = "one"
    elif kind == "code outside the value set":
        case["sex"] = "robot"
    elif kind == "code outside the value set in a list":
        case["intended_uses"] = ["world_domination"]
    elif kind == "too many prints":
        case["prints"] = [dict(case["prints"][0]) for _ in range(6)]
    elif kind == "out of range":
        case["age_years"] = 121
    elif kind == "bad duration":
        case["effort_cad_clinician"] = "a while"
    return case


@pytest.mark.parametrize(
    "kind, top, problem",
    [
        ("unknown element", "", ("favourite_colour", "unknown_element")),
        ("unknown item element", "prints", ("prints[1].favourite_colour", "unknown_element")),
        ("wrong type", "age_years", ("age_years", "wrong_type")),
        ("wrong item type", "prints", ("prints[1].copies", "wrong_type")),
        ("code outside the value set", "sex", ("sex", "not_in_value_set")),
        (
            "code outside the value set in a list",
            "intended_uses",
            ("intended_uses[1]", "not_in_value_set"),
        ),
        ("too many prints", "prints", ("prints", "too_many")),
        ("out of range", "age_years", ("age_years", "out_of_range")),
        ("bad duration", "effort_cad_clinician", ("effort_cad_clinician", "wrong_type")),
    ],
)
def test_the_json_schema_and_the_registry_both_refuse_a_mutated_case(
    dictionary, validator, schema_validator, kind, top, problem
):
    for seed in range(5):
        case = _mutate(synthetic_case(dictionary, random.Random(seed)), kind)
        assert error_paths(schema_validator, case) == {top}, (kind, seed)
        found = {(p.path, p.code) for p in validator.validate(case, complete=False)}
        assert problem in found, (kind, seed, found)


def test_a_duration_without_a_maximum_still_gives_a_valid_schema(dictionary):
    changed = copy.deepcopy(dictionary)
    changed.elements["effort_cad_clinician"].max = None
    schema = generators.json_schema(changed)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"effort_cad_clinician": 100000}) is True
    assert validator.is_valid({"effort_cad_clinician": -1}) is False


# --- Committed generated files ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(generators.GENERATED_FILES))
def test_the_committed_generated_file_is_up_to_date(dictionary, name):
    committed = GENERATED_DIR / name
    fresh = generators.GENERATED_FILES[name](dictionary)
    assert committed.is_file() and committed.read_bytes().decode("utf-8") == fresh, (
        f"docs/dictionary/{name} is stale; run "
        "`registry3d dictionary generate --out docs/dictionary` and commit the result"
    )


def test_every_committed_generated_file_is_one_the_generator_makes():
    assert sorted(p.name for p in GENERATED_DIR.iterdir()) == sorted(generators.GENERATED_FILES)


# --- XLSX import template --------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbook(dictionary):
    return load_workbook(io.BytesIO(generators.template_xlsx(dictionary)))


def test_the_xlsx_template_has_the_cases_codes_and_dictionary_sheets(workbook):
    assert workbook.sheetnames == ["cases", "codes", "dictionary"]


def test_the_xlsx_template_header_is_the_flat_columns(dictionary, workbook):
    header = [cell.value for cell in workbook["cases"][1]]
    assert header == flat.columns(dictionary)
    csv_header = next(csv.reader(io.StringIO(generators.template_csv(dictionary))))
    assert header == csv_header


def test_every_choice_column_of_the_xlsx_template_offers_its_codes_in_a_list(dictionary, workbook):
    sheet, codes = workbook["cases"], workbook["codes"]
    validations = {}
    for validation in sheet.data_validations.dataValidation:
        for cell_range in validation.sqref.ranges:
            validations[cell_range.min_col] = validation
    reader = flat.FlatReader(dictionary)
    checked = 0
    for column, cell in enumerate(sheet[1], start=1):
        element = dictionary.elements.get(cell.value)
        match = reader.item_re.match(cell.value)
        if match:
            element = dictionary.all_elements[f"{match.group(1)}.{match.group(3)}"]
        if element is None or element.type != "choice":
            continue
        validation = validations.get(column)
        assert validation is not None, f"{cell.value} has no drop-down list"
        assert validation.type == "list"
        assert str(validation.sqref) == f"{cell.column_letter}2:{cell.column_letter}5000"
        target = re.fullmatch(r"'?codes'?!\$([A-Z]+)\$2:\$([A-Z]+)\$(\d+)", validation.formula1)
        assert target, validation.formula1
        letter, last = target.group(1), int(target.group(3))
        assert codes[f"{letter}1"].value == element.value_set.name
        offered = [codes[f"{letter}{row}"].value for row in range(2, last + 1)]
        assert offered == element.value_set.active_codes(), cell.value
        checked += 1
    assert checked > 40


def test_the_xlsx_dictionary_sheet_lists_every_element(dictionary, workbook):
    rows = list(workbook["dictionary"].iter_rows(values_only=True))
    assert list(rows[0]) == generators.TABLE_COLUMNS
    assert [row[1] for row in rows[1:]] == list(dictionary.all_elements)


def test_the_xlsx_dictionary_table_opens(dictionary):
    book = load_workbook(io.BytesIO(generators.table_xlsx(dictionary)))
    assert book.sheetnames == [f"dictionary {dictionary.version}", "value sets"]


# --- Flat rows -------------------------------------------------------------------------------


def test_200_synthetic_cases_survive_a_flat_round_trip(dictionary):
    reader = flat.FlatReader(dictionary)
    for seed in SEEDS:
        case = synthetic_case(dictionary, random.Random(seed))
        record, data, problems = reader.read(flat.write_row(dictionary, {}, case))
        assert (record, data, problems) == ({}, case, []), f"seed {seed}"


def test_a_flat_row_with_record_fields_gives_them_back(dictionary):
    case = synthetic_case(dictionary, random.Random(7))
    record = {"case_uid": "A-17", "status": "draft"}
    assert flat.FlatReader(dictionary).read(flat.write_row(dictionary, record, case)) == (
        record,
        case,
        [],
    )


@pytest.mark.parametrize(
    "column, cell, problem",
    [
        (
            "age_years",
            "forty",
            Problem(
                "age_years",
                "wrong_type",
                "Patient age (years): the value is not valid; expected a whole number",
            ),
        ),
        (
            "age_years",
            "40.5",
            Problem(
                "age_years",
                "wrong_type",
                "Patient age (years): the value is not valid; expected a whole number",
            ),
        ),
        (
            "is_point_of_care",
            "maybe",
            Problem(
                "is_point_of_care",
                "wrong_type",
                "Made at the point of care: the value is not valid; expected yes or no",
            ),
        ),
        (
            "prints_9_material",
            "pla",
            Problem("prints[9].material", "too_many", "Prints: at most 5 allowed"),
        ),
        (
            "effort_cad_clinician",
            "1:75",
            Problem(
                "effort_cad_clinician",
                "wrong_type",
                "CAD, clinician time (min): the value is not valid; "
                "expected minutes, h:mm, or unknown",
            ),
        ),
        (
            "prints_1_part_numbers",
            "1;two",
            Problem(
                "prints[1].part_numbers",
                "wrong_type",
                "Parts in this print: the value is not valid; "
                "expected whole numbers separated by ;",
            ),
        ),
        (
            "prints_1_colour",
            "red",
            Problem("prints[1].colour", "unknown_element", "'colour' is not an element of prints"),
        ),
        (
            "favourite_colour",
            "red",
            Problem(
                "favourite_colour",
                "unknown_element",
                "'favourite_colour' is not an element of the dictionary",
            ),
        ),
    ],
)
def test_a_bad_cell_gives_a_problem_at_its_path(dictionary, column, cell, problem):
    record, data, problems = flat.FlatReader(dictionary).read({column: cell})
    assert (data, problems) == ({}, [problem])


@pytest.mark.parametrize(
    "cell, minutes",
    [("1:30", 90), ("0:05", 5), ("45", 45), ("unknown", "unknown"), ("Unknown", "unknown")],
)
def test_durations_are_read_as_minutes_or_unknown(dictionary, cell, minutes):
    _record, data, problems = flat.FlatReader(dictionary).read({"effort_cad_clinician": cell})
    assert (data, problems) == ({"effort_cad_clinician": minutes}, [])


@pytest.mark.parametrize(
    "column, cell, value",
    [
        ("object_type", "Anatomic model", "anatomic_model"),
        ("object_type", "ANATOMIC GUIDE", "anatomic_guide"),
        (
            "intended_uses",
            "Pre-procedural planning; trainee_education",
            ["pre_procedural_planning", "trainee_education"],
        ),
        ("is_point_of_care", "Y", True),
        ("exclusion_check", "0", False),
    ],
)
def test_labels_and_yes_no_words_are_read_as_codes(dictionary, column, cell, value):
    _record, data, problems = flat.FlatReader(dictionary).read({column: cell})
    assert (data, problems) == ({column: value}, [])


def test_a_group_item_with_only_empty_cells_is_not_an_item(dictionary):
    row = {"prints_1_material": "pla", "prints_2_material": "", "prints_2_copies": "  "}
    _record, data, problems = flat.FlatReader(dictionary).read(row)
    assert (data, problems) == ({"prints": [{"material": "pla"}]}, [])


@pytest.mark.parametrize(
    "cell, value",
    [("1,000", 1000.0), ("1,234.5", 1234.5), ("12,5", 12.5), ("12.5", 12.5), ("-0", 0.0)],
)
def test_decimals_are_read_with_thousands_separators_or_a_decimal_comma(dictionary, cell, value):
    _record, data, problems = flat.FlatReader(dictionary).read({"prints_1_material_cost_usd": cell})
    assert (data, problems) == ({"prints": [{"material_cost_usd": value}]}, [])


@pytest.mark.parametrize("cell", ["nan", "inf", "1.2.3", "12 dollars"])
def test_a_cell_that_is_not_a_finite_number_is_refused(dictionary, cell):
    _record, data, problems = flat.FlatReader(dictionary).read({"prints_1_material_cost_usd": cell})
    assert (data, problems) == (
        {},
        [
            Problem(
                "prints[1].material_cost_usd",
                "wrong_type",
                "Material cost (USD): the value is not valid; expected a number",
            )
        ],
    )
