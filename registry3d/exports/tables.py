"""What an export holds: its tables, their columns and each case's rows.

Both kinds of export are made of the same tables: ``cases`` (one row per
case: the record, the site and every top-level element) and one table per
repeating group of the dictionary (``prints``, ``anatomic_parts``, ...: one
row per item, with the case's ``case_code`` and the item's number). What
changes between a research and a site export are the :class:`Rules`:

- a research export follows HIPAA Safe Harbor unless an administrator asks
  for an identifiable export (a limited data set): dates reduced to the
  year, ages above the top code written as ``90+``, no free text (only an
  identifiable export holds it, screened for identifiers), no site case ID
  or patient key, site codes replaced by stable random labels when asked;
- a site export holds the site's own cases as stored, except that text
  which looks like a patient identifier is withheld, as in every export
  (:mod:`registry3d.lib.withhold`).

The site's CSV and XLSX files are instead one wide row per case in the
columns of the import template (:mod:`registry3d.dictionary.flat`), so a
lab can edit its export and import it again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from registry3d.dictionary import derive
from registry3d.dictionary.spec import Dictionary, Element
from registry3d.lib.withhold import WITHHELD, withheld

LEFT_OUT_FREE_TEXT = (
    "Free text: never in a de-identified export; only an administrator's identifiable "
    "export (limited data set) holds it, screened."
)
LEFT_OUT_IDENTIFIER = (
    "Identifier: only an administrator's identifiable export (limited data set) holds it."
)

# The column kinds writers know: how a value is typed in Parquet and written in CSV.
KINDS = ("text", "int", "float", "bool", "text_list", "int_list", "duration", "year")


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    kind: str
    read: Callable[[dict], object]
    note: str = ""
    element: str = ""  # the dictionary element it comes from
    unit: str = ""
    codes: str = ""  # "code = label; ..." of its value set


@dataclass(frozen=True)
class Table:
    name: str
    label: str
    columns: list[Column]
    group: str = ""  # the repeating group it holds, or "" for the cases table


@dataclass(frozen=True)
class Rules:
    """How an export treats what could identify a patient or a site."""

    year_only: bool = True
    top_code: bool = True
    free_text: str = "drop"  # drop | screen | keep
    identifiers: bool = False  # the site's case ID and the patient key
    site_labels: bool = False
    derived: bool = True

    def described(self) -> list[str]:
        """The rules in words, for the manifest and the export's dictionary."""
        out = []
        out.append(
            "Dates are reduced to the year (HIPAA Safe Harbor)."
            if self.year_only
            else "Dates are kept as year and month."
        )
        if self.top_code:
            out.append("Ages of 90 and above are written as 90+ (HIPAA Safe Harbor).")
        out.append(
            {
                "drop": "Free-text elements (comments) are left out: no free text is ever in a "
                "de-identified export. In other typed text (software and material names), "
                f"values that look like a patient identifier are replaced by {WITHHELD}.",
                "screen": "Free-text elements are included (this leaves HIPAA Safe Harbor); in "
                "them and in other typed text, values that look like a patient identifier are "
                f"replaced by {WITHHELD}.",
                "keep": "Free-text elements are included; in them and in other typed text, "
                f"values that look like a patient identifier are replaced by {WITHHELD}.",
            }[self.free_text]
        )
        out.append(
            "The site's case ID and the patient key are included."
            if self.identifiers
            else "The site's case ID and the patient key are left out; case_code is the "
            "registry's random identifier of the case."
        )
        if self.site_labels:
            out.append("Sites are named by stable random labels instead of their codes.")
        return out


SAFE_HARBOR = Rules()
SITE_RULES = Rules(year_only=False, top_code=False, free_text="keep", identifiers=True)


@dataclass
class Stats:
    """What the rules changed, counted for the manifest."""

    withheld_text: int = 0
    top_coded: int = 0
    by_table: dict[str, int] = field(default_factory=dict)
    # (element path, label, why) of what the rules left out of the tables.
    left_out: list[tuple[str, str, str]] = field(default_factory=list)


def _codes(element: Element) -> str:
    if element.value_set is None:
        return ""
    return "; ".join(f"{c.code} = {c.label}" for c in element.value_set.codes)


def _kind(element: Element, rules: Rules) -> str:
    if element.type == "year_month":
        return "year" if rules.year_only else "text"
    if element.top_code is not None and rules.top_code:
        return "text"
    return {
        "integer": "int",
        "decimal": "float",
        "boolean": "bool",
        "multi_choice": "text_list",
        "integer_list": "int_list",
        "duration": "duration",
    }.get(element.type, "text")


