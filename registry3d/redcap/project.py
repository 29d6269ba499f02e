"""The REDCap project the data dictionary makes: its instruments, fields and columns.

Everything here follows from the REDCap data dictionary the registry
generates (:func:`registry3d.dictionary.generators.redcap_rows`): each section
is an instrument, each repeating group a repeating instrument, every other
element a field of the same name. A record's flat rows, the API's metadata
and its export field names are all read from one :class:`Project`.
"""

from dataclasses import dataclass, field

from registry3d.dictionary import generators
from registry3d.dictionary.spec import Dictionary, Element
from registry3d.redcap.datadict import API_KEY_OF, checkbox_suffix

RECORD_ID = "record_id"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
RECORD_COLUMNS = (RECORD_ID, REPEAT_INSTRUMENT, REPEAT_INSTANCE)

# An instrument's status, as REDCap codes it in <instrument>_complete.
INCOMPLETE, UNVERIFIED, COMPLETE = "0", "1", "2"


@dataclass
class Field:
    """One REDCap field: a dictionary element (or the record ID) on one instrument."""

    name: str
    instrument: str
    field_type: str
    element: Element | None  # None for record_id
    # For checkboxes, (export column, code) for each active choice.
    choices: list[tuple[str, str]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The field's columns in a flat export: itself, or one per checkbox choice."""
        if self.field_type == "checkbox":
            return [column for column, _code in self.choices]
        return [self.name]


@dataclass
class Instrument:
    name: str
    label: str
    repeating: bool
    questionnaire: bool
    fields: list[Field]

    @property
    def status_field(self) -> str:
        return f"{self.name}_complete"


class Project:
    """The REDCap project of one dictionary version."""

    def __init__(self, dictionary: Dictionary):
        self.dictionary = dictionary
        self.rows = generators.redcap_rows(dictionary)
        labels = {s.id: (s.label, s.questionnaire) for s in dictionary.sections}
        for group in dictionary.groups():
            section = next(s for s in dictionary.sections if group in s.elements)
            labels[group.name] = (group.label, section.questionnaire)
        groups = {g.name for g in dictionary.groups()}
        self.instruments: list[Instrument] = []
        self.fields: dict[str, Field] = {}
        by_name: dict[str, Instrument] = {}
        for row in self.rows:
            form = row["Form Name"]
            instrument = by_name.get(form)
            if instrument is None:
                label, questionnaire = labels[form]
                instrument = by_name[form] = Instrument(
                    form, label, form in groups, questionnaire, []
                )
                self.instruments.append(instrument)
            name = row["Variable / Field Name"]
            element = None
            if name != RECORD_ID:
                element = (
                    next(i for i in dictionary.elements[form].elements if i.name == name)
                    if form in groups
                    else dictionary.elements[name]
                )
            each = Field(name, form, row["Field Type"], element)
            if each.field_type == "checkbox":
                each.choices = [
                    (f"{name}___{checkbox_suffix(code)}", code)
                    for code in element.value_set.active_codes()
                ]
            instrument.fields.append(each)
            self.fields[name] = each
        self.instrument = by_name
        # Column name -> (field, checkbox code or None), for reading rows.
        self.columns: dict[str, tuple[Field, str | None]] = {}
        for each in self.fields.values():
            if each.field_type == "checkbox":
                for column, code in each.choices:
                    self.columns[column] = (each, code)
            else:
                self.columns[each.name] = (each, None)
        self.status_fields = {i.status_field: i for i in self.instruments}
        # Export column -> the instrument it belongs to.
        self.column_instrument: dict[str, str] = {
            column: each.instrument
            for each in self.fields.values()
            if each.name != RECORD_ID
            for column in each.columns
        }
        self.column_instrument.update({i.status_field: i.name for i in self.instruments})

    def export_columns(self, fields: set[str] | None = None) -> list[str]:
        """The columns of a flat export, in REDCap's order; only ``fields`` if given.

        ``fields`` holds field names and ``<instrument>_complete`` names; the
        record ID and the repeat columns always come first.
        """
        columns = list(RECORD_COLUMNS)
        for instrument in self.instruments:
            for each in instrument.fields:
                if each.name == RECORD_ID:
                    continue
                if fields is None or each.name in fields:
                    columns += each.columns
            if fields is None or instrument.status_field in fields:
                columns.append(instrument.status_field)
        return columns

    def metadata(self) -> list[dict[str, str]]:
        """The data dictionary as the API's ``content=metadata`` gives it."""
        return [{API_KEY_OF[column]: value for column, value in row.items()} for row in self.rows]

    def export_field_names(self) -> list[dict[str, str]]:
        """Each field's export column(s), as ``content=exportFieldNames`` gives them."""
        out = []
        for instrument in self.instruments:
            for each in instrument.fields:
                if each.field_type == "checkbox":
                    out += [
                        {
                            "original_field_name": each.name,
                            "choice_value": code,
                            "export_field_name": column,
                        }
                        for column, code in each.choices
                    ]
                else:
                    out.append(
                        {
                            "original_field_name": each.name,
                            "choice_value": "",
                            "export_field_name": each.name,
                        }
                    )
            out.append(
                {
                    "original_field_name": instrument.status_field,
                    "choice_value": "",
                    "export_field_name": instrument.status_field,
                }
            )
        return out

    def repeating(self) -> list[Instrument]:
        return [i for i in self.instruments if i.repeating]


_projects: dict[int, tuple[Dictionary, Project]] = {}


def project_of(dictionary: Dictionary) -> Project:
    """The project of a loaded dictionary, built once per dictionary object."""
    entry = _projects.get(id(dictionary))
    if entry is None or entry[0] is not dictionary:
        if len(_projects) > 4:
            _projects.clear()
        entry = _projects[id(dictionary)] = (dictionary, Project(dictionary))
    return entry[1]
