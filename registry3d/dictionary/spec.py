"""The loaded data dictionary as plain objects.

The loader builds these from the YAML file; validation, forms and the
generated files all read them and nothing else.
"""

from dataclasses import dataclass, field

from registry3d.dictionary.expressions import Compiled

TYPES = (
    "text",
    "integer",
    "decimal",
    "boolean",
    "choice",
    "multi_choice",
    "year_month",
    "duration",
    "code",
    "integer_list",
    "group",
)
PROVENANCES = ("found", "partial", "proposed")


@dataclass
class Code:
    code: str
    label: str
    retired_in: str | None = None
    replaced_by: str | None = None
    description: str = ""

    @property
    def active(self) -> bool:
        return self.retired_in is None


@dataclass
class ValueSet:
    name: str
    codes: list[Code]
    provenance: str
    source: str = ""
    note: str = ""
    reference: str = ""  # file a reference table came from

    def active_codes(self) -> list[str]:
        return [c.code for c in self.codes if c.active]

    def label_of(self, code: str) -> str:
        for c in self.codes:
            if c.code == code:
                return c.label
        return code

    def get(self, code: str) -> Code | None:
        for c in self.codes:
            if c.code == code:
                return c
        return None


@dataclass
class Element:
    name: str
    label: str
    help: str
    type: str
    section: str
    provenance: str
    source: str = ""
    source_urls: list[str] = field(default_factory=list)
    required: bool = False
    required_when: Compiled | None = None
    required_text: str | None = None
    required_words: str = ""  # the condition in words, for messages and pages
    unit: str = ""
    min: float | int | str | None = None
    max: float | int | str | None = None
    warn_min: float | int | None = None
    warn_max: float | int | None = None
    top_code: int | None = None
    max_length: int = 200
    pattern: str = ""
    free_text: bool = False
    value_set: ValueSet | None = None
    system: str = ""
    min_items: int | None = None
    max_items: int | None = None
    elements: list["Element"] = field(default_factory=list)  # a group's item elements
    group: str = ""  # the group this element belongs to, if any
    note: str = ""
    line: int | None = None
    raw: dict = field(default_factory=dict, repr=False)  # as written, for fingerprints

    @property
    def path_name(self) -> str:
        """Dotted name: ``age_years`` or ``prints.material``."""
        return f"{self.group}.{self.name}" if self.group else self.name

    @property
    def is_group(self) -> bool:
        return self.type == "group"

    @property
    def screened(self) -> bool:
        """Whether a person types the value, so it is checked for identifiers.

        Every text element: free text, a name no pattern bounds (a software or
        material name can hold a name as well as a product), and text a
        pattern bounds too (a printer label ``Smith_John_1950-03-03`` or a
        version ``1950.03.03`` fits its pattern) (#15).
        """
        return self.type == "text"

    @property
    def token(self) -> bool:
        """Whether a pattern bounds the value to a token, screened as a file name is.

        A token has no spaces, so a name or a date in it is glued by ``_``,
        ``-`` or ``.`` (``Smith_John``), which only the file-name screen reads.
        """
        return self.screened and bool(self.pattern) and not self.free_text


@dataclass
class Section:
    id: str
    label: str
    help: str
    elements: list[Element]
    questionnaire: bool = False


@dataclass
class Rule:
    id: str
    message: str
    check: Compiled
    severity: str = "error"
    when: Compiled | None = None
    scope: str = ""  # a group name: checked once per item
    path: str = ""
    drafts: bool = False
    provenance: str = "proposed"
    source: str = ""
    names: set[str] = field(default_factory=set)
    context_names: set[str] = field(default_factory=set)


@dataclass
class Derived:
    name: str
    label: str
    function: str
    args: dict
    unit: str = ""
    help: str = ""


@dataclass
class CptCode:
    code: str
    kind: str  # model | guide
    first: bool = False
    add_on_to: str | None = None


@dataclass
class UnitCap:
    code: str
    max: int
    start: str  # YYYY-MM, inclusive
    end: str | None = None  # YYYY-MM, inclusive
    source: str = ""


@dataclass
class Change:
    kind: str
    data: dict


@dataclass
class Version:
    version: str
    released: str
    summary: str
    changes: list[Change]


@dataclass
class Dictionary:
    name: str
    version: str
    title: str
    released: str
    description: str
    sources: dict[str, dict]
    value_sets: dict[str, ValueSet]
    sections: list[Section]
    rules: list[Rule]
    derived: list[Derived]
    cpt_codes: list[CptCode]
    unit_caps: list[UnitCap]
    history: list[Version]
    file: str = ""
    references: dict[str, dict] = field(default_factory=dict)  # reference tables by file
    elements: dict[str, Element] = field(default_factory=dict)  # top-level, by name
    all_elements: dict[str, Element] = field(default_factory=dict)  # by path_name

    def element(self, path_name: str) -> Element:
        return self.all_elements[path_name]

    def groups(self) -> list[Element]:
        return [e for e in self.elements.values() if e.is_group]

    def source_url(self, source: str) -> str:
        if source.startswith(("http://", "https://")):
            return source
        entry = self.sources.get(source) or {}
        return entry.get("url", "")

    def case_sections(self) -> list[Section]:
        return [s for s in self.sections if not s.questionnaire]

    def questionnaire_sections(self) -> list[Section]:
        return [s for s in self.sections if s.questionnaire]
