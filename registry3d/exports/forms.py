from django import forms

from registry3d.exports.models import ExportFormat
from registry3d.lib.forms import Form


class ResearchExportForm(Form):
    # Fields that make an identifiable export; the page shows them to admins.
    IDENTIFIABLE = ("free_text", "months", "identifiers")

    format = forms.ChoiceField(
        choices=[(ExportFormat.CSV, "CSV"), (ExportFormat.PARQUET, "Parquet")],
        initial=ExportFormat.CSV,
    )
    elements = forms.MultipleChoiceField(
        required=False,
        help_text="Leave empty for every element. Repeating groups export as tables of their own.",
        widget=forms.SelectMultiple(attrs={"size": 12}),
    )
    from_year = forms.IntegerField(required=False, min_value=1990, max_value=2100)
    to_year = forms.IntegerField(required=False, min_value=1990, max_value=2100)
    organ_system = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False)
    sites = forms.MultipleChoiceField(
        required=False,
        help_text="Leave empty for every site.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    free_text = forms.BooleanField(
        required=False,
        label="Include free text (comments)",
        help_text="Leaves HIPAA Safe Harbor: registry administrators only. Each value is "
        "screened; those that look like a patient identifier are withheld.",
    )
    site_labels = forms.BooleanField(
        required=False,
        label="Name sites by random labels",
        help_text="The same site always gets the same label.",
    )
    months = forms.BooleanField(
        required=False,
        label="Keep the month of dates",
        help_text="Leaves HIPAA Safe Harbor: registry administrators only.",
    )
    identifiers = forms.BooleanField(
        required=False,
        label="Include case IDs and patient keys",
        help_text="Leaves HIPAA Safe Harbor: registry administrators only.",
    )

    def __init__(self, *args, dictionary, sites, **kwargs):
        super().__init__(*args, **kwargs)
        choices = []
        for section in dictionary.sections:
            choices.append(
                (
                    section.label,
                    [
                        (e.name, f"{e.label} ({e.name}){' — table' if e.is_group else ''}")
                        for e in section.elements
                    ],
                )
            )
        self.fields["elements"].choices = choices
        for name in ("organ_system", "object_type"):
            codes = dictionary.value_sets[name].codes
            self.fields[name].choices = [("", "Any")] + [(c.code, c.label) for c in codes]
        self.fields["sites"].choices = [(s.code, f"{s.code} – {s.name}") for s in sites]


class SiteExportForm(Form):
    format = forms.ChoiceField(
        choices=ExportFormat.choices,
        initial=ExportFormat.XLSX,
        help_text="CSV and XLSX use the import template's columns, so you can edit the file "
        "and import it again; Parquet has a table per repeating group; FHIR gives one NDJSON "
        "file per resource type for your hospital's systems; REDCap the data dictionary and "
        "records to load into a REDCap project.",
    )
