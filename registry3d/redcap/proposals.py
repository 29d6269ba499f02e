"""A REDCap data dictionary, edited in REDCap or a spreadsheet, as a proposed dictionary version.

Analysts often change a form in REDCap first. :func:`propose` reads such a
file (REDCap's 18 columns), compares it with the dictionary in force and
writes the changes a REDCap data dictionary can express into a new
dictionary file with the next minor version number:

- field labels and field notes (the elements' labels and help texts);
- choices added or relabelled (in the element's value set; a value set
  shared by several elements changes for all of them);
- the required flag, and the range of whole numbers and numbers;
- new fields on an existing form (section or repeating group), with their
  type, choices, validation and range; they come in as ``proposed``.

Whatever it cannot carry is refused, one clear line per row, and nothing
is stored: unknown field types, files and calculations, dates (the registry
keeps no full dates), bad choice strings, unknown forms, a field moved to
another form or given another type, removed fields or choices, and changed
branching logic (the registry does not read REDCap logic back: say
``required`` in the dictionary file). Section headers, alignment, question
numbers, matrix groups and field annotations are not carried.
"""

import copy
import datetime
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from registry3d.dictionary import generators
from registry3d.dictionary.errors import DictionaryError
from registry3d.dictionary.loader import CODE_RE, NAME_RE, _plain, load_dictionary, read_yaml
from registry3d.dictionary.spec import Dictionary, Element
from registry3d.dictionary.versions import check_published, diff, read_published
from registry3d.redcap import datadict
from registry3d.redcap.datadict import (
    BRANCHING,
    CHOICES,
    FORM,
    LABEL,
    NAME,
    NOTE,
    REQUIRED,
    TYPE,
    VALIDATION,
    VMAX,
    VMIN,
    RowProblem,
)
from registry3d.redcap.errors import ProposalRefused
from registry3d.redcap.project import RECORD_ID

NOTE_PREFIXES = {
    "year_month": "YYYY-MM. ",
    "duration": "Whole minutes, or the word unknown. ",
    "integer_list": "Numbers separated by ;. ",
}
CODE_RULE = "must start with a letter or digit and hold only letters, digits, _ - . (64 at most)"
UNIT_RE = re.compile(r"@registry3d-unit=(\S+)")
UNSUPPORTED_TYPES = {
    "calc": "calculations",
    "file": "files",
    "sql": "database queries",
    "slider": "sliders",
    "descriptive": "display-only text",
    "advcheckbox": "single checkboxes",
}


@dataclass
class Proposal:
    """A proposed dictionary file made from a REDCap data dictionary."""

    base_version: str
    version: str
    yaml_text: str
    changes: list[str]  # what the file changes, in words
    differences: list[str]  # the dictionary's own diff of the two versions
    notes: list[str] = field(default_factory=list)  # things the analyst should know


def _kind(row: dict) -> tuple[str, str]:
    """The registry type a REDCap row describes, and its validation, for comparing."""
    kind = datadict.LEGACY_TYPES.get(row[TYPE], row[TYPE])
    validation = row[VALIDATION]
    if kind in ("radio", "dropdown"):
        return "choice", ""
    if kind == "checkbox":
        return "multi_choice", ""
    if kind in ("yesno", "truefalse"):
        return "boolean", ""
    if kind == "notes":
        return "text", ""
    return kind, validation


def _number(text: str, whole: bool):
    value = float(text)
    if whole:
        if not value.is_integer():
            raise ValueError(text)
        return int(value)
    return int(value) if value.is_integer() and "." not in text else value


def next_version(version: str) -> str:
    """The next minor version not already published: 1.0.0 → 1.1.0."""
    major, minor, _patch = (int(p) for p in version.split("."))
    published = read_published()
    minor += 1
    while f"{major}.{minor}.0" in published:
        minor += 1
    return f"{major}.{minor}.0"


