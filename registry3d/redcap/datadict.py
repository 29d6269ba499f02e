"""REDCap data-dictionary files: their 18 columns, and the rules REDCap applies.

A REDCap data dictionary is a CSV file with 18 columns, one row per field.
:func:`check_rows` applies the rules REDCap's own upload applies (REDCap's
``MetaData::error_checking``): the ones it refuses a file for are errors; the
ones it only warns about (variable names over 26 characters) are warnings.
The registry checks its own export with it, and every file an analyst
uploads to propose a new dictionary version.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from registry3d.dictionary.generators import REDCAP_COLUMNS

# The keys REDCap's API gives the 18 columns (content=metadata), in order.
API_KEYS = [
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
]
API_KEY_OF = dict(zip(REDCAP_COLUMNS, API_KEYS, strict=True))
COLUMN_OF = dict(zip(API_KEYS, REDCAP_COLUMNS, strict=True))

NAME, FORM, HEADER, TYPE, LABEL, CHOICES, NOTE, VALIDATION, VMIN, VMAX = REDCAP_COLUMNS[:10]
IDENTIFIER, BRANCHING, REQUIRED = REDCAP_COLUMNS[10:13]
ANNOTATION = REDCAP_COLUMNS[17]

FIELD_TYPES = {
    "text",
    "notes",
    "radio",
    "dropdown",
    "calc",
    "file",
    "sql",
    "checkbox",
    "yesno",
    "truefalse",
    "descriptive",
    "slider",
}
LEGACY_TYPES = {"textarea": "notes", "select": "dropdown"}
CHOICE_TYPES = {"radio", "dropdown", "checkbox"}
# REDCap's text validation types (its redcap_validation_types table), with the
# legacy names its upload still accepts.
VALIDATION_TYPES = {
    "alpha_only",
    "date_dmy",
    "date_mdy",
    "date_ymd",
    "datetime_dmy",
    "datetime_mdy",
    "datetime_ymd",
    "datetime_seconds_dmy",
    "datetime_seconds_mdy",
    "datetime_seconds_ymd",
    "email",
    "integer",
    "mrn_10d",
    "mrn_generic",
    "number",
    "number_1dp",
    "number_1dp_comma_decimal",
    "number_2dp",
    "number_2dp_comma_decimal",
    "number_3dp",
    "number_3dp_comma_decimal",
    "number_4dp",
    "number_4dp_comma_decimal",
    "number_comma_decimal",
    "phone",
    "phone_australia",
    "postalcode_australia",
    "postalcode_canada",
    "postalcode_french",
    "postalcode_germany",
    "ssn",
    "time",
    "time_hh_mm_ss",
    "time_mm_ss",
    "vmrn",
    "zipcode",
    "date",
    "datetime",
    "datetime_seconds",
    "int",
    "float",
}
# Names REDCap keeps for itself (REDCap's Project::$reserved_field_names).
RESERVED_NAMES = {
    "redcap_event_name",
    "redcap_csrf_token",
    "redcap_survey_timestamp",
    "redcap_survey_identifier",
    "redcap_survey_return_code",
    "redcap_data_access_group",
    "hidden_edit_flag",
    "instance",
    "redcap_repeat_instance",
    "redcap_repeat_instrument",
    "submit",
    "new",
    "return",
    "continue",
    "case",
    "switch",
    "class",
    "enum",
    "catch",
    "throw",
    "document",
    "super",
    "focus",
    "elements",
    "action",
}
MAX_NAME = 100  # REDCap refuses longer variable names
ADVISED_NAME = 26  # REDCap warns above this (statistics packages cut long names)
MAX_FORM = 64
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
CODE_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$|^[A-Za-z0-9._-]+$")
INTEGER_RE = re.compile(r"^[-+]?[0-9]+$")
NUMBER_RE = re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
FIELD_REF_RE = re.compile(r"\[([a-z0-9_]+)(?:\(([A-Za-z0-9._-]+)\))?\]")


@dataclass
class RowProblem:
    """One thing wrong in a data-dictionary file: the row (header is row 1), field, message."""

    row: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"Row {self.row}" if self.row else "File"
        return (
            f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


def checkbox_suffix(code: str) -> str:
    """The part after ``___`` in a checkbox's export column, as REDCap forms it.

    ``-`` and ``.`` become ``_``, letters are lowered and anything else outside
    ``[a-z0-9_]`` is dropped (REDCap's getExtendedCheckboxCodeFormatted).
    """
    code = code.replace("-", "_").replace(".", "_").lower()
    return re.sub(r"[^a-z0-9_]", "", code)


def parse_choices(text: str) -> list[tuple[str, str]]:
    """Split ``code, label | code, label`` into pairs; raise ValueError naming what is wrong."""
    pairs = []
    for part in text.split("|"):
        part = part.strip()
        if not part:
            raise ValueError("an empty choice between two '|'")
        if "," not in part:
            raise ValueError(f"choice '{part}' has no comma; write 'code, label'")
        code, label = (piece.strip() for piece in part.split(",", 1))
        if not code:
            raise ValueError(f"choice '{part}' has no code before the comma")
        if not label:
            raise ValueError(f"choice '{code}' has no label after the comma")
        pairs.append((code, label))
    return pairs


def read_csv(content: bytes | str) -> tuple[list[dict[str, str]], list[RowProblem]]:
    """Read a data-dictionary file: rows keyed by the 18 column names, or the problem.

    UTF-8 with or without a byte-order mark; the header must be REDCap's 18
    columns in REDCap's order.
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return [], [RowProblem(0, "", "the file is not UTF-8 text; save it as CSV UTF-8")]
    content = content.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [RowProblem(0, "", "the file is empty")]
    except csv.Error as exc:
        return [], [RowProblem(1, "", f"not a CSV file: {exc}")]
    header = [h.strip() for h in header]
    while header and header[-1] == "":
        header.pop()
    if header != REDCAP_COLUMNS:
        missing = [c for c in REDCAP_COLUMNS if c not in header]
        detail = (
            f"missing {', '.join(repr(c) for c in missing)}"
            if missing
            else "the columns are not in REDCap's order"
        )
        return [], [
            RowProblem(1, "", f"the header must be REDCap's 18 data-dictionary columns ({detail})")
        ]
    rows = []
    problems = []
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(REDCAP_COLUMNS) and any(c.strip() for c in cells[18:]):
                problems.append(
                    RowProblem(number, cells[0].strip(), "the row has more than 18 cells")
                )
                continue
            cells = (cells + [""] * 18)[:18]
            row = {column: cell.strip() for column, cell in zip(REDCAP_COLUMNS, cells, strict=True)}
            row["_row"] = str(number)
            rows.append(row)
    except csv.Error as exc:
        problems.append(RowProblem(reader.line_num, "", f"not valid CSV: {exc}"))
    if not rows and not problems:
        problems.append(RowProblem(0, "", "the file has a header but no fields"))
    return rows, problems


def _row(row: dict, index: int) -> int:
    return int(row.get("_row") or index + 2)


def check_rows(rows: Iterable[dict[str, str]]) -> list[RowProblem]:
    """Apply REDCap's data-dictionary rules to rows keyed by the 18 column names.

    Returns every problem: errors REDCap refuses the file for, and warnings.
    """
    rows = list(rows)
    problems: list[RowProblem] = []
    names = [row[NAME] for row in rows]
    forms_seen: dict[str, int] = {}
    previous_form = ""
    for index, row in enumerate(rows):
        number = _row(row, index)
        form = row[FORM]
        if not form:
            problems.append(RowProblem(number, row[NAME], "the form name is empty"))
        elif not NAME_RE.match(form):
            problems.append(
                RowProblem(
                    number,
                    row[NAME],
                    f"form name '{form}' must be lowercase letters, digits and _, "
                    "starting with a letter",
                )
            )
        elif len(form) > MAX_FORM:
            problems.append(
                RowProblem(number, row[NAME], f"form name '{form}' is over {MAX_FORM} characters")
            )
        if form and form != previous_form and form in forms_seen:
            problems.append(
                RowProblem(
                    number,
                    row[NAME],
                    f"form '{form}' continues here after other forms (from row "
                    f"{forms_seen[form]}); a form's fields must be in consecutive rows",
                )
            )
        forms_seen.setdefault(form, number)
        previous_form = form
    status_fields = {f"{form}_complete" for form in forms_seen}
    extra_reserved = {
        f"{form}_{end}" for form in forms_seen for end in ("timestamp", "return_code")
    }
    seen: dict[str, int] = {}
    kinds = {}
    for index, row in enumerate(rows):
        number = _row(row, index)
        name = row[NAME]
        kinds[name] = LEGACY_TYPES.get(row[TYPE], row[TYPE])
        problems += _check_name(number, name, status_fields, extra_reserved)
        if name in seen:
            problems.append(
                RowProblem(
                    number, name, f"the variable name is used twice (first in row {seen[name]})"
                )
            )
        seen.setdefault(name, number)
    if rows and kinds.get(rows[0][NAME]) != "text":
        problems.append(
            RowProblem(
                _row(rows[0], 0),
                rows[0][NAME],
                "the first field is the record ID and must be a text field",
            )
        )
    for index, row in enumerate(rows):
        problems += _check_field(_row(row, index), row, set(names), status_fields, kinds)
    return problems


def _check_name(number: int, name: str, status_fields: set, extra_reserved: set) -> list:
    if not name:
        return [RowProblem(number, "", "the variable name is empty")]
    problems = []

    def problem(message, severity="error"):
        problems.append(RowProblem(number, name, message, severity))

    if not NAME_RE.match(name):
        problem("variable names are lowercase letters, digits and _, starting with a letter")
    if "__" in name:
        problem("variable names may not hold two underscores in a row (REDCap renames them)")
    if name.endswith("_"):
        problem("variable names may not end with _")
    if len(name) > MAX_NAME:
        problem(f"variable names are at most {MAX_NAME} characters")
    elif len(name) > ADVISED_NAME:
        problem(
            f"{len(name)} characters; REDCap advises at most {ADVISED_NAME} (it warns, "
            "and accepts it)",
            "warning",
        )
    if name in RESERVED_NAMES or name in extra_reserved:
        problem(f"'{name}' is a name REDCap keeps for itself")
    if name in status_fields:
        problem(f"'{name}' is the status field REDCap adds to a form")
    return problems


def _check_field(number: int, row: dict, names: set, status_fields: set, kinds: dict) -> list:
    name = row[NAME]
    raw_kind = row[TYPE]
    kind = LEGACY_TYPES.get(raw_kind, raw_kind)
    problems = []

    def problem(message, severity="error"):
        problems.append(RowProblem(number, name, message, severity))

    if not kind:
        problem("the field type is empty")
    elif kind not in FIELD_TYPES:
        problem(f"unknown field type '{raw_kind}'; REDCap's are {', '.join(sorted(FIELD_TYPES))}")
    choices = row[CHOICES]
    if kind in CHOICE_TYPES:
        if not choices:
            problem(f"a {kind} field needs its choices ('code, label | code, label')")
        else:
            try:
                pairs = parse_choices(choices)
            except ValueError as exc:
                problem(f"bad choices: {exc}")
            else:
                codes = [code for code, _ in pairs]
                bad = [c for c in codes if not CODE_RE.match(c)]
                if bad:
                    problem(
                        f"choice codes may hold only letters, digits, _ - . (not "
                        f"{', '.join(repr(c) for c in bad)})"
                    )
                doubled = sorted({c for c in codes if codes.count(c) > 1})
                if doubled:
                    problem(f"choice code {', '.join(doubled)} appears twice")
                if kind == "checkbox":
                    suffixes: dict[str, str] = {}
                    for code in codes:
                        suffix = checkbox_suffix(code)
                        if not suffix:
                            problem(f"checkbox code '{code}' leaves no export name")
                        elif suffix in suffixes and suffixes[suffix] != code:
                            problem(
                                f"checkbox codes '{suffixes[suffix]}' and '{code}' both export "
                                f"as {name}___{suffix}"
                            )
                        suffixes.setdefault(suffix, code)
    elif kind == "calc" and not choices:
        problem("a calc field needs its calculation")
    validation = row[VALIDATION]
    if validation:
        if kind not in ("text", "slider") and not (
            kind in ("dropdown", "sql") and validation == "autocomplete"
        ):
            if not (kind == "file" and validation == "signature"):
                problem(f"validation '{validation}' is only for text fields")
        elif kind == "text" and validation not in VALIDATION_TYPES:
            problem(f"unknown validation type '{validation}'")
        elif kind == "text":
            for column, what in ((VMIN, "minimum"), (VMAX, "maximum")):
                limit = row[column]
                if not limit or limit in ("now", "today"):
                    continue
                if validation in ("integer", "int") and not INTEGER_RE.match(limit):
                    problem(f"the {what} '{limit}' is not a whole number")
                elif validation.startswith(("number", "float")) and not NUMBER_RE.match(limit):
                    problem(f"the {what} '{limit}' is not a number")
    elif kind == "text" and (row[VMIN] or row[VMAX]):
        problem("a minimum or maximum needs a validation type (integer, number, ...)")
    for column, what in ((IDENTIFIER, "Identifier?"), (REQUIRED, "Required Field?")):
        if row[column] and row[column].lower() != "y":
            problem(f"'{what}' is 'y' or empty, not '{row[column]}'")
    logic = row[BRANCHING]
    if logic:
        problems += [
            RowProblem(number, name, message) for message in check_logic(logic, names, kinds)
        ]
    return problems


def check_logic(logic: str, names: set, kinds: dict) -> list[str]:
    """Problems with branching logic: unbalanced marks, unknown fields, bare checkbox names."""
    messages = []
    if (
        logic.count("(") != logic.count(")")
        or logic.count("[") != logic.count("]")
        or logic.count("'") % 2
        or logic.count('"') % 2
    ):
        messages.append(f"branching logic {logic!r} has unbalanced brackets or quotes")
        return messages
    for field, code in FIELD_REF_RE.findall(logic):
        if field not in names and not field.endswith("_complete"):
            messages.append(f"branching logic names '{field}', which is not a field")
        elif kinds.get(field) == "checkbox" and not code:
            messages.append(
                f"branching logic names checkbox '{field}' without a code; write [{field}(code)]"
            )
    return messages


def errors(problems: Iterable[RowProblem]) -> list[RowProblem]:
    return [p for p in problems if p.severity == "error"]
