from django import forms


class Form(forms.Form):
    """A form whose labels carry no trailing colon, like the rest of the pages."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
