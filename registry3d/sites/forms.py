from django import forms

from registry3d.lib.forms import Form
from registry3d.sites.models import SiteRole, TokenKind, TokenScope


class InviteForm(Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=SiteRole.choices, initial=SiteRole.CONTRIBUTOR)


class RoleForm(Form):
    role = forms.ChoiceField(choices=SiteRole.choices)


class OrCostForm(Form):
    or_cost_per_minute_usd = forms.DecimalField(
        label="Operating-room cost per minute (USD)",
        required=False,
        min_value=1,
        max_value=1000,
        decimal_places=2,
        help_text="Leave empty to use the registry's default.",
    )


class StaffCostForm(Form):
    clinician_cost_per_hour_usd = forms.DecimalField(
        label="Clinician cost per hour (USD)",
        required=False,
        min_value=1,
        max_value=5000,
        decimal_places=2,
        help_text="Physicians and other qualified healthcare providers: pay and benefits.",
    )
    non_clinician_cost_per_hour_usd = forms.DecimalField(
        label="Non-clinician cost per hour (USD)",
        required=False,
        min_value=1,
        max_value=5000,
        decimal_places=2,
        help_text="Engineers, technologists and other staff: pay and benefits.",
    )


class ModelFilesForm(Form):
    keep_model_files = forms.BooleanField(
        label="Keep the 3D model files measured through the API",
        required=False,
        help_text="Each file is stored once, by its content hash; files already kept stay "
        "when this is turned off.",
    )


class PrinterForm(Form):
    label = forms.RegexField(
        regex=r"^[A-Za-z0-9_\-]{1,64}$",
        max_length=64,
        help_text="How cases name it, e.g. J750-1 (letters, digits, - and _).",
        error_messages={"invalid": "Use 1 to 64 letters, digits, - or _"},
    )
    manufacturer = forms.CharField(max_length=100)
    model = forms.CharField(max_length=100)
    technology = forms.ChoiceField(label="Technology (ISO/ASTM 52900)")

    def __init__(self, *args, technologies=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["technology"].choices = [("", "")] + list(technologies)


class TokenForm(Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'Lab tracker export'")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    kind = forms.ChoiceField(
        label="Works at",
        choices=TokenKind.choices,
        initial=TokenKind.API,
        required=False,
        help_text="A REDCap token is 32 hexadecimal characters, for REDCap clients such as PyCap",
    )
    user = forms.ChoiceField(label="Acts as", help_text="The member whose rights it has")

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [(m.user.email, m.user.email) for m in members]
