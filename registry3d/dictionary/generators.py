"""Files generated from the dictionary: JSON Schema, REDCap, templates, tables.

Each function takes the loaded dictionary and returns text or bytes; none
holds a list of elements of its own.
"""

import ast
import csv
import io
import json

from registry3d.dictionary import flat
from registry3d.dictionary.spec import Dictionary, Element

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# --- JSON Schema -----------------------------------------------------------------------------


def _schema_of(element: Element, dictionary: Dictionary) -> dict:
    kind = element.type
    schema: dict = {"title": element.label, "description": element.help}
    if element.unit:
        schema["x-unit"] = element.unit
    if kind in ("text", "code"):
        schema["type"] = "string"
        if kind == "text":
            schema["maxLength"] = element.max_length
        if element.pattern:
            schema["pattern"] = element.pattern
        if kind == "code" and element.system:
            schema["x-code-system"] = element.system
    elif kind == "integer":
        schema["type"] = "integer"
    elif kind == "decimal":
        schema["type"] = "number"
    elif kind == "boolean":
        schema["type"] = "boolean"
    elif kind == "choice":
        schema["enum"] = element.value_set.active_codes()
        schema["x-value-set"] = element.value_set.name
    elif kind == "multi_choice":
        schema.update(
            type="array",
            uniqueItems=True,
            items={"enum": element.value_set.active_codes()},
            **{"x-value-set": element.value_set.name},
        )
        if element.max_items is not None:
            schema["maxItems"] = element.max_items
    elif kind == "year_month":
        schema.update(type="string", pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    elif kind == "duration":
        minutes = {"type": "integer", "minimum": 0}
        if element.max is not None:
            minutes["maximum"] = element.max
        schema["oneOf"] = [minutes, {"const": "unknown"}]
    elif kind == "integer_list":
        item = {"type": "integer"}
        if element.min is not None:
            item["minimum"] = element.min
        if element.max is not None:
            item["maximum"] = element.max
        schema.update(type="array", uniqueItems=True, items=item)
        if element.max_items is not None:
            schema["maxItems"] = element.max_items
    elif kind == "group":
        schema.update(
            type="array",
            items={
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    i.name: _nullable(_schema_of(i, dictionary)) for i in element.elements
                },
            },
        )
        if element.max_items is not None:
            schema["maxItems"] = element.max_items
    if kind in ("integer", "decimal") and element.min is not None:
        schema["minimum"] = element.min
    if kind in ("integer", "decimal") and element.max is not None:
        schema["maximum"] = element.max
    required = True if element.required else (element.required_text or False)
    if required:
        schema["x-required"] = required
    schema["x-provenance"] = element.provenance
    if element.source:
        schema["x-source"] = dictionary.source_url(element.source.split(";")[0].strip())
    return schema


def _nullable(schema: dict) -> dict:
    """Every element may be empty in a draft; submission checks completeness."""
    return {"anyOf": [schema, {"type": "null"}]}


def json_schema(dictionary: Dictionary) -> dict:
    """Return the JSON Schema (2020-12) of the ``data`` object of a case."""
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://registry3d.org/schema/case/{dictionary.version}",
        "title": f"{dictionary.title} (dictionary {dictionary.version})",
        "description": dictionary.description,
        "type": "object",
        "additionalProperties": False,
        "properties": {
            e.name: _nullable(_schema_of(e, dictionary)) for e in dictionary.elements.values()
        },
        "x-dictionary-version": dictionary.version,
    }


def json_schema_text(dictionary: Dictionary) -> str:
    return json.dumps(json_schema(dictionary), indent=2, ensure_ascii=False) + "\n"


# --- REDCap data dictionary -----------------------------------------------------------------

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


def redcap_branching(expression: str | None, checkboxes: frozenset[str] = frozenset()) -> str:
    """Translate a simple required-when expression into REDCap branching logic.

    Comparisons of an element with literals, ``in`` lists and and/or are
    translated; anything else gives an empty string (the field is always shown).
    Multiple choices (``checkboxes``) are left untranslated: REDCap compares a
    checkbox only choice by choice (``[name(code)] = '1'``), never as a whole.
    """
    if not expression:
        return ""
    try:
        return _redcap(ast.parse(expression, mode="eval").body, checkboxes)
    except (ValueError, SyntaxError):
        return ""


def _redcap(node, checkboxes: frozenset[str]) -> str:
    if isinstance(node, ast.BoolOp):
        joiner = " and " if isinstance(node.op, ast.And) else " or "
        return "(" + joiner.join(_redcap(v, checkboxes) for v in node.values) + ")"
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name):
        name, op, right = node.left.id, node.ops[0], node.comparators[0]
        if name in checkboxes:
            raise ValueError("a checkbox is compared choice by choice")
        if isinstance(op, ast.Eq | ast.NotEq) and isinstance(right, ast.Constant):
            value = right.value
            if isinstance(value, bool):
                value = "1" if value else "0"
            sign = "=" if isinstance(op, ast.Eq) else "<>"
            return f"[{name}] {sign} '{value}'"
        if isinstance(op, ast.In) and isinstance(right, ast.List | ast.Tuple):
            return "(" + " or ".join(f"[{name}] = '{c.value}'" for c in right.elts) + ")"
    raise ValueError("not translatable")