def _element_column(element: Element, rules: Rules, stats: Stats) -> Column | None:
    """The column of one element under ``rules``, or None when the rules leave it out."""
    if element.free_text and rules.free_text == "drop":
        return None
    name, note = element.name, ""
    read: Callable[[dict], object]
    key = element.name
    if element.type == "year_month" and rules.year_only:
        name = key.removesuffix("_year_month").removesuffix("_month") + "_year"
        note = "Year only (HIPAA Safe Harbor)."

        def read(values, key=key):
            value = values.get(key)
            return int(value[:4]) if isinstance(value, str) and value[:4].isdigit() else None

    elif element.top_code is not None and rules.top_code:
        top = element.top_code
        note = f"{top}+ stands for {top} or more (HIPAA Safe Harbor)."

        def read(values, key=key, top=top):
            value = values.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= top:
                stats.top_coded += 1
                return f"{top}+"
            return None if value is None else str(value)

    elif element.screened:
        # Every export, a site's own too: an identifier stored past the entry
        # screen (an older screen, or one it missed) never leaves.
        note = f"Values that look like a patient identifier are replaced by {WITHHELD}."

        def read(values, key=key, token=element.token):
            value = values.get(key)
            shown = withheld(value, token=token)
            if shown is not value:
                stats.withheld_text += 1
            return shown

    else:

        def read(values, key=key):
            return values.get(key)

    return Column(
        name,
        element.label,
        _kind(element, rules),
        read,
        note=note,
        element=element.name,
        unit=element.unit or "",
        codes=_codes(element),
    )


def _wanted(dictionary: Dictionary, elements: list[str] | None) -> set[str]:
    if elements is None:
        return set(dictionary.elements)
    return set(elements)


def tables(
    dictionary: Dictionary, rules: Rules, elements: list[str] | None = None
) -> tuple[list[Table], Stats]:
    """The tables of an export of ``elements`` (top-level element and group names; None: all)."""
    stats = Stats()
    wanted = _wanted(dictionary, elements)
    record = [
        Column(
            "case_code",
            "Case code",
            "text",
            lambda r: r["case_code"],
            note="The registry's random identifier of the case; the same in every table.",
        ),
        Column(
            "site",
            "Site",
            "text",
            lambda r: r["site"],
            note="A stable random label of the site." if rules.site_labels else "The site's code.",
        ),
        Column(
            "site_region",
            "Site's region",
            "text",
            lambda r: r["site_region"],
            note="State, province or region of the site.",
        ),
        Column("facility_type", "Facility type", "text", lambda r: r["facility_type"]),
        Column("status", "Status", "text", lambda r: r["status"]),
        Column(
            "dictionary_version", "Dictionary version", "text", lambda r: r["dictionary_version"]
        ),
    ]
    if not rules.identifiers:
        stats.left_out += [
            ("case_uid", "Site's case ID", LEFT_OUT_IDENTIFIER),
            ("patient_key", "Pseudonymous patient key", LEFT_OUT_IDENTIFIER),
        ]
    else:
        record[1:1] = [
            Column("case_uid", "Site's case ID", "text", lambda r: r["case_uid"]),
            Column("patient_key", "Pseudonymous patient key", "text", lambda r: r["patient_key"]),
        ]
    case_columns: list[Column] = []
    groups: list[Table] = []
    for section in dictionary.sections:
        for element in section.elements:
            if element.name not in wanted:
                continue
            if element.is_group:
                items = []
                for item in element.elements:
                    column = _element_column(item, rules, stats)
                    if column is None:
                        stats.left_out.append(
                            (f"{element.name}.{item.name}", item.label, LEFT_OUT_FREE_TEXT)
                        )
                    else:
                        items.append(column)
                key = [
                    Column("case_code", "Case code", "text", lambda r: r["case_code"]),
                    Column(
                        "item",
                        "Item number",
                        "int",
                        lambda r: r["item"],
                        note="1 for the group's first item, in the order entered.",
                    ),
                ]
                groups.append(Table(element.name, element.label, key + items, element.name))
                continue
            column = _element_column(element, rules, stats)
            if column is None:
                stats.left_out.append((element.name, element.label, LEFT_OUT_FREE_TEXT))
            else:
                case_columns.append(column)
    derived = []
    if rules.derived:
        for item in dictionary.derived:
            if item.name == "expected_cpt_units":
                continue  # a table of its own in all but name; the CPT lines are exported

            derived.append(
                Column(
                    item.name,
                    item.label,
                    "float" if "USD" in (item.unit or "") else "int",
                    lambda r, name=item.name: r["derived"].get(name),
                    note=f"Derived: {item.help}",
                    unit=item.unit or "",
                )
            )
    cases = Table("cases", "Cases", record + case_columns + derived)
    return [cases, *groups], stats


def case_rows(case, site: dict, table_list: list[Table], dictionary: Dictionary, rules: Rules):
    """Yield (table name, row values) for one case: one cases row and one row per group item."""
    data = case.data or {}
    values = dict(data)
    values.update(
        case_code=str(case.code),
        site=site["label"] if rules.site_labels else site["code"],
        site_region=site["region"],
        facility_type=site["facility_type"],
        status=case.status,
        dictionary_version=case.dictionary_version,
        case_uid=case.case_uid,
        patient_key=case.patient_key,
        derived=derive.derive(dictionary, data) if rules.derived else {},
    )
    for table in table_list:
        if not table.group:
            yield table.name, [column.read(values) for column in table.columns]
            continue
        for number, item in enumerate(data.get(table.group) or [], start=1):
            if not isinstance(item, dict):
                continue
            row = dict(item, case_code=values["case_code"], item=number)
            yield table.name, [column.read(row) for column in table.columns]
