"""The names files come in with: screened before they are shown or stored.

A file's name is typed by a person, often from the patient's record
(``Smith_John_MRN1234567_DOB1950-03-03.stl``). So:

1. ``find_identifier_in_file_name`` asks the registry's identifier screen
   about a name, reading its separators as spaces (``Smith_John`` is two
   words, ``MRN1234567`` a cue and a number).
2. ``screened`` gives the name when it passes, or a neutral one with the
   kind of identifier found; the name itself is never in a message.
3. ``random_name`` is what a kept file is called on disk, so that no name
   typed by a person, nor a hash of the content, names a stored file.
"""

import re
import secrets
from pathlib import PurePath

from registry3d.lib import identifiers

_SEPARATORS = re.compile(r"[\s_.]+")
_DASHES = re.compile(r"-+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}\Z")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def find_identifier_in_file_name(name: str) -> str | None:
    """Return what kind of identifier a file name (or path) seems to hold, or None.

    The identifier module's own file-name screen is used once it has one;
    until then the name is screened as typed, then as words (separators
    read as spaces, letters parted from digits), then with dashes parted
    too.
    """
    own = getattr(identifiers, "find_identifier_in_file_name", None)
    if own is not None:
        return own(name) or _as_path(name)
    words = _LETTER_DIGIT.sub(" ", _SEPARATORS.sub(" ", name))
    for text in (name, words, _DASHES.sub(" ", words)):
        kind = identifiers.find_identifier(text)
        if kind is not None:
            return kind
    return _as_path(name)


def _as_path(name: str) -> str | None:
    """Screen the name with ``-`` or ``_`` read as ``/``.

    No file name holds a ``/``, so a web address or a date saved as one
    comes with a dash or an underscore for it
    (``example-hospital.org-pts-carter.stl``, ``DOB_2009_06_06.stl``).
    """
    stem = _EXTENSION.sub("", name)
    for separator in "-_":
        if separator in stem:
            kind = identifiers.find_identifier(stem.replace(separator, "/"))
            if kind is not None:
                return kind
    return None


def screened(name: str, neutral: str) -> tuple[str, str | None]:
    """The name to show and store, and what kind of identifier it seemed to hold.

    A name that passes comes back unchanged with None; one that does not is
    replaced by ``neutral``.
    """
    kind = find_identifier_in_file_name(name) if name else None
    return (neutral, kind) if kind is not None else (name, None)


def suffix_of(name: str) -> str:
    """The extension of ``name``, lower-cased, if it is a plain one (``.csv``); else ""."""
    suffix = PurePath(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def neutral_name(stem: str, name: str) -> str:
    """``stem`` with the extension of ``name``: ``upload.csv``."""
    return stem + suffix_of(name)


def random_name(suffix: str = "") -> str:
    """A fresh name for a file on disk: 32 random hex digits and ``suffix``."""
    return secrets.token_hex(16) + suffix