def _choices(element: Element) -> str:
    return " | ".join(
        f"{c.code}, {c.label.replace('|', '/')}" for c in element.value_set.codes if c.active
    )


def _redcap_row(element: Element, form: str, header: str, dictionary: Dictionary) -> dict:
    kind = element.type
    row = dict.fromkeys(REDCAP_COLUMNS, "")
    row["Variable / Field Name"] = element.name
    row["Form Name"] = form
    row["Section Header"] = header
    row["Field Label"] = element.label
    note = element.help
    if kind in ("text", "code"):
        row["Field Type"] = "notes" if element.free_text and element.max_length > 255 else "text"
    elif kind in ("integer", "decimal"):
        row["Field Type"] = "text"
        row["Text Validation Type OR Show Slider Number"] = (
            "integer" if kind == "integer" else "number"
        )
        row["Text Validation Min"] = "" if element.min is None else str(element.min)
        row["Text Validation Max"] = "" if element.max is None else str(element.max)
    elif kind == "boolean":
        row["Field Type"] = "yesno"
    elif kind == "choice":
        row["Field Type"] = "radio" if len(element.value_set.active_codes()) <= 4 else "dropdown"
        row["Choices, Calculations, OR Slider Labels"] = _choices(element)
    elif kind == "multi_choice":
        row["Field Type"] = "checkbox"
        row["Choices, Calculations, OR Slider Labels"] = _choices(element)
    elif kind == "year_month":
        row["Field Type"] = "text"
        note = "YYYY-MM. " + note
    elif kind == "duration":
        row["Field Type"] = "text"
        note = "Whole minutes, or the word unknown. " + note
    elif kind == "integer_list":
        row["Field Type"] = "text"
        note = "Numbers separated by ;. " + note
    row["Field Note"] = note[:500]
    checkboxes = frozenset(
        e.name for e in dictionary.all_elements.values() if e.type == "multi_choice"
    )
    branching = redcap_branching(element.required_text, checkboxes)
    row["Branching Logic (Show field only if...)"] = branching
    # A field shown only when its condition holds is required when shown.
    if element.required or branching:
        row["Required Field?"] = "y"
    if element.free_text:
        row["Identifier?"] = "y"
    source = dictionary.source_url(element.source.split(";")[0].strip()) if element.source else ""
    row["Field Annotation"] = " ".join(
        part
        for part in (
            f"@registry3d-provenance={element.provenance}",
            f"@registry3d-unit={element.unit}" if element.unit else "",
            f"@registry3d-source={source}" if source else "",
        )
        if part
    )
    return row


def redcap_rows(dictionary: Dictionary) -> list[dict]:
    """Rows of a REDCap data dictionary; each repeating group is its own instrument.

    The instruments named after groups (``anatomic_parts``, ``prints``, ...)
    must be set as repeating instruments in the REDCap project.
    """
    first = dictionary.sections[0].id
    record = dict.fromkeys(REDCAP_COLUMNS, "")
    record.update(
        {
            "Variable / Field Name": "record_id",
            "Form Name": first,
            "Field Type": "text",
            "Field Label": "Record ID",
            "Field Note": "The site's case identifier (case_uid).",
        }
    )
    rows = [record]
    for section in dictionary.sections:
        header = section.label
        for element in section.elements:
            if element.is_group:
                item_header = element.label
                for item in element.elements:
                    rows.append(_redcap_row(item, element.name, item_header, dictionary))
                    item_header = ""
                continue
            rows.append(_redcap_row(element, section.id, header, dictionary))
            header = ""
    return rows


def redcap_csv(dictionary: Dictionary) -> str:
    return _csv(REDCAP_COLUMNS, redcap_rows(dictionary))


# --- The dictionary as a table --------------------------------------------------------------

TABLE_COLUMNS = [
    "section",
    "element",
    "label",
    "type",
    "unit",
    "required",
    "range",
    "value_set",
    "codes",
    "help",
    "provenance",
    "source",
    "dictionary_version",
]


def table_rows(dictionary: Dictionary) -> list[dict]:
    """One row per element, group items as ``group.element``."""
    rows = []
    for section in dictionary.sections:
        for element in section.elements:
            rows.append(_table_row(section.label, element, dictionary))
            for item in element.elements:
                rows.append(_table_row(section.label, item, dictionary))
    return rows


def _range(element: Element) -> str:
    if element.type in ("group", "multi_choice", "integer_list") and (
        element.min_items is not None or element.max_items is not None
    ):
        return f"{element.min_items or 0}–{element.max_items or '∞'} items"
    if element.min is None and element.max is None:
        return ""
    return (
        f"{'' if element.min is None else element.min}–{'' if element.max is None else element.max}"
    )


