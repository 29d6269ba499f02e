"""Case data as one flat row of text: the shape of CSV/XLSX files and web forms.

A top-level element is a column of its own name; an item element of a group
is ``{group}_{n}_{element}`` with n counting from 1 (``prints_2_material``).
Multiple choices and lists are separated by ``;`` (``,`` is also read for
numbers); durations are minutes, ``h:mm`` or ``unknown``; yes/no values
accept yes/no, true/false, y/n and 1/0.
"""

import re
from collections.abc import Callable, Iterable
from itertools import compress

from registry3d.dictionary.spec import Dictionary, Element
from registry3d.dictionary.validation import Problem, is_safe_name, shown_name

RECORD_COLUMNS = ("case_uid", "patient_key", "status")
TRUE_WORDS = {"yes", "y", "true", "t", "1"}
FALSE_WORDS = {"no", "n", "false", "f", "0"}
DURATION_RE = re.compile(r"^(\d+):([0-5]\d)$")
TEMPLATE_ITEMS = {"imaging": 2, "anatomic_parts": 5, "prints": 3, "cpt_lines": 2}


def item_column(group: str, number: int, name: str) -> str:
    return f"{group}_{number}_{name}"


def columns(dictionary: Dictionary, items: dict[str, int] | None = None) -> list[str]:
    """Return the column names of a template, groups repeated ``items`` times."""
    counts = TEMPLATE_ITEMS if items is None else items
    names: list[str] = list(RECORD_COLUMNS)
    for section in dictionary.sections:
        for element in section.elements:
            if element.is_group:
                count = counts.get(element.name, min(element.max_items or 1, 3))
                for number in range(1, count + 1):
                    names += [item_column(element.name, number, i.name) for i in element.elements]
            else:
                names.append(element.name)
    return names