class _Builder:
    def __init__(self, dictionary: Dictionary):
        self.dictionary = dictionary
        self.raw = _plain(read_yaml(Path(dictionary.file)))
        self.problems: list[RowProblem] = []
        self.changes: list[str] = []
        self.notes: list[str] = []
        self.ours = {row[NAME]: row for row in generators.redcap_rows(dictionary)}
        # Where each element is written: the list that holds it in the raw file.
        self.containers: dict[str, list] = {}
        self.raw_elements: dict[str, dict] = {}
        self.forms: dict[str, list] = {}
        for section in self.raw["sections"]:
            self.forms[section["id"]] = section["elements"]
            for element in section["elements"]:
                self.containers[element["name"]] = section["elements"]
                self.raw_elements[element["name"]] = element
                if element.get("type") == "group":
                    self.forms[element["name"]] = element["elements"]
                    for item in element["elements"]:
                        self.containers[item["name"]] = element["elements"]
                        self.raw_elements[item["name"]] = item
        self.elements: dict[str, Element] = {
            e.name: e for e in dictionary.all_elements.values() if not e.is_group
        }
        self.groups = {g.name for g in dictionary.groups()}
        # value set -> {code: (label, row, element)} as the file gives them
        self.value_set_rows: dict[str, tuple[dict, int, str]] = {}

    def problem(self, row: int, name: str, message: str) -> None:
        self.problems.append(RowProblem(row, name, message))

    # -- the rows

    def run(self, rows: list[dict]) -> None:
        if not rows or rows[0][NAME] != RECORD_ID:
            first = rows[0] if rows else None
            self.problem(
                int(first["_row"]) if first else 2,
                first[NAME] if first else "",
                f"the first field must be {RECORD_ID}, the record ID",
            )
        seen = set()
        previous: dict[str, str] = {}  # form -> the last element name seen on it
        for row in rows:
            number, name, form = int(row["_row"]), row[NAME], row[FORM]
            if name == RECORD_ID:
                seen.add(name)
                continue
            seen.add(name)
            if form not in self.forms:
                known = ", ".join(dict.fromkeys(r[FORM] for r in self.ours.values()))
                self.problem(
                    number,
                    name,
                    f"unknown form '{form}'; the forms are {known} (a new section or group is "
                    "added in the dictionary file)",
                )
                continue
            if name in self.groups:
                self.problem(number, name, f"'{name}' is a repeating group, not a field")
            elif name in self.elements:
                self.existing(number, row, self.elements[name])
            else:
                self.new(number, row, previous.get(form))
            previous[form] = name
        for name, element in self.elements.items():
            if name not in seen:
                where = element.group or element.section
                self.problem(
                    0,
                    name,
                    f"the field (form {where}) is missing from the file; fields cannot be "
                    "removed through a REDCap data dictionary",
                )

    def existing(self, number: int, row: dict, element: Element) -> None:
        name = element.name
        ours = self.ours[name]
        raw = self.raw_elements[name]
        if row[FORM] != ours[FORM]:
            self.problem(
                number,
                name,
                f"the field moved from form {ours[FORM]} to {row[FORM]}; fields cannot move "
                "(add a new field instead)",
            )
            return
        if _kind(row) != _kind(ours):
            self.problem(
                number,
                name,
                f"the field type changed from {ours[TYPE]}"
                f"{' (' + ours[VALIDATION] + ')' if ours[VALIDATION] else ''} to {row[TYPE]}"
                f"{' (' + row[VALIDATION] + ')' if row[VALIDATION] else ''}; a field's type "
                "cannot change (add a new field instead)",
            )
            return
        if row[BRANCHING] != ours[BRANCHING]:
            self.problem(
                number,
                name,
                "the branching logic changed; the registry does not read REDCap logic back, "
                "so change 'required' in the dictionary file",
            )
        label = row[LABEL]
        if not label:
            self.problem(number, name, "the field label is empty")
        elif label != ours[LABEL]:
            raw["label"] = label
            self.changes.append(f"{element.path_name}: label '{ours[LABEL]}' → '{label}'")
        if row[NOTE] != ours[NOTE]:
            prefix = NOTE_PREFIXES.get(element.type, "")
            help_text = row[NOTE][len(prefix) :] if row[NOTE].startswith(prefix) else row[NOTE]
            help_text = help_text.strip()
            if not help_text:
                self.problem(number, name, "the field note is empty; it is the element's help text")
            elif help_text != element.help:
                raw["help"] = help_text
                self.changes.append(f"{element.path_name}: help text changed")
        if element.type in ("choice", "multi_choice"):
            self.choices(number, row, element)
        if element.type in ("integer", "decimal"):
            for column, key in ((VMIN, "min"), (VMAX, "max")):
                if row[column] == ours[column]:
                    continue
                if not row[column]:
                    raw.pop(key, None)
                    self.changes.append(f"{element.path_name}: no {key} any more")
                    continue
                try:
                    value = _number(row[column], element.type == "integer")
                except ValueError:
                    self.problem(
                        number, name, f"the {key} '{row[column]}' is not a {element.type} number"
                    )
                    continue
                raw[key] = value
                self.changes.append(f"{element.path_name}: {key} {ours[column] or '—'} → {value}")
        ours_required, row_required = ours[REQUIRED] == "y", row[REQUIRED] == "y"
        if ours_required != row_required:
            if element.required_text and not ours[BRANCHING]:
                self.problem(
                    number,
                    name,
                    f"the field is required when {element.required_text}; change that in the "
                    "dictionary file",
                )
            else:
                raw["required"] = row_required
                now = "now required" if row_required else "no longer required"
                self.changes.append(f"{element.path_name}: {now}")

    def choices(self, number: int, row: dict, element: Element) -> None:
        name = element.name
        value_set = element.value_set
        try:
            pairs = datadict.parse_choices(row[CHOICES])
        except ValueError as exc:
            self.problem(number, name, f"bad choices: {exc}")
            return
        given = dict(pairs)
        if value_set.reference:
            if [c for c, _ in pairs] != value_set.active_codes() or any(
                given[c.code] != c.label for c in value_set.codes if c.active
            ):
                self.problem(
                    number,
                    name,
                    f"the choices come from the reference table {value_set.reference}; "
                    "change them there",
                )
            return
        earlier = self.value_set_rows.get(value_set.name)
        if earlier is not None:
            if earlier[0] != given:
                self.problem(
                    number,
                    name,
                    f"the choices differ from those of {earlier[2]} (row {earlier[1]}), which "
                    f"shares the value set '{value_set.name}'; give both the same choices",
                )
            return
        self.value_set_rows[value_set.name] = (given, number, name)
        active = {c.code: c for c in value_set.codes if c.active}
        missing = [code for code in active if code not in given]
        if missing:
            listed = ", ".join(f"'{code}' ({active[code].label})" for code in missing)
            self.problem(
                number,
                name,
                f"choice {listed} is missing; choices cannot be removed through REDCap "
                "(retire them in the dictionary file)",
            )
            return
        raw_codes = self.raw["value_sets"][value_set.name]["codes"]
        sharing = [
            e.path_name
            for e in self.dictionary.all_elements.values()
            if e.value_set is value_set and e.name != name
        ]
        shared = f" (also used by {', '.join(sharing)})" if sharing else ""
        for code, label in pairs:
            known = value_set.get(code)
            if known is not None and not known.active:
                self.problem(
                    number,
                    name,
                    f"choice '{code}' was retired in {known.retired_in}; a retired code "
                    "cannot come back",
                )
            elif known is None:
                if not CODE_RE.match(code):
                    self.problem(number, name, f"choice code '{code}' {CODE_RULE}")
                    continue
                raw_codes.append({"code": code, "label": label})
                self.changes.append(
                    f"value set {value_set.name}{shared}: new choice '{code}' ({label})"
                )
            elif known.label != label:
                entry = next(c for c in raw_codes if str(c["code"]) == code)
                entry["label"] = label
                self.changes.append(
                    f"value set {value_set.name}{shared}: '{code}' relabelled '{known.label}' → "
                    f"'{label}'"
                )

    def new(self, number: int, row: dict, after: str | None) -> None:
        name = row[NAME]
        if not NAME_RE.match(name):
            self.problem(number, name, "element names are snake_case: a-z, 0-9 and _, 60 at most")
            return
        kind = datadict.LEGACY_TYPES.get(row[TYPE], row[TYPE])
        validation = row[VALIDATION]
        element: dict = {"name": name}
        if kind in UNSUPPORTED_TYPES:
            self.problem(
                number,
                name,
                f"field type '{kind}' is not supported: the registry keeps typed case data, "
                f"not {UNSUPPORTED_TYPES[kind]}",
            )
            return
        if kind == "text":
            if validation in ("integer", "int"):
                element["type"] = "integer"
            elif validation in ("number", "float") or validation.startswith("number_"):
                element["type"] = "decimal"
            elif validation.startswith(("date", "time")):
                self.problem(
                    number,
                    name,
                    f"validation '{validation}': the registry keeps no full dates or times "
                    "(they identify patients); use a year-month element in the dictionary file",
                )
                return
            elif validation:
                self.problem(
                    number,
                    name,
                    f"validation '{validation}' is not supported; use integer, number, or none",
                )
                return
            else:
                element.update(type="text", free_text=True)
        elif kind == "notes":
            element.update(type="text", free_text=True, max_length=2000)
        elif kind in ("radio", "dropdown", "checkbox"):
            element["type"] = "choice" if kind != "checkbox" else "multi_choice"
            value_set = self.new_value_set(number, name, row[CHOICES])
            if value_set is None:
                return
            element["value_set"] = value_set
        elif kind in ("yesno", "truefalse"):
            element["type"] = "boolean"
        else:
            self.problem(number, name, f"unknown field type '{row[TYPE]}'")
            return
        if not row[LABEL]:
            self.problem(number, name, "a new field needs a label")
            return
        if not row[NOTE]:
            self.problem(number, name, "a new field needs a field note: it becomes its help text")
            return
        if row[BRANCHING]:
            self.problem(
                number,
                name,
                "branching logic is not read back; leave it empty and say when the element is "
                "required in the dictionary file",
            )
            return
        element["label"] = row[LABEL]
        element["help"] = row[NOTE]
        for column, key in ((VMIN, "min"), (VMAX, "max")):
            if not row[column]:
                continue
            if element["type"] not in ("integer", "decimal"):
                self.problem(number, name, f"a {key} needs the integer or number validation")
                return
            try:
                element[key] = _number(row[column], element["type"] == "integer")
            except ValueError:
                self.problem(number, name, f"the {key} '{row[column]}' is not a number")
                return
        unit = UNIT_RE.search(row[datadict.ANNOTATION])
        if unit:
            element["unit"] = unit.group(1)
        if row[REQUIRED] == "y":
            element["required"] = True
        element["provenance"] = "proposed"
        element["note"] = "Proposed through a REDCap data dictionary."
        container = self.forms[row[FORM]]
        position = len(container)
        if after is not None:
            for index, each in enumerate(container):
                if each["name"] == after:
                    position = index + 1
        container.insert(position, element)
        self.raw_elements[name] = element
        self.containers[name] = container
        where = row[FORM]
        what = element["type"] + (
            f", value set {element['value_set']}" if "value_set" in element else ""
        )
        self.changes.append(f"new element {name} on {where} ({what})")
        if element.get("required"):
            self.notes.append(
                f"{name} is required: cases submitted before this version do not have it; add "
                "an added_required change with a default to the history entry if they should "
                "be carried forward"
            )

    def new_value_set(self, number: int, name: str, text: str) -> str | None:
        if not text:
            self.problem(number, name, "a choice field needs its choices ('code, label | ...')")
            return None
        try:
            pairs = datadict.parse_choices(text)
        except ValueError as exc:
            self.problem(number, name, f"bad choices: {exc}")
            return None
        bad = [code for code, _ in pairs if not CODE_RE.match(code)]
        if bad:
            self.problem(
                number,
                name,
                f"choice code {', '.join(repr(c) for c in bad)} {CODE_RULE}",
            )
            return None
        for existing in self.dictionary.value_sets.values():
            active = [(c.code, c.label) for c in existing.codes if c.active]
            if active == pairs:
                return existing.name  # the same choices: use the same value set
        set_name = name
        while set_name in self.raw["value_sets"]:
            set_name += "_values"
        self.raw["value_sets"][set_name] = {
            "provenance": "proposed",
            "note": "Proposed through a REDCap data dictionary.",
            "codes": [{"code": code, "label": label} for code, label in pairs],
        }
        self.changes.append(f"new value set {set_name} ({len(pairs)} choices)")
        return set_name


