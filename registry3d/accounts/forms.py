from django import forms
from django.contrib.auth import forms as auth_forms

from registry3d.accounts.models import User
from registry3d.lib.forms import Form


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, also for invited people who never set a password.

    Django skips accounts without a usable password (meant for outside
    log-in systems); here every account logs in with a password, and an
    invited person whose link expired must be able to ask for a new one.
    """

    def get_users(self, email):
        return User.objects.filter(email__iexact=email.strip(), is_active=True)


class LoginForm(Form):
    username = forms.EmailField(
        label="E-mail",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CodeForm(Form):
    code = forms.RegexField(
        label="Six-digit code",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the 6 digits your authenticator app shows"},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
