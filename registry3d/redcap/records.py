"""Cases as REDCap "flat" records, and REDCap flat records back into case data.

A record is the rows REDCap exports for it: one row for the instruments that
do not repeat (``redcap_repeat_instrument`` and ``redcap_repeat_instance``
empty), then one row per instance of each repeating instrument (the
dictionary's groups: ``imaging``, ``anatomic_parts``, ``prints``,
``cpt_lines``). ``record_id`` is the site's case ID. Checkbox fields
(multiple choices) are one column per choice, ``field___code``, holding 1 or
0; yes/no fields hold 1 or 0; lists of numbers are separated by ``;``; each
instrument has an ``<instrument>_complete`` column: 2 (Complete) on a
submitted case, 0 (Incomplete) on a draft. Withdrawn cases are not exported:
a REDCap project has no place for them.

No patient identifier leaves this way: the pseudonymous patient key is not
part of a REDCap record, and free text was screened when it came in.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from registry3d.cases.models import CaseStatus
from registry3d.cases.services import shown_case_uid
from registry3d.dictionary import flat, generators, registry
from registry3d.dictionary.spec import Dictionary
from registry3d.dictionary.validation import is_safe_name
from registry3d.lib.withhold import withheld
from registry3d.redcap.project import (
    COMPLETE,
    INCOMPLETE,
    RECORD_ID,
    REPEAT_INSTANCE,
    REPEAT_INSTRUMENT,
    Field,
    Project,
    project_of,
)

STATUS_WORDS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
# Columns REDCap may add to an export that mean nothing in this project;
# empty ones are read past.
IGNORED_WHEN_EMPTY = {"redcap_event_name", "redcap_data_access_group"}


# --- Cases to flat rows -------------------------------------------------------------------


def _cell(field_: Field, value) -> str:
    kind = field_.element.type
    if value is None:
        return ""
    if kind == "boolean":
        return "1" if value else "0"
    if kind == "integer_list":
        return ";".join(str(v) for v in value)
    return str(withheld(value, token=field_.element.token) if field_.element.screened else value)


def _fill(row: dict, fields: list[Field], values: dict) -> bool:
    """Put ``values`` into ``row`` under the fields' columns; return whether any was given."""
    filled = False
    for each in fields:
        if each.element is None:
            continue
        value = values.get(each.name)
        if each.field_type == "checkbox":
            chosen = set(value or [])
            for column, code in each.choices:
                row[column] = "1" if code in chosen else "0"
            filled = filled or bool(chosen)
        else:
            row[each.name] = _cell(each, value)
            filled = filled or value is not None
    return filled


def record_rows(project: Project, case_uid: str, data: dict, status: str) -> list[dict[str, str]]:
    """Return one case's flat rows: the main row, then one row per repeating instance."""
    done = COMPLETE if status == CaseStatus.SUBMITTED else INCOMPLETE
    main = {RECORD_ID: case_uid, REPEAT_INSTRUMENT: "", REPEAT_INSTANCE: ""}
    rows = [main]
    for instrument in project.instruments:
        if instrument.repeating:
            continue
        answered = _fill(main, instrument.fields, data)
        if instrument.questionnaire:
            # The physician answers it apart from the case's submission.
            main[instrument.status_field] = COMPLETE if answered else INCOMPLETE
        else:
            main[instrument.status_field] = done
    for instrument in project.repeating():
        for number, item in enumerate(data.get(instrument.name) or [], start=1):
            row = {RECORD_ID: case_uid, REPEAT_INSTRUMENT: instrument.name}
            row[REPEAT_INSTANCE] = str(number)
            _fill(row, instrument.fields, item if isinstance(item, dict) else {})
            row[instrument.status_field] = done
            rows.append(row)
    return rows


def case_rows(project: Project, case) -> list[dict[str, str]]:
    """The flat rows of a Case (none for a withdrawn case)."""
    if case.status == CaseStatus.WITHDRAWN:
        return []
    return record_rows(project, case.case_uid, case.data or {}, case.status)