def _dump(raw: dict, base_version: str, today: str) -> str:
    header = (
        f"# registry3d data dictionary, proposed on {today} from a REDCap data dictionary,\n"
        f"# based on version {base_version}. Format: docs/dictionary-format.md.\n"
        "# Compare it with: registry3d dictionary diff OLD NEW\n"
    )
    body = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def references(raw: dict) -> list[str]:
    """The reference files a dictionary file's value sets name (they live beside it)."""
    return [
        str(entry["reference"])
        for entry in (raw.get("value_sets") or {}).values()
        if isinstance(entry, dict) and "reference" in entry
    ]


def write_files(yaml_text: str, base: Dictionary, out: Path) -> list[Path]:
    """Write a dictionary file to ``out`` with copies of its reference files beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml_text, encoding="utf-8")
    written = [out]
    source = Path(base.file).parent
    for name in references(yaml.safe_load(yaml_text)):
        target = out.parent / name
        if (source / name).resolve() != target.resolve():
            shutil.copyfile(source / name, target)
        written.append(target)
    return written


def load_text(yaml_text: str, base: Dictionary) -> Dictionary:
    """Load a proposed file as the registry would, beside copies of its reference files."""
    with tempfile.TemporaryDirectory(prefix="registry3d-proposal-") as folder:
        path = Path(folder) / "case.yaml"
        write_files(yaml_text, base, path)
        loaded = load_dictionary(path)
        check_published(loaded)
        return loaded


def propose(content: bytes | str, dictionary: Dictionary, *, today: str | None = None) -> Proposal:
    """Return the dictionary version a REDCap data-dictionary file proposes.

    Raises ProposalRefused with one problem per bad row (REDCap's own rules
    first, then what the registry cannot carry); nothing is written.
    """
    rows, problems = datadict.read_csv(content)
    if problems:
        raise ProposalRefused(problems)
    problems = datadict.errors(datadict.check_rows(rows))
    if problems:
        raise ProposalRefused(problems)
    builder = _Builder(dictionary)
    builder.run(rows)
    if builder.problems:
        raise ProposalRefused(sorted(builder.problems, key=lambda p: (p.row or 10**9, p.field)))
    if not builder.changes:
        raise ProposalRefused(
            [RowProblem(0, "", f"the file changes nothing in dictionary {dictionary.version}")]
        )
    today = today or datetime.date.today().isoformat()
    version = next_version(dictionary.version)
    raw = builder.raw
    raw["version"] = version
    raw["released"] = today
    raw.setdefault("history", []).append(
        {
            "version": version,
            "released": today,
            "summary": "Proposed from a REDCap data dictionary: " + "; ".join(builder.changes),
            "changes": [],
        }
    )
    text = _dump(copy.deepcopy(raw), dictionary.version, today)
    try:
        proposed = load_text(text, dictionary)
    except DictionaryError as exc:
        refused = RowProblem(0, "", f"the proposed file is refused: {exc.message}")
        raise ProposalRefused([refused]) from None
    return Proposal(
        base_version=dictionary.version,
        version=version,
        yaml_text=text,
        changes=builder.changes,
        differences=[str(d) for d in diff(dictionary, proposed)],
        notes=builder.notes,
    )
