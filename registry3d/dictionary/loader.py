"""Load a dictionary file, check every part of it, and compile it.

Anything wrong is refused with the file, the line and what to fix; nothing
half-loaded is ever returned.
"""

import re
from pathlib import Path

import yaml

from registry3d.dictionary.errors import DictionaryError, ExpressionError
from registry3d.dictionary.expressions import compile_expression, describe
from registry3d.dictionary.spec import (
    PROVENANCES,
    TYPES,
    Change,
    Code,
    CptCode,
    Derived,
    Dictionary,
    Element,
    Rule,
    Section,
    UnitCap,
    ValueSet,
    Version,
)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
YEAR_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CONTEXT_NAMES = frozenset({"site_printer_labels"})
CHANGE_KINDS = {
    "renamed",
    "value_renamed",
    "value_split",
    "added_required",
    "removed",
    "text_to_code",
}
TEXT_TO_CODE_KEYS = {"kind", "element", "other", "other_element", "version_element", "match"}

COMMON_KEYS = {
    "name",
    "label",
    "help",
    "type",
    "required",
    "provenance",
    "source",
    "note",
    "unit",
}
TYPE_KEYS = {
    "text": {"max_length", "pattern", "free_text"},
    "integer": {"min", "max", "warn_min", "warn_max", "top_code"},
    "decimal": {"min", "max", "warn_min", "warn_max"},
    "boolean": set(),
    "choice": {"value_set"},
    "multi_choice": {"value_set", "min_items", "max_items"},
    "year_month": {"min", "max"},
    "duration": {"max"},
    "code": {"system", "pattern"},
    "integer_list": {"min", "max", "min_items", "max_items"},
    "group": {"min_items", "max_items", "elements"},
}


# --- YAML with line numbers ---------------------------------------------------------


class LineDict(dict):
    line: int | None = None


class LineList(list):
    line: int | None = None


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that remembers lines and refuses duplicate keys."""


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise DictionaryError(
                f"the key '{key}' appears twice", line=key_node.start_mark.line + 1
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_sequence(loader, node):
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
# Dates stay strings: the dictionary compares them as text.
_LineLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path) -> LineDict:
    """Parse ``path``; syntax errors and duplicate keys name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DictionaryError(f"cannot read the file: {exc.strerror}", str(path)) from None
    except UnicodeDecodeError:
        raise DictionaryError("the file is not UTF-8 text", str(path)) from None
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except DictionaryError as exc:
        raise DictionaryError(exc.message, str(path), exc.line) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise DictionaryError(f"not valid YAML: {exc.problem}", str(path), line) from None
    if not isinstance(data, dict):
        raise DictionaryError("the file must hold a mapping at the top level", str(path), 1)
    return data


# --- The loader ------------------------------------------------------------------------