def _table_row(section: str, element: Element, dictionary: Dictionary) -> dict:
    required = (
        "yes"
        if element.required
        else (f"when {element.required_text}" if element.required_text else "no")
    )
    return {
        "section": section,
        "element": element.path_name,
        "label": element.label,
        "type": element.type,
        "unit": element.unit,
        "required": required,
        "range": _range(element),
        "value_set": element.value_set.name if element.value_set else "",
        "codes": " | ".join(f"{c.code}={c.label}" for c in element.value_set.codes if c.active)
        if element.value_set
        else "",
        "help": element.help,
        "provenance": element.provenance,
        "source": " ".join(
            dictionary.source_url(s.strip()) for s in element.source.split(";") if s.strip()
        ),
        "dictionary_version": dictionary.version,
    }


def table_csv(dictionary: Dictionary) -> str:
    return _csv(TABLE_COLUMNS, table_rows(dictionary))


def template_csv(dictionary: Dictionary) -> str:
    """The header row of an import file, in dictionary order."""
    return _csv(flat.columns(dictionary), [])


def _csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# --- XLSX ------------------------------------------------------------------------------------


def template_xlsx(dictionary: Dictionary) -> bytes:
    """An import workbook: a 'cases' sheet with drop-down lists, and the dictionary.

    Each column's header carries a comment with the label and help; choice
    columns offer their codes in a drop-down list.
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "cases"
    codes_sheet = workbook.create_sheet("codes")
    reader = flat.FlatReader(dictionary)
    code_columns: dict[str, str] = {}
    for index, value_set in enumerate(dictionary.value_sets.values(), start=1):
        letter = get_column_letter(index)
        codes_sheet.cell(row=1, column=index, value=value_set.name).font = Font(bold=True)
        active = value_set.active_codes()
        for row, code in enumerate(active, start=2):
            codes_sheet.cell(row=row, column=index, value=code)
        code_columns[value_set.name] = (
            f"{quote_sheetname('codes')}!${letter}$2:${letter}${len(active) + 1}"
        )
    header_fill = PatternFill("solid", fgColor="DDE7F3")
    for column, name in enumerate(flat.columns(dictionary), start=1):
        cell = sheet.cell(row=1, column=column, value=name)
        cell.font = Font(bold=True)
        cell.fill = header_fill
        element = _element_of(reader, dictionary, name)
        if element is None:
            cell.comment = Comment(_record_help(name), "registry3d")
            continue
        cell.comment = Comment(f"{element.label}\n\n{element.help}", "registry3d", 200, 300)
        letter = get_column_letter(column)
        if element.type == "choice":
            validation = DataValidation(
                type="list",
                formula1=code_columns[element.value_set.name],
                allow_blank=True,
                showErrorMessage=True,
                error=f"Choose a code of {element.value_set.name}",
            )
            sheet.add_data_validation(validation)
            validation.add(f"{letter}2:{letter}5000")
        elif element.type == "boolean":
            validation = DataValidation(type="list", formula1='"yes,no"', allow_blank=True)
            sheet.add_data_validation(validation)
            validation.add(f"{letter}2:{letter}5000")
        sheet.column_dimensions[letter].width = max(12, min(40, len(name) + 2))
    sheet.freeze_panes = "B2"
    table = workbook.create_sheet("dictionary")
    table.append(TABLE_COLUMNS)
    for cell in table[1]:
        cell.font = Font(bold=True)
    for row in table_rows(dictionary):
        table.append([row[c] for c in TABLE_COLUMNS])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def table_xlsx(dictionary: Dictionary) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = f"dictionary {dictionary.version}"
    sheet.append(TABLE_COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table_rows(dictionary):
        sheet.append([row[c] for c in TABLE_COLUMNS])
    codes = workbook.create_sheet("value sets")
    codes.append(["value_set", "code", "label", "retired_in", "replaced_by", "provenance"])
    for value_set in dictionary.value_sets.values():
        for code in value_set.codes:
            codes.append(
                [
                    value_set.name,
                    code.code,
                    code.label,
                    code.retired_in or "",
                    code.replaced_by or "",
                    value_set.provenance,
                ]
            )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _element_of(reader: flat.FlatReader, dictionary: Dictionary, column: str) -> Element | None:
    if column in dictionary.elements:
        return dictionary.elements[column]
    match = reader.item_re.match(column) if reader.item_re else None
    if match:
        group = dictionary.elements[match.group(1)]
        return next((i for i in group.elements if i.name == match.group(3)), None)
    return None


def _record_help(column: str) -> str:
    return {
        "case_uid": "Your site's own case identifier: letters, digits, - and _, at most 64.",
        "patient_key": "The pseudonymous patient key (keyed hash of the MRN, made at the site).",
        "status": "draft or submitted.",
    }.get(column, column)


GENERATED_FILES = {
    "case.schema.json": json_schema_text,
    "redcap-data-dictionary.csv": redcap_csv,
    "dictionary.csv": table_csv,
    "import-template.csv": template_csv,
}