class FlatReader:
    """Turns rows of text into case data, with a problem for each bad cell."""

    def __init__(self, dictionary: Dictionary):
        self.dictionary = dictionary
        self.top = dictionary.elements
        groups = [g.name for g in dictionary.groups()]
        self.item_re = (
            re.compile(r"^(" + "|".join(map(re.escape, groups)) + r")_(\d+)_([a-z0-9_]+)$")
            if groups
            else None
        )
        labels = {}
        for element in dictionary.elements.values():
            labels[element.label.strip().lower()] = element.name
        self.by_label = labels
        self._columns: dict[str, tuple] = {}
        self._codes: dict[str, dict[str, str]] = {}
        self._converters: dict[int, Callable[[object, str], object]] = {}
        self._readers: dict[tuple, RowReader] = {}

    def column_name(self, header: str) -> str:
        """Match a header by element name or label, ignoring case."""
        key = header.strip().lower()
        return self.by_label.get(key, key.replace(" ", "_"))

    def known(self, column: str) -> bool:
        return self._column(column)[0] not in ("unknown", "bad")

    def _column(self, column: str) -> tuple:
        """What a column holds, worked out once per column name (cached).

        One of ("record", name), ("top", element), ("item", group, number,
        element, path), or ("unknown"/"bad", problem).
        """
        cached = self._columns.get(column)
        if cached is not None:
            return cached
        if column in RECORD_COLUMNS:
            plan: tuple = ("record", column)
        elif column in self.top and not self.top[column].is_group:
            plan = ("top", self.top[column])
        else:
            match = self.item_re.match(column) if self.item_re else None
            if not match:
                plan = (
                    "unknown",
                    Problem(
                        column if is_safe_name(column) else "",
                        "unknown_element",
                        f"{shown_name(column)} is not an element of the dictionary",
                    ),
                )
            else:
                group_name, number, name = match.group(1), int(match.group(2)), match.group(3)
                group = self.top[group_name]
                item = next((i for i in group.elements if i.name == name), None)
                path = f"{group_name}[{number}].{name}"
                if item is None:
                    plan = (
                        "unknown",
                        Problem(
                            path if is_safe_name(name) else f"{group_name}[{number}]",
                            "unknown_element",
                            f"{shown_name(name)} is not an element of {group.label.lower()}",
                        ),
                    )
                elif number < 1:
                    plan = (
                        "bad",
                        Problem(path, "bad_format", f"{group.label}: items are numbered from 1"),
                    )
                elif group.max_items and number > group.max_items:
                    plan = (
                        "bad",
                        Problem(
                            path, "too_many", f"{group.label}: at most {group.max_items} allowed"
                        ),
                    )
                else:
                    plan = ("item", group_name, number, item, path)
        self._columns[column] = plan
        return plan

    def read(self, row: dict[str, object]) -> tuple[dict, dict, list[Problem]]:
        """Return (record fields, case data, problems) for one row.

        Empty cells are left out; a group item with every cell empty is not
        an item. Items are kept in the order of their numbers.
        """
        return self.row_reader(list(row)).read(list(row.values()))

    def row_reader(self, columns: list[str]) -> "RowReader":
        """Return a reader of rows given as lists of cells under these column names.

        The columns are worked out once (an empty name is a column to skip),
        so reading a row is a pass over its filled cells: the import's path.
        """
        key = tuple(columns)
        reader = self._readers.get(key)
        if reader is None:
            if len(self._readers) > 64:  # web forms post varying columns
                self._readers.clear()
            reader = self._readers[key] = RowReader(self, columns)
        return reader

    def _code(self, element: Element, text: str) -> str:
        """Accept a code or its label, ignoring case; keep unknown text for the validator."""
        name = element.value_set.name
        codes = self._codes.get(name)
        if codes is None:
            codes = {}
            for code in element.value_set.codes:
                codes.setdefault(code.label.lower(), code.code)
            for code in element.value_set.codes:
                codes[code.code.lower()] = code.code
            self._codes[name] = codes
        return codes.get(text.lower(), text)

    def convert(self, element: Element, raw, path: str) -> tuple[object, Problem | None]:
        """Turn one cell into the element's value, or a problem saying why not."""
        text = _text(raw)
        try:
            return self.converter(element)(raw, text), None
        except ValueError:
            return None, self.wrong_type(element, text, path)

    @staticmethod
    def wrong_type(element: Element, text: str, path: str) -> Problem:
        """The problem of a cell that is not a value; it never quotes the cell (#15)."""
        return Problem(
            path,
            "wrong_type",
            f"{element.label}: the value is not valid; expected {_accepts(element)}",
        )

    def converter(self, element: Element) -> Callable[[object, str], object]:
        """Return ``convert(raw, text)`` for the element's type, made once per element.

        It gets the cell and its text (:func:`_text`) and returns the value,
        or raises ValueError.
        """
        made = self._converters.get(id(element))
        if made is not None:
            return made
        kind = element.type
        if kind in ("text", "code"):
            made = _as_text
        elif kind == "year_month":

            def made(raw, text):
                if not isinstance(raw, str) and hasattr(raw, "year"):
                    return f"{raw.year:04d}-{raw.month:02d}"
                return text

        elif kind == "choice":
            codes = self._code_map(element)

            def made(raw, text):
                return codes.get(text.lower(), text)

        elif kind == "integer":
            made = _integer
        elif kind == "decimal":

            def made(raw, text):
                return _decimal(text)

        elif kind == "boolean":

            def made(raw, text):
                word = text.lower()
                if word in TRUE_WORDS:
                    return True
                if word in FALSE_WORDS:
                    return False
                raise ValueError

        elif kind == "multi_choice":
            codes = self._code_map(element)

            def made(raw, text):
                return [codes.get(part.lower(), part) for part in _split(text)]

        elif kind == "integer_list":

            def made(raw, text):
                return [int(part) for part in _split(text, numbers=True)]

        elif kind == "duration":

            def made(raw, text):
                if text.lower() == "unknown":
                    return "unknown"
                match = DURATION_RE.match(text)
                if match:
                    return int(match.group(1)) * 60 + int(match.group(2))
                return _integer(raw, text)

        else:

            def made(raw, text):
                raise ValueError

        self._converters[id(element)] = made
        return made

    def _code_map(self, element: Element) -> dict[str, str]:
        self._code(element, "")  # fills the cache
        return self._codes[element.value_set.name]


