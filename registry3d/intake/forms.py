from django import forms

from registry3d.intake.models import ImportMode
from registry3d.lib.forms import Form

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class ImportForm(Form):
    file = forms.FileField(
        label="CSV or XLSX file",
        help_text="Columns named like the import template's (or by their labels).",
    )
    mode = forms.ChoiceField(
        choices=ImportMode.choices,
        initial=ImportMode.ALL_OR_NOTHING,
        help_text="All or nothing writes no case if any row is invalid.",
    )
    default_status = forms.ChoiceField(
        label="Status of rows without a status column",
        choices=[("submitted", "Submitted"), ("draft", "Draft")],
        initial="submitted",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx", ".tsv", ".txt")):
            raise forms.ValidationError("Choose a .csv or .xlsx file")
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // (1024 * 1024)} MB; at most "
                f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB are accepted"
            )
        return upload
