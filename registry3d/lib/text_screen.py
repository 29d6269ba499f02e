"""The screen every door calls: text, tokens and file names.

:mod:`registry3d.lib.identifiers` is the detector; this module is how the
doors ask it, so that one rule holds everywhere:

1. :func:`find_identifier` for text a person types. The detector reads
   text as prose, so a model file's name pasted into a comment
   (``Martin_Jose_skull.ply``, ``luis.martin.pelvis.obj``) would pass: its
   words are glued by ``_``, ``.`` or ``-``. Each word that ends in a model
   file's extension is therefore screened as a file name too.
2. :func:`find_identifier_in_file_name` for the name a file comes in with:
   the detector's file-name reading, then the name with ``-`` or ``_`` read
   as ``/`` (no file name holds a ``/``, so a web address or a date saved
   as one comes with a dash or an underscore for it).
3. :func:`find_identifier_in_token` for a value a pattern bounds to one
   word (a printer label, a version, a case ID): read as a file name is,
   then as prose.
"""

import re

from registry3d.lib import identifiers

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}\Z")

# A word ending in the extension of a 3D model file: the names the corpus holds.
MODEL_FILE_NAME = re.compile(r"[^\s/\\]+\.(?:stl|obj|3mf|ply|amf)\b", re.IGNORECASE)


def find_identifier(text: str) -> str | None:
    """What kind of identifier ``text`` seems to hold, or None."""
    found = identifiers.find_identifier(text)
    if found is not None:
        return found
    for name in MODEL_FILE_NAME.findall(text):
        found = find_identifier_in_file_name(name)
        if found is not None:
            return found
    return None


def find_identifier_in_file_name(name: str) -> str | None:
    """What kind of identifier a file name (or path) seems to hold, or None."""
    found = identifiers.find_identifier_in_file_name(name)
    if found is not None:
        return found
    stem = _EXTENSION.sub("", name)
    for separator in "-_":
        if separator in stem:
            found = identifiers.find_identifier(stem.replace(separator, "/"))
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
