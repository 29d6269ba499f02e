"""Withhold text that looks like a patient identifier from what leaves the registry.

The entry screen refuses identifiers, but a value can be stored all the
same: typed before the screen knew its shape, or missed by it. Every output
that writes case text — research and site exports in every format, FHIR
resources, REDCap records and log — passes each value of a screened text
element (and a withdrawal reason) through :func:`withheld`, so the screen in
force on the day of the export decides, not the one of the day of entry.
The case and its versions keep the value until it is redacted.
"""

from registry3d.lib.text_screen import find_identifier

WITHHELD = "[withheld: looks like a patient identifier]"


def withheld(value):
    """``value``, or :data:`WITHHELD` when it is text that looks like an identifier."""
    if isinstance(value, str) and find_identifier(value):
        return WITHHELD
    return value
