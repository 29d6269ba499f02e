"""The dictionary the running registry uses, loaded once and swapped whole.

``current()`` returns the loaded dictionary and its validator. ``reload()``
loads the file again and swaps only if the new file is sound, so a broken
edit never replaces the version the registry has.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from registry3d.dictionary.loader import load_dictionary
from registry3d.dictionary.spec import Dictionary
from registry3d.dictionary.validation import Validator
from registry3d.dictionary.versions import check_published

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_FILE = DATA_DIR / "case.yaml"


@dataclass(frozen=True)
class Loaded:
    dictionary: Dictionary
    validator: Validator


_lock = threading.Lock()
_loaded: Loaded | None = None


def dictionary_path() -> Path:
    configured = getattr(settings, "REGISTRY3D_DICTIONARY", "")
    return Path(configured) if configured else DEFAULT_FILE


def load(path: Path | None = None) -> Loaded:
    """Load and compile a dictionary file without installing it."""
    dictionary = load_dictionary(path or dictionary_path())
    check_published(dictionary)
    return Loaded(dictionary, Validator(dictionary))


def current() -> Loaded:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = load()
    return _loaded


def reload(path: Path | None = None) -> Loaded:
    """Load the file again; on any error keep the current one and raise."""
    global _loaded
    fresh = load(path)
    with _lock:
        _loaded = fresh
    return fresh