class _Loader:
    def __init__(self, path: Path):
        self.path = path
        self.file = str(path)

    def fail(self, message: str, node=None, line: int | None = None):
        raise DictionaryError(message, self.file, line or getattr(node, "line", None))

    def need(self, mapping: dict, key: str, kind, what: str):
        if key not in mapping:
            self.fail(f"{what} needs '{key}'", mapping)
        value = mapping[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            self.fail(f"{what}: '{key}' must be {_kind_name(kind)}", mapping)
        return value

    def only(self, mapping: dict, allowed: set, what: str):
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            self.fail(
                f"{what}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}",
                mapping,
            )

    # -- top level

    def load(self) -> Dictionary:
        raw = read_yaml(self.path)
        self.only(
            raw,
            {
                "dictionary",
                "version",
                "title",
                "released",
                "description",
                "sources",
                "value_sets",
                "sections",
                "rules",
                "derived",
                "cpt",
                "history",
            },
            "the dictionary",
        )
        version = str(self.need(raw, "version", str, "the dictionary"))
        if not VERSION_RE.match(version):
            self.fail(f"version '{version}' must look like 1.0.0", raw)
        self.sources = self.load_sources(raw.get("sources") or {})
        self.value_sets = self.load_value_sets(self.need(raw, "value_sets", dict, "the dictionary"))
        sections = self.load_sections(self.need(raw, "sections", list, "the dictionary"))
        dictionary = Dictionary(
            name=self.need(raw, "dictionary", str, "the dictionary"),
            version=version,
            title=self.need(raw, "title", str, "the dictionary"),
            released=str(raw.get("released", "")),
            description=str(raw.get("description", "")).strip(),
            sources=self.sources,
            value_sets=self.value_sets,
            sections=sections,
            rules=[],
            derived=[],
            cpt_codes=[],
            unit_caps=[],
            history=[],
            file=self.file,
            references=self.references,
        )
        for section in sections:
            for element in section.elements:
                dictionary.elements[element.name] = element
                dictionary.all_elements[element.name] = element
                for item in element.elements:
                    dictionary.all_elements[item.path_name] = item
        self.dictionary = dictionary
        self.compile_required()
        dictionary.rules = self.load_rules(raw.get("rules") or [])
        dictionary.derived = self.load_derived(raw.get("derived") or [])
        dictionary.cpt_codes, dictionary.unit_caps = self.load_cpt(raw.get("cpt") or {})
        dictionary.history = self.load_history(raw.get("history") or [], version)
        return dictionary

    def load_sources(self, raw) -> dict:
        if not isinstance(raw, dict):
            self.fail("'sources' must be a mapping of name to {url, title}", raw)
        sources = {}
        for key, entry in raw.items():
            if isinstance(entry, str):
                entry = {"url": entry, "title": key}
            if not isinstance(entry, dict) or not str(entry.get("url", "")).startswith("http"):
                self.fail(f"source '{key}' needs a 'url' starting with http", raw)
            sources[key] = {"url": entry["url"], "title": str(entry.get("title", key))}
        return sources

    def check_source(self, source, node, what):
        if not source:
            return ""
        source = str(source)
        if source.startswith(("http://", "https://")):
            return source
        parts = [p.strip() for p in source.split(";")]
        for part in parts:
            if part not in self.sources and not part.startswith(("http://", "https://")):
                self.fail(f"{what}: source '{part}' is not listed under 'sources'", node)
        return source

    def check_provenance(self, mapping, what) -> tuple[str, str]:
        provenance = mapping.get("provenance")
        if provenance not in PROVENANCES:
            self.fail(f"{what}: provenance must be one of {', '.join(PROVENANCES)}", mapping)
        source = self.check_source(mapping.get("source"), mapping, what)
        if provenance != "proposed" and not source:
            self.fail(f"{what}: provenance '{provenance}' needs a source", mapping)
        return provenance, source

    # -- value sets

    def load_value_sets(self, raw: dict) -> dict[str, ValueSet]:
        self.references = {}
        value_sets = {}
        for name, entry in raw.items():
            what = f"value set '{name}'"
            if not isinstance(entry, dict):
                self.fail(f"{what} must be a mapping", raw)
            if not NAME_RE.match(str(name)):
                self.fail(f"{what}: names are snake_case", entry)
            if "reference" in entry:
                value_sets[name] = self.load_reference(name, entry)
                continue
            self.only(entry, {"provenance", "source", "note", "codes"}, what)
            provenance, source = self.check_provenance(entry, what)
            codes = []
            seen = set()
            for code_entry in self.need(entry, "codes", list, what):
                if not isinstance(code_entry, dict):
                    self.fail(f"{what}: each code is a mapping with 'code' and 'label'", entry)
                self.only(
                    code_entry, {"code", "label", "retired_in", "replaced_by", "description"}, what
                )
                code = str(self.need(code_entry, "code", (str, int), what))
                if not CODE_RE.match(code):
                    self.fail(
                        f"{what}: code '{code}' may hold only letters, digits, _ - .", code_entry
                    )
                if code in seen:
                    self.fail(f"{what}: code '{code}' appears twice", code_entry)
                seen.add(code)
                label = self.need(code_entry, "label", str, f"{what}, code '{code}'")
                codes.append(
                    Code(
                        code,
                        label,
                        retired_in=_opt_str(code_entry.get("retired_in")),
                        replaced_by=_opt_str(code_entry.get("replaced_by")),
                        description=str(code_entry.get("description", "")),
                    )
                )
            for c in codes:
                if c.replaced_by and c.replaced_by not in seen:
                    self.fail(
                        f"{what}: '{c.code}' is replaced by unknown code '{c.replaced_by}'", entry
                    )
            if not any(c.active for c in codes):
                self.fail(f"{what} has no active code", entry)
            value_sets[name] = ValueSet(name, codes, provenance, source, str(entry.get("note", "")))
        return value_sets

    def load_reference(self, name, entry) -> ValueSet:
        file_name = str(entry["reference"])
        path = self.path.parent / file_name
        if "/" in file_name or not path.exists():
            self.fail(
                f"value set '{name}': reference file '{file_name}' not found beside the dictionary",
                entry,
            )
        table = read_yaml(path)
        scenarios = table.get("scenarios")
        if not isinstance(scenarios, list) or not scenarios:
            raise DictionaryError("a reference table needs a list of 'scenarios'", str(path))
        codes = []
        for scenario in scenarios:
            if (
                not isinstance(scenario, dict)
                or "id" not in scenario
                or "condition" not in scenario
            ):
                raise DictionaryError(
                    "each scenario needs 'id' and 'condition'",
                    str(path),
                    getattr(scenario, "line", None),
                )
            label = scenario["condition"] + (
                f" – {scenario['variant']}" if scenario.get("variant") else ""
            )
            codes.append(
                Code(str(scenario["id"]), label, retired_in=_opt_str(scenario.get("retired_in")))
            )
        if len({c.code for c in codes}) != len(codes):
            raise DictionaryError("scenario ids must be unique", str(path))
        self.references[file_name] = table
        return ValueSet(
            name,
            codes,
            "found",
            str(table.get("source", "")),
            str(table.get("description", "")).strip(),
            reference=file_name,
        )

    # -- sections and elements

    def load_sections(self, raw: list) -> list[Section]:
        sections = []
        self.names = {}
        seen_sections = set()
        for entry in raw:
            if not isinstance(entry, dict):
                self.fail("each section is a mapping", raw)
            self.only(entry, {"id", "label", "help", "questionnaire", "elements"}, "a section")
            section_id = self.need(entry, "id", str, "a section")
            if not NAME_RE.match(section_id) or section_id in seen_sections:
                self.fail(f"section id '{section_id}' must be snake_case and unique", entry)
            seen_sections.add(section_id)
            what = f"section '{section_id}'"
            elements = [
                self.load_element(e, section_id, group="")
                for e in self.need(entry, "elements", list, what)
            ]
            if not elements:
                self.fail(f"{what} has no elements", entry)
            sections.append(
                Section(
                    section_id,
                    self.need(entry, "label", str, what),
                    str(entry.get("help", "")).strip(),
                    elements,
                    questionnaire=bool(entry.get("questionnaire", False)),
                )
            )
        if not sections:
            self.fail("the dictionary needs at least one section", raw)
        return sections

    def load_element(self, raw, section: str, group: str) -> Element:
        if not isinstance(raw, dict):
            self.fail("each element is a mapping", None)
        name = raw.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            self.fail(f"element name {name!r} must be snake_case (a-z, 0-9, _)", raw)
        what = f"element '{name}'"
        if name in self.names:
            self.fail(f"{what} is defined twice (first at line {self.names[name]})", raw)
        self.names[name] = raw.line
        kind = raw.get("type")
        if kind not in TYPES:
            self.fail(f"{what}: unknown type '{kind}'; use one of {', '.join(TYPES)}", raw)
        self.only(raw, COMMON_KEYS | TYPE_KEYS[kind], what)
        provenance, source = self.check_provenance(raw, what)
        for key in ("label", "help"):
            if not str(raw.get(key, "")).strip():
                self.fail(f"{what} needs a '{key}'", raw)
        required = raw.get("required", False)
        if not isinstance(required, bool | str):
            self.fail(f"{what}: 'required' is true, false or an expression", raw)
        element = Element(
            name=name,
            label=str(raw["label"]).strip(),
            help=" ".join(str(raw["help"]).split()),
            type=kind,
            section=section,
            provenance=provenance,
            source=source,
            required=required is True,
            unit=str(raw.get("unit", "")),
            note=str(raw.get("note", "")),
            group=group,
            line=raw.line,
            raw=_plain(raw),
        )
        element.required_text = required if isinstance(required, str) else None
        element.source_urls = [
            self.sources[part]["url"] if part in self.sources else part
            for part in (p.strip() for p in source.split(";"))
            if part
        ]
        for key in ("min", "max", "warn_min", "warn_max", "top_code"):
            if key in raw:
                setattr(element, key, self.number_or_month(raw, key, kind, what))
        if element.min is not None and element.max is not None and element.min > element.max:
            self.fail(f"{what}: min is above max", raw)
        if kind == "text":
            element.max_length = int(raw.get("max_length", 200))
            if not 1 <= element.max_length <= 10000:
                self.fail(f"{what}: max_length must be 1 to 10000", raw)
            element.free_text = bool(raw.get("free_text", False))
        if kind in ("text", "code"):
            element.pattern = str(raw.get("pattern", ""))
            if element.pattern:
                try:
                    re.compile(element.pattern)
                except re.error as exc:
                    self.fail(f"{what}: pattern is not a valid regular expression: {exc}", raw)
            element.system = str(raw.get("system", ""))
        if kind in ("choice", "multi_choice"):
            set_name = raw.get("value_set")
            if set_name not in self.value_sets:
                self.fail(f"{what}: value set '{set_name}' is not defined", raw)
            element.value_set = self.value_sets[set_name]
        if kind in ("multi_choice", "integer_list", "group"):
            for key in ("min_items", "max_items"):
                if key in raw:
                    value = raw[key]
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        self.fail(f"{what}: {key} must be a whole number ≥ 0", raw)
                    setattr(element, key, value)
            if (element.min_items or 0) > (element.max_items or 10**6):
                self.fail(f"{what}: min_items is above max_items", raw)
        if kind == "group":
            if group:
                self.fail(f"{what}: groups cannot hold groups", raw)
            items = raw.get("elements")
            if not isinstance(items, list) or not items:
                self.fail(f"{what}: a group needs a list of 'elements'", raw)
            element.elements = [self.load_element(e, section, group=name) for e in items]
        return element

    def number_or_month(self, raw, key, kind, what):
        value = raw[key]
        if kind == "year_month":
            if not isinstance(value, str) or not YEAR_MONTH_RE.match(value):
                self.fail(f"{what}: {key} must be a month like 2019-07", raw)
            return value
        if kind not in ("integer", "decimal", "duration", "integer_list"):
            self.fail(f"{what}: '{key}' does not apply to type {kind}", raw)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(f"{what}: {key} must be a number", raw)
        if kind != "decimal" and not isinstance(value, int):
            self.fail(f"{what}: {key} must be a whole number", raw)
        return value

    # -- expressions

    def group_names(self) -> dict[str, set[str]]:
        return {
            e.name: {i.name for i in e.elements}
            for e in self.dictionary.elements.values()
            if e.is_group
        }

    def compile(self, text, node, what, item_names=None):
        try:
            return compile_expression(
                text,
                case_names=set(self.dictionary.elements),
                groups=self.group_names(),
                item_names=item_names,
                context_names=CONTEXT_NAMES,
            )
        except ExpressionError as exc:
            self.fail(f"{what}: {exc}", node)

    def compile_required(self):
        depends: dict[str, set[str]] = {}
        labels = {e.name: (e.label, e.value_set) for e in self.dictionary.all_elements.values()}
        for element in self.dictionary.all_elements.values():
            text = element.required_text
            if text is None:
                continue
            item_names = None
            if element.group:
                item_names = {i.name for i in self.dictionary.elements[element.group].elements}
            element.required_when = self.compile(
                text, _Line(element.line), f"element '{element.name}', required", item_names
            )
            depends[element.name] = element.required_when.names
            element.required_words = describe(text, labels)
        # A required-when cycle would make "is it required?" unanswerable.
        for start in depends:
            stack, seen = [(start, [start])], set()
            while stack:
                current, trail = stack.pop()
                for nxt in depends.get(current, ()):
                    if nxt == start:
                        element = self.dictionary.all_elements[_path(self.dictionary, start)]
                        self.fail(
                            "circular required-when: " + " → ".join([*trail, start]),
                            line=element.line,
                        )
                    if nxt not in seen and nxt in depends:
                        seen.add(nxt)
                        stack.append((nxt, [*trail, nxt]))

    # -- rules, derived values, CPT, history

    def load_rules(self, raw) -> list[Rule]:
        rules = []
        ids = set()
        groups = self.group_names()
        for entry in raw:
            if not isinstance(entry, dict):
                self.fail("each rule is a mapping", raw)
            self.only(
                entry,
                {
                    "id",
                    "severity",
                    "when",
                    "check",
                    "scope",
                    "path",
                    "message",
                    "drafts",
                    "provenance",
                    "source",
                },
                "a rule",
            )
            rule_id = str(self.need(entry, "id", str, "a rule"))
            what = f"rule '{rule_id}'"
            if rule_id in ids:
                self.fail(f"{what} is defined twice", entry)
            ids.add(rule_id)
            severity = entry.get("severity", "error")
            if severity not in ("error", "warning"):
                self.fail(f"{what}: severity is error or warning", entry)
            scope = str(entry.get("scope", ""))
            if scope and scope not in groups:
                self.fail(f"{what}: scope '{scope}' is not a group", entry)
            item_names = groups.get(scope) if scope else None
            path = str(entry.get("path", ""))
            valid_paths = (item_names or set()) | set(self.dictionary.elements)
            if path and path not in valid_paths:
                self.fail(f"{what}: path '{path}' is not an element", entry)
            check = self.compile(self.need(entry, "check", str, what), entry, what, item_names)
            when = (
                self.compile(entry["when"], entry, what, item_names) if entry.get("when") else None
            )
            provenance = entry.get("provenance", "proposed")
            if provenance not in PROVENANCES:
                self.fail(f"{what}: provenance must be one of {', '.join(PROVENANCES)}", entry)
            names = set(check.names) | (when.names if when else set())
            context = set(check.context_names) | (when.context_names if when else set())
            rules.append(
                Rule(
                    id=rule_id,
                    message=self.need(entry, "message", str, what),
                    check=check,
                    severity=severity,
                    when=when,
                    scope=scope,
                    path=path,
                    drafts=bool(entry.get("drafts", False)),
                    provenance=provenance,
                    source=self.check_source(entry.get("source"), entry, what),
                    names=names,
                    context_names=context,
                )
            )
        return rules

    def load_derived(self, raw) -> list[Derived]:
        from registry3d.dictionary.derive import FUNCTIONS

        derived = []
        for entry in raw:
            if not isinstance(entry, dict):
                self.fail("each derived value is a mapping", raw)
            self.only(
                entry, {"name", "label", "function", "args", "unit", "help"}, "a derived value"
            )
            name = self.need(entry, "name", str, "a derived value")
            what = f"derived value '{name}'"
            if not NAME_RE.match(name) or name in self.names:
                self.fail(f"{what}: name must be snake_case and not an element's name", entry)
            function = self.need(entry, "function", str, what)
            if function not in FUNCTIONS:
                self.fail(
                    f"{what}: unknown function '{function}'; use one of "
                    f"{', '.join(sorted(FUNCTIONS))}",
                    entry,
                )
            args = entry.get("args") or {}
            group = args.get("group")
            if group is not None and group not in self.group_names():
                self.fail(f"{what}: '{group}' is not a group", entry)
            known = self.group_names()[group] if group else set(self.dictionary.elements)
            for key in ("element", "elements"):
                value = args.get(key)
                for element_name in value if isinstance(value, list) else [value]:
                    if value is not None and element_name not in known:
                        self.fail(f"{what}: '{element_name}' is not an element", entry)
            derived.append(
                Derived(
                    name,
                    self.need(entry, "label", str, what),
                    function,
                    _plain(args),
                    str(entry.get("unit", "")),
                    str(entry.get("help", "")),
                )
            )
        return derived

    def load_cpt(self, raw) -> tuple[list[CptCode], list[UnitCap]]:
        if not raw:
            return [], []
        self.only(raw, {"codes", "unit_caps"}, "the cpt block")
        known = (
            set(self.value_sets["cpt_code"].active_codes())
            if "cpt_code" in self.value_sets
            else set()
        )
        codes = []
        for entry in raw.get("codes", []):
            code = str(entry.get("code"))
            if code not in known:
                self.fail(f"cpt: code '{code}' is not in the value set cpt_code", entry)
            if entry.get("kind") not in ("model", "guide"):
                self.fail(f"cpt: code '{code}' needs kind model or guide", entry)
            codes.append(
                CptCode(
                    code,
                    entry["kind"],
                    bool(entry.get("first", False)),
                    _opt_str(entry.get("add_on_to")),
                )
            )
        by_code = {c.code: c for c in codes}
        for c in codes:
            if c.add_on_to and c.add_on_to not in by_code:
                self.fail(f"cpt: {c.code} is an add-on to unknown code {c.add_on_to}", raw)
        caps = []
        for entry in raw.get("unit_caps", []):
            code = str(entry.get("code"))
            if code not in by_code:
                self.fail(f"cpt: unit cap for unknown code '{code}'", entry)
            start, end = str(entry.get("from", "")), _opt_str(entry.get("to"))
            if not YEAR_MONTH_RE.match(start) or (end and not YEAR_MONTH_RE.match(end)):
                self.fail("cpt: unit caps need 'from' (and optional 'to') as YYYY-MM", entry)
            limit = entry.get("max")
            if not isinstance(limit, int) or limit < 0:
                self.fail("cpt: a unit cap needs 'max', a whole number", entry)
            caps.append(
                UnitCap(
                    code, limit, start, end, self.check_source(entry.get("source"), entry, "cpt")
                )
            )
        return codes, caps

    def load_history(self, raw, version) -> list[Version]:
        history = []
        for entry in raw:
            if not isinstance(entry, dict) or "version" not in entry:
                self.fail("each history entry needs a 'version'", raw)
            changes = []
            for change in entry.get("changes") or []:
                kind = change.get("kind") if isinstance(change, dict) else None
                if kind not in CHANGE_KINDS:
                    self.fail(
                        f"history {entry['version']}: change kind must be one of "
                        f"{', '.join(sorted(CHANGE_KINDS))}",
                        entry,
                    )
                if kind == "text_to_code":
                    self.check_text_to_code(
                        change, f"history {entry['version']}", str(entry["version"]) == version
                    )
                changes.append(Change(kind, _plain(change)))
            history.append(
                Version(
                    str(entry["version"]),
                    str(entry.get("released", "")),
                    str(entry.get("summary", "")),
                    changes,
                )
            )
        if not history or history[-1].version != version:
            self.fail(
                f"the last 'history' entry must describe version {version}",
                getattr(raw, "line", None) and raw,
            )
        return history

    def check_text_to_code(self, change, what: str, current: bool) -> None:
        """Check a text_to_code change; its elements and codes only in its own version.

        An older version's change names the elements as they were then: a
        later version may have renamed or removed them.
        """
        what = f"{what}: text_to_code"
        self.only(change, TEXT_TO_CODE_KEYS, what)
        for key in ("element", "other", "other_element"):
            self.need(change, key, str, what)
        if "version_element" in change:
            self.need(change, "version_element", str, what)
        match = self.need(change, "match", list, what)
        if not match:
            self.fail(f"{what}: 'match' needs at least one {{code, pattern}}", change)
        for number, entry in enumerate(match, start=1):
            where = f"{what}: match {number}"
            if not isinstance(entry, dict):
                self.fail(f"{where} must be a mapping {{code, pattern}}", match)
            self.only(entry, {"code", "pattern"}, where)
            self.need(entry, "code", str, where)
            try:
                re.compile(self.need(entry, "pattern", str, where))
            except re.error as exc:
                self.fail(f"{where}: pattern is not a valid regular expression: {exc}", entry)
        if current:
            self.check_text_to_code_targets(change, what)

    def check_text_to_code_targets(self, change, what: str) -> None:
        elements = self.dictionary.all_elements
        target = elements.get(change["element"])
        if target is None or target.type != "choice":
            self.fail(f"{what}: '{change['element']}' is not a choice element", change)
        group = target.group
        codes = {c.code for c in target.value_set.codes}
        for code in [change["other"]] + [m["code"] for m in change["match"]]:
            if code not in codes:
                self.fail(
                    f"{what}: '{code}' is not a code of value set '{target.value_set.name}'",
                    change,
                )
        for key, free_text in (("other_element", True), ("version_element", False)):
            name = change.get(key)
            if name is None:
                continue
            element = elements.get(name)
            if element is None or element.type != "text" or element.group != group:
                place = f"group '{group}'" if group else "the top level"
                self.fail(f"{what}: {key} '{name}' is not a text element at {place}", change)
            if free_text and not element.free_text:
                self.fail(f"{what}: other_element '{name}' must be free_text: true", change)
            if not free_text and not element.pattern:
                self.fail(f"{what}: version_element '{name}' needs a 'pattern'", change)


class _Line:
    def __init__(self, line):
        self.line = line


def _path(dictionary: Dictionary, name: str) -> str:
    for element in dictionary.all_elements.values():
        if element.name == name:
            return element.path_name
    return name


def _opt_str(value) -> str | None:
    return None if value is None else str(value)


def _kind_name(kind) -> str:
    names = {str: "text", int: "a number", list: "a list", dict: "a mapping", bool: "true/false"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _plain(value):
    """Return ``value`` with LineDict/LineList turned into dict/list."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_dictionary(path: str | Path) -> Dictionary:
    """Load, check and compile the dictionary at ``path``."""
    return _Loader(Path(path)).load()