def write_records_csv(cases: Iterable, out: TextIO, dictionary: Dictionary | None = None) -> int:
    """Write cases as REDCap's flat CSV records to ``out``; return how many were written.

    ``cases`` may be any iterable of Case objects (a queryset's
    ``.iterator()``): they are read one at a time, never all at once.
    Withdrawn cases are left out. The file can be loaded with REDCap's Data
    Import Tool into a project made from :func:`write_dictionary_csv`.
    """
    project = project_of(dictionary or registry.current().dictionary)
    writer = csv.DictWriter(
        out, fieldnames=project.export_columns(), restval="", lineterminator="\r\n"
    )
    writer.writeheader()
    written = 0
    for case in cases:
        rows = case_rows(project, case)
        if rows:
            writer.writerows(rows)
            written += 1
    return written


def write_dictionary_csv(dictionary: Dictionary, out: TextIO) -> None:
    """Write the REDCap data dictionary (REDCap's 18 columns) of ``dictionary`` to ``out``."""
    out.write(generators.redcap_csv(dictionary))


# --- Flat rows back to case data ------------------------------------------------------------


@dataclass
class RecordProblem:
    """One bad cell of an import: the record, the field, the value sent, what is expected."""

    record: str
    field: str
    value: str
    message: str
    place: str = ""  # "prints[2]" for a repeating instance, for telling problems apart

    def line(self) -> str:
        """The problem as REDCap reports import errors: a CSV line of the four.

        The value column is always empty: a refused value is never sent back
        (it may be a patient's name or number), nor a record name or field
        that is not a well-formed case ID or field name (#15). Clients such
        as PyCap pass the text on as it is.
        """
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(
            [
                shown_case_uid(self.record),
                self.field if is_safe_name(self.field.split("___")[0]) else "",
                "",
                self.message,
            ]
        )
        return buffer.getvalue()


@dataclass
class IncomingRecord:
    """The cells one record's rows brought, sorted by where they go."""

    record_id: str
    main: dict[str, str] = field(default_factory=dict)  # column -> text
    instances: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)  # instrument -> values


WHOLE_RE = re.compile(r"^[+-]?\d+\.0+$")


