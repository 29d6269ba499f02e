from django import forms

from registry3d.lib.forms import Form


class RedactionForm(Form):
    site = forms.CharField(label="Site code", max_length=16)
    case_uid = forms.CharField(label="Case ID", max_length=64)
    element = forms.CharField(
        max_length=200,
        help_text="The text to remove, e.g. ua_comment, anatomic_parts[2].comment or "
        "withdrawn_reason. Every value it held in the case's history is replaced.",
    )
    reason = forms.CharField(
        max_length=500,
        help_text="Why it is removed, e.g. 'a name typed into the comment'. "
        "No patient details, and not the value itself.",
    )
