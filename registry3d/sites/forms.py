from django import forms

from registry3d.lib.forms import Form
from registry3d.sites.models import SiteRole, TokenScope


class InviteForm(Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=SiteRole.choices, initial=SiteRole.CONTRIBUTOR)


class RoleForm(Form):
    role = forms.ChoiceField(choices=SiteRole.choices)


class TokenForm(Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'Lab tracker export'")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    user = forms.ChoiceField(label="Acts as", help_text="The member whose rights it has")

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [(m.user.email, m.user.email) for m in members]