class RowReader:
    """Reads rows given as lists of cells, the columns worked out once (see
    :meth:`FlatReader.row_reader`); the same result as :meth:`FlatReader.read`
    of the row as a dictionary of column to cell.
    """

    def __init__(self, reader: FlatReader, columns: list[str]):
        self.reader = reader
        # A name given twice keeps its last cell, as a dictionary would.
        last = {name: index for index, name in enumerate(columns) if name}
        # What to do with each column's cell: None to skip it, else
        # (kind, convert, target, element, path).
        self.cells: list[tuple | None] = [None] * len(columns)
        slots: dict[tuple, tuple] = {}
        for name, index in last.items():
            plan = reader._column(name)
            kind = plan[0]
            if kind == "top":
                element = plan[1]
                cell = ("top", reader.converter(element), name, element, name)
            elif kind == "item":
                _kind, group_name, number, element, path = plan
                slot = slots.setdefault((group_name, number), (group_name, number))
                cell = ("item", reader.converter(element), (slot, element.name), element, path)
            elif kind == "record":
                cell = ("record", None, name, None, name)
            else:
                cell = ("other", None, plan[1], None, name)
            self.cells[index] = cell

    def read(self, values: list, *, text_only: bool = False) -> tuple[dict, dict, list[Problem]]:
        """Return (record fields, case data, problems) for one row of cells.

        ``text_only`` says every cell is a string (a CSV row): empty ones are
        then skipped without looking at them one by one.
        """
        record: dict = {}
        data: dict = {}
        problems: list[Problem] = []
        items: dict[tuple, dict] = {}  # (group, number): item
        if text_only:
            filled = compress(zip(self.cells, values, strict=False), values)
        else:
            filled = compress(
                zip(self.cells, values, strict=False), [v is not None and v != "" for v in values]
            )
        wrong_type = self.reader.wrong_type
        for cell, raw in filled:
            if cell is None:
                continue
            if raw.__class__ is str:
                text = raw.strip()
                if not text:
                    continue
            elif isinstance(raw, str):
                text = raw.strip()
                if not text:
                    continue
            else:
                text = _text(raw)
            kind, convert, target, element, path = cell
            if kind == "item":
                try:
                    value = (
                        (text if text[:1] != "'" else _as_text(raw, text))
                        if convert is _as_text
                        else convert(raw, text)
                    )
                except ValueError:
                    problems.append(wrong_type(element, text, path))
                    continue
                slot, name = target
                item = items.get(slot)
                if item is None:
                    items[slot] = {name: value}
                else:
                    item[name] = value
            elif kind == "top":
                try:
                    data[target] = (
                        (text if text[:1] != "'" else _as_text(raw, text))
                        if convert is _as_text
                        else convert(raw, text)
                    )
                except ValueError:
                    problems.append(wrong_type(element, text, path))
            elif kind == "record":
                if text:
                    record[target] = text
            elif text:
                problems.append(target)
        if not items:
            return record, data, problems
        groups: dict[str, dict[int, dict]] = {}
        for (group_name, number), item in items.items():
            numbered = groups.get(group_name)
            if numbered is None:
                groups[group_name] = {number: item}
            else:
                numbered[number] = item
        for group_name, numbered in groups.items():
            numbers = sorted(numbered)
            if numbers[-1] != len(numbers):
                # Paths count items from 1 in order; a gap would put a
                # problem on the wrong column, so it is refused as such.
                missing = next(n for n in range(1, numbers[-1] + 1) if n not in numbered)
                group = self.reader.top[group_name]
                problems.append(
                    Problem(
                        f"{group_name}[{missing}]",
                        "missing_item",
                        f"{group.label}: item {missing} is empty but item {numbers[-1]} is "
                        "filled; number the items 1, 2, 3… without gaps",
                    )
                )
                continue
            data[group_name] = [numbered[n] for n in numbers]
        return record, data, problems


# What a spreadsheet would run as a formula; the registry's exports put a ' in
# front of such text, which reading takes away again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text(raw, text: str) -> str:
    if text[:1] == "'" and text[1:2] and text[1:2] in FORMULA_STARTS:
        return text[1:]
    return text


def _text(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def _integer(raw, text: str) -> int:
    if raw.__class__ is str:
        # The same as matching [+-]?\d+ (\d is what isdecimal accepts), without a regex.
        if not (text.isdecimal() or text[:1] in ("+", "-") and text[1:].isdecimal()):
            raise ValueError
        return int(text)
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    # The same as matching [+-]?\d+ (\d is what isdecimal accepts), without a regex.
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isdecimal():
        raise ValueError
    return int(text)


def _decimal(text: str) -> float:
    """Read 1234.5, 1,234.5 (thousands separators) or 12,5 (a decimal comma)."""
    if "," not in text:
        pass  # neither pattern below can match
    elif re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")
    elif re.fullmatch(r"[+-]?\d+,\d+", text):
        text = text.replace(",", ".")
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def _split(text: str, numbers: bool = False) -> list[str]:
    if not (";" in text or "|" in text or (numbers and "," in text)):
        return [text.strip()] if text.strip() else []
    separators = r"[;,|]" if numbers else r"[;|]"
    return [part.strip() for part in re.split(separators, text) if part.strip()]


def _accepts(element: Element) -> str:
    return {
        "integer": "a whole number",
        "decimal": "a number",
        "boolean": "yes or no",
        "integer_list": "whole numbers separated by ;",
        "duration": "minutes, h:mm, or unknown",
    }.get(element.type, element.type)


def write_row(dictionary: Dictionary, record: dict, data: dict) -> dict[str, str]:
    """Return a case as a flat row of text (the inverse of :meth:`FlatReader.read`)."""
    row: dict[str, str] = {k: str(record.get(k, "")) for k in RECORD_COLUMNS if k in record}
    for name, value in data.items():
        element = dictionary.elements.get(name)
        if element is None:
            continue
        if element.is_group:
            for number, item in enumerate(value or [], start=1):
                for item_name, item_value in item.items():
                    row[item_column(name, number, item_name)] = _cell(item_value)
        else:
            row[name] = _cell(value)
    return row


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def iter_rows(reader: FlatReader, rows: Iterable[dict]):
    for number, row in enumerate(rows, start=1):
        yield number, *reader.read(row)