def _whole(text: str) -> str:
    """``2.0`` as ``2``: pandas writes whole numbers so when a column has an empty cell."""
    return text.split(".")[0] if WHOLE_RE.match(text) else text


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(
    project: Project, rows: Iterable[dict]
) -> tuple[list[IncomingRecord], list[RecordProblem]]:
    """Sort flat rows into records; every problem with their columns and places.

    Each row names its record (``record_id``) and, for a repeating
    instrument, the instrument and instance. Cells are kept as text, to be
    turned into values by :func:`apply`.
    """
    records: dict[str, IncomingRecord] = {}
    problems: list[RecordProblem] = []
    checked_columns: set[str] = set()
    for number, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            problems.append(RecordProblem("", "", "", f"item {number} is not a record object"))
            continue
        row = {str(k).strip(): _text(v) for k, v in raw.items()}
        record_id = row.get(RECORD_ID, "")
        for column in row:
            if column in checked_columns:
                continue
            checked_columns.add(column)
            if column in (RECORD_ID, REPEAT_INSTRUMENT, REPEAT_INSTANCE):
                continue
            if column in project.columns or column in project.status_fields:
                continue
            if column in IGNORED_WHEN_EMPTY:
                continue
            problems.append(
                RecordProblem(
                    record_id, column, "", "is not a field of this project (see exportFieldNames)"
                )
            )
        for column in IGNORED_WHEN_EMPTY:
            if row.get(column):
                problems.append(
                    RecordProblem(
                        record_id,
                        column,
                        row[column],
                        "this project has no events or data access groups; leave it empty",
                    )
                )
        if RECORD_ID not in row:
            problems.append(RecordProblem("", RECORD_ID, "", f"row {number} has no record_id"))
            continue
        if not record_id:
            problems.append(RecordProblem("", RECORD_ID, "", f"row {number}: record_id is empty"))
            continue
        record = records.setdefault(record_id, IncomingRecord(record_id))
        instrument_name = row.get(REPEAT_INSTRUMENT, "")
        instance_text = _whole(row.get(REPEAT_INSTANCE, ""))
        if instrument_name:
            instrument = project.instrument.get(instrument_name)
            if instrument is None or not instrument.repeating:
                names = ", ".join(i.name for i in project.repeating())
                problems.append(
                    RecordProblem(
                        record_id,
                        REPEAT_INSTRUMENT,
                        instrument_name,
                        f"is not a repeating instrument; expected one of {names}",
                    )
                )
                continue
            if not instance_text.isdecimal() or int(instance_text) < 1:
                problems.append(
                    RecordProblem(
                        record_id,
                        REPEAT_INSTANCE,
                        instance_text,
                        f"{instrument_name}: expected the instance number, 1 or more",
                    )
                )
                continue
            target = record.instances.setdefault(instrument_name, {}).setdefault(
                int(instance_text), {}
            )
        else:
            if instance_text not in ("", "1"):
                problems.append(
                    RecordProblem(
                        record_id,
                        REPEAT_INSTANCE,
                        instance_text,
                        "an instance number needs redcap_repeat_instrument (the repeating "
                        "instrument it belongs to)",
                    )
                )
                continue
            instrument = None
            target = record.main
        for column, text in row.items():
            if column in (RECORD_ID, REPEAT_INSTRUMENT, REPEAT_INSTANCE):
                continue
            if column in project.status_fields:
                owner = project.status_fields[column]
                text = _whole(text)
                if text and text not in STATUS_WORDS:
                    problems.append(
                        RecordProblem(
                            record_id,
                            column,
                            text,
                            "expected 0 (Incomplete), 1 (Unverified) or 2 (Complete)",
                        )
                    )
                elif text and (owner is instrument or (instrument is None and not owner.repeating)):
                    record.statuses.setdefault(owner.name, []).append(text)
                continue
            place = project.columns.get(column)
            if place is None:
                continue  # reported above
            each, _code = place
            belongs = (
                instrument is None
                if not project.instrument[each.instrument].repeating
                else (instrument is not None and each.instrument == instrument.name)
            )
            if not belongs:
                if text:
                    where = (
                        f"the repeating instrument {each.instrument}; give "
                        f"redcap_repeat_instrument={each.instrument} and its instance"
                        if project.instrument[each.instrument].repeating
                        else f"the instrument {each.instrument}, which does not repeat; "
                        "send it in the record's row without redcap_repeat_instrument"
                    )
                    problems.append(RecordProblem(record_id, column, text, f"belongs to {where}"))
                continue
            if column in target and target[column] != text:
                problems.append(
                    RecordProblem(record_id, column, text, "is given twice, with different values")
                )
                continue
            target[column] = text
    return list(records.values()), problems


class Converter:
    """Turns cells into element values with the flat files' rules, one reader per dictionary."""

    def __init__(self, dictionary: Dictionary):
        self.reader = flat.FlatReader(dictionary)

    def value(self, each: Field, text: str, record_id: str, where: str, place: str = ""):
        """Return (value, problem): the cell's value, or why it is not one."""
        element = each.element
        if element.type in ("integer", "duration", "boolean", "integer_list"):
            text = _whole(text)
        convert = self.reader.converter(element)
        try:
            return convert(text, text), None
        except ValueError:
            expected = {
                "integer": "a whole number",
                "decimal": "a number",
                "boolean": "1 (yes) or 0 (no)",
                "integer_list": "whole numbers separated by ;",
                "duration": "minutes, h:mm, or unknown",
            }.get(element.type, element.type)
            return None, RecordProblem(
                record_id,
                each.name,
                text,
                f"{where}{element.label}: the value is not valid; expected {expected}",
                place,
            )


