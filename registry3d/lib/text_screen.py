"""The entry screen of a free-text value: the identifier screen, and file names in it.

``identifiers.find_identifier`` reads text as prose, so a model file's name
pasted into a comment (``Martin_Jose_skull.ply``, ``luis.martin.pelvis.obj``)
passes: its words are glued by ``_``, ``.`` or ``-``. Each word of the text
that ends in a model file's extension is therefore screened as a file name
too, the way the mesh door screens an upload's name. The doors that take
text (the dictionary's validation, a withdrawal reason, the DICOM reader's
text attributes) import :func:`find_identifier` from here, and
:func:`find_identifier_in_token` for a value a pattern bounds to a token
(a printer label, a version, a case ID).
"""

import re

from registry3d.intake.names import find_identifier_in_file_name
from registry3d.lib import identifiers

# A word ending in the extension of a 3D model file: the names the corpus holds.
MODEL_FILE_NAME = re.compile(r"[^\s/\\]+\.(?:stl|obj|3mf|ply|amf)\b", re.IGNORECASE)


def find_identifier(text: str) -> str | None:
    """What kind of identifier ``text`` seems to hold, or None."""
    found = identifiers.find_identifier(text)
    if found is not None:
        return found
    for name in MODEL_FILE_NAME.findall(text):
        found = identifiers.find_identifier_in_file_name(name)
        if found is not None:
            return found
    return None


def find_identifier_in_token(text: str) -> str | None:
    """What kind of identifier a token (no spaces: ``Smith_John_MRN1234567``) seems to hold.

    A token is read as a file name is, its ``_``, ``-`` and ``.`` as spaces,
    then as prose.
    """
    if not text:
        return None
    return find_identifier_in_file_name(text) or find_identifier(text)
