"""Withhold text that looks like a patient identifier from what leaves the registry.

The entry screen refuses identifiers, but a value can be stored all the
same: typed before the screen knew its shape, or missed by it. Every output
that writes case text — research and site exports in every format, FHIR
resources, REDCap records and log — passes each value of a screened text
element (and a withdrawal reason) through :func:`withheld`, so the screen in
force on the day of the export decides, not the one of the day of entry.
The case and its versions keep the value until it is redacted.
"""

from registry3d.lib.text_screen import find_identifier, find_identifier_in_token

WITHHELD = "[withheld: looks like a patient identifier]"


def withheld(value, *, token: bool = False):
    """``value``, or :data:`WITHHELD` when it is text that looks like an identifier.

    ``token`` screens it as a file name is: the value of an element a
    pattern bounds to a token (``Element.token``), where ``_``, ``-`` and
    ``.`` glue the words of a name or a date.
    """
    screen = find_identifier_in_token if token else find_identifier
    if isinstance(value, str) and screen(value):
        return WITHHELD
    return value
