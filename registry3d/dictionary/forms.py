"""The case form, generated from the dictionary.

Fields are named like the columns of an import file (``prints_2_material``),
so a form post and a spreadsheet row are read by the same code
(:class:`registry3d.dictionary.flat.FlatReader`).
"""

import re
from dataclasses import dataclass, field

from django.http import QueryDict

from registry3d.dictionary.flat import FlatReader, item_column, write_row
from registry3d.dictionary.spec import Dictionary, Element
from registry3d.dictionary.validation import Problem

PATH_RE = re.compile(r"^([a-z0-9_]+)(?:\[(\d+)\])?(?:\.([a-z0-9_]+))?(?:\[\d+\])?$")
NEW_ITEM = "__N__"
# Form fields that are not case data: the CSRF token and the submit buttons.
NOT_DATA = {"csrfmiddlewaretoken", "check", "action", "version", "mrn"}


@dataclass
class Field:
    element: Element
    name: str  # the form field's name
    value: str = ""
    values: list[str] = field(default_factory=list)  # multiple choices
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def widget(self) -> str:
        kind = self.element.type
        if kind == "choice":
            return "select"
        if kind == "multi_choice":
            return "checkboxes"
        if kind == "boolean":
            return "yesno"
        if kind in ("integer", "decimal"):
            return "number"
        if kind == "year_month":
            return "month"
        if kind == "text" and self.element.max_length > 200:
            return "textarea"
        return "text"

    @property
    def step(self) -> str:
        return "1" if self.element.type == "integer" else "any"

    @property
    def placeholder(self) -> str:
        return {
            "duration": "minutes, h:mm or unknown",
            "integer_list": "e.g. 1;2",
            "year_month": "YYYY-MM",
            "code": "e.g. Q21.1" if self.element.system == "ICD-10-CM" else "",
        }.get(self.element.type, "")

    @property
    def required_note(self) -> str:
        if self.element.required:
            return "required"
        if self.element.required_text:
            return "required when " + self.element.required_words
        return ""

    @property
    def choices(self) -> list[tuple[str, str]]:
        if self.element.value_set is None:
            return []
        return [
            (c.code, c.label)
            for c in self.element.value_set.codes
            if c.active or c.code == self.value or c.code in self.values
        ]


@dataclass
class Item:
    number: str  # "1", "2"... or NEW_ITEM in the template of a new item
    fields: list[Field]


@dataclass
class Group:
    element: Element
    items: list[Item]
    template: Item
    errors: list[str] = field(default_factory=list)


@dataclass
class SectionView:
    id: str
    label: str
    help: str
    questionnaire: bool
    entries: list  # Field or Group, in dictionary order
    error_count: int = 0


def post_to_row(post: QueryDict) -> dict[str, str]:
    """Flatten a form post: checkbox lists are joined with ';'."""
    row = {}
    for key in post:
        if key in NOT_DATA or NEW_ITEM in key:
            continue
        values = [v for v in post.getlist(key) if v != ""]
        row[key] = ";".join(values) if len(values) > 1 else (values[0] if values else "")
    return row


def problem_field(path: str) -> str:
    """Return the form field a problem path belongs to: prints[2].material → prints_2_material."""
    match = PATH_RE.match(path)
    if not match:
        return path
    name, number, item = match.groups()
    if number and item:
        return item_column(name, int(number), item)
    return name


def build(
    dictionary: Dictionary,
    row: dict[str, str] | None = None,
    problems: list[Problem] = (),
    sections: list[str] | None = None,
) -> list[SectionView]:
    """Return the form's sections with values and problems placed at their fields."""
    row = row or {}
    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    for problem in problems:
        target = errors if problem.severity == "error" else warnings
        target.setdefault(problem_field(problem.path), []).append(problem.message)
    views = []
    for section in dictionary.sections:
        if sections is not None and section.id not in sections:
            continue
        entries = []
        count = 0
        for element in section.elements:
            if element.is_group:
                numbers = sorted(
                    {
                        int(m.group(1))
                        for key in row
                        if (m := re.match(rf"^{element.name}_(\d+)_", key))
                    }
                )
                if not numbers and (element.required or element.min_items):
                    numbers = [1]
                items = [
                    Item(
                        str(n),
                        [
                            _field(i, item_column(element.name, n, i.name), row, errors, warnings)
                            for i in element.elements
                        ],
                    )
                    for n in numbers
                ]
                template = Item(
                    NEW_ITEM,
                    [
                        _field(i, item_column(element.name, NEW_ITEM, i.name), {}, {}, {})
                        for i in element.elements
                    ],
                )
                group = Group(element, items, template, errors.get(element.name, []))
                count += len(group.errors) + sum(len(f.errors) for it in items for f in it.fields)
                entries.append(group)
            else:
                entry = _field(element, element.name, row, errors, warnings)
                count += len(entry.errors)
                entries.append(entry)
        views.append(
            SectionView(
                section.id, section.label, section.help, section.questionnaire, entries, count
            )
        )
    return views


def _field(element: Element, name: str, row: dict, errors: dict, warnings: dict) -> Field:
    raw = row.get(name, "")
    entry = Field(element, name, errors=errors.get(name, []), warnings=warnings.get(name, []))
    if element.type == "multi_choice":
        entry.values = [v.strip() for v in raw.split(";") if v.strip()]
    else:
        entry.value = raw
    return entry


def read_post(
    dictionary: Dictionary, post: QueryDict
) -> tuple[dict[str, str], dict, list[Problem]]:
    """Return (the row as posted, the case data, problems of reading it)."""
    row = post_to_row(post)
    _record, data, problems = FlatReader(dictionary).read(row)
    return row, data, problems


def row_of(dictionary: Dictionary, data: dict) -> dict[str, str]:
    return write_row(dictionary, {}, data)
