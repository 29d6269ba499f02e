"""The names files come in with: screened before they are shown or stored.

A file's name is typed by a person, often from the patient's record
(``Smith_John_MRN1234567_DOB1950-03-03.stl``). So:

1. ``find_identifier_in_file_name`` (from :mod:`registry3d.lib.text_screen`)
   asks the registry's identifier screen about a name, reading its
   separators as spaces (``Smith_John`` is two words, ``MRN1234567`` a cue
   and a number).
2. ``screened`` gives the name when it passes, or a neutral one with the
   kind of identifier found; the name itself is never in a message.
3. ``random_name`` is what a kept file is called on disk, so that no name
   typed by a person, nor a hash of the content, names a stored file.
"""

import re
import secrets
from pathlib import PurePath

# One screen for every door: the names module only decides what a file is
# called once screened.
from registry3d.lib.text_screen import find_identifier_in_file_name

__all__ = ["find_identifier_in_file_name", "neutral_name", "random_name", "screened", "suffix_of"]


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