def _merge(
    fields: list[Field],
    cells: dict[str, str],
    target: dict,
    overwrite: bool,
    convert: Converter,
    record_id: str,
    where: str,
    place: str = "",
) -> list[RecordProblem]:
    """Write the cells of ``fields`` into ``target`` (an item or the case data)."""
    problems = []
    for each in fields:
        if each.element is None:
            continue
        if each.field_type == "checkbox":
            given = [
                (column, code, _whole(cells[column]))
                for column, code in each.choices
                if column in cells
            ]
            if not given:
                continue
            chosen = list(target.get(each.name) or [])
            for column, code, text in given:
                if text == "1":
                    if code not in chosen:
                        chosen.append(code)
                elif text == "0" or (text == "" and overwrite):
                    if code in chosen:
                        chosen.remove(code)
                elif text:
                    problems.append(
                        RecordProblem(
                            record_id,
                            column,
                            text,
                            f"{where}{each.element.label}: expected 1 (checked) or 0 (unchecked)",
                            place,
                        )
                    )
            order = each.element.value_set.active_codes()
            # Codes the case already had keep their place; new ones follow in
            # the value set's order (a checkbox has none of its own).
            kept = [c for c in chosen if c in (target.get(each.name) or [])]
            added = sorted((c for c in chosen if c not in kept), key=order.index)
            chosen = kept + added
            if chosen:
                target[each.name] = chosen
            else:
                target.pop(each.name, None)
            continue
        if each.name not in cells:
            continue
        text = cells[each.name]
        if text == "":
            if overwrite:
                target.pop(each.name, None)
            continue
        value, problem = convert.value(each, text, record_id, where, place)
        if problem is not None:
            problems.append(problem)
        else:
            target[each.name] = value
    return problems


def apply(
    project: Project,
    record: IncomingRecord,
    existing: dict | None,
    *,
    overwrite: bool = False,
    converter: Converter | None = None,
) -> tuple[dict, list[RecordProblem]]:
    """Return the case data after the record's cells, and the problems with them.

    With ``overwrite`` false (REDCap's "normal") an empty cell leaves the
    case's value alone; with ``overwrite`` it removes it. Only the columns
    sent are touched. Instances change the group item of the same number;
    an instance one past the last adds an item; gaps are refused.
    """
    convert = converter or Converter(project.dictionary)
    data = {k: (list(v) if isinstance(v, list) else v) for k, v in (existing or {}).items()}
    problems: list[RecordProblem] = []
    for instrument in project.instruments:
        if not instrument.repeating:
            problems += _merge(
                instrument.fields, record.main, data, overwrite, convert, record.record_id, ""
            )
    for name, numbered in record.instances.items():
        instrument = project.instrument[name]
        items = [dict(item) for item in data.get(name) or [] if isinstance(item, dict)]
        for number in sorted(numbered):
            if number > len(items) + 1:
                problems.append(
                    RecordProblem(
                        record.record_id,
                        REPEAT_INSTANCE,
                        str(number),
                        f"{name}: instance {number} follows instance {len(items)}; number the "
                        "instances 1, 2, 3… without gaps",
                    )
                )
                break
            if number == len(items) + 1:
                items.append({})
            problems += _merge(
                instrument.fields,
                numbered[number],
                items[number - 1],
                overwrite,
                convert,
                record.record_id,
                f"{name} instance {number}: ",
                f"{name}[{number}]",
            )
        while items and not items[-1]:
            items.pop()
        if items:
            data[name] = items
        else:
            data.pop(name, None)
    return data, problems


def status_of(project: Project, record: IncomingRecord, current: str | None) -> str:
    """The case's status after the import.

    A record whose rows mark every instrument of the case (not the
    physician's questionnaire) Complete (2), and every instance sent
    Complete too, is submitted; otherwise a new case is a draft and an
    existing one keeps its status (a submitted case never goes back to draft).
    """
    if current == CaseStatus.SUBMITTED:
        return CaseStatus.SUBMITTED
    case_instruments = [i for i in project.instruments if not i.questionnaire]
    given = [
        record.statuses.get(i.name)
        for i in case_instruments
        if not i.repeating or i.name in record.instances
    ]
    if given and all(values and all(v == COMPLETE for v in values) for values in given):
        return CaseStatus.SUBMITTED
    return current or CaseStatus.DRAFT
