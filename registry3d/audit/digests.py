"""Keyed digests of case values, so the audit trail never holds the values.

An audit event cannot be edited, so a value written into it could never be
removed (an identifier typed by mistake, say). Events therefore record which
elements changed and, for each, a digest of the old and the new value:

1. The digest key is derived from the registry's pseudonym secret (which
   lives outside the database) with its own label, so a digest is never a
   patient key and a copy of the database alone cannot test guesses.
2. A value is written as canonical JSON (``"5"`` and ``5`` differ) and
   hashed with HMAC-SHA256 under that key; the first 16 hexadecimal
   characters (64 bits) are kept.
3. ``None`` stays ``None``, so an added or a removed value still shows.

The same value gives the same digest in every event, so a reader can see
that a value went back to what it was; with the key, an auditor can check
a claimed value against the trail. The case versions keep the values.
"""

import hashlib
import hmac
from functools import lru_cache
from typing import Any

import orjson
from django.conf import settings

from registry3d.audit.services import canonical_json
from registry3d.lib import pseudonym

DIGEST_LABEL = b"registry3d-audit-digest:v1"
DIGEST_LENGTH = 16  # hexadecimal characters
# Record fields an event names as they are: not case values.
KEPT_AS_THEY_ARE = ("status", "patient_key")


@lru_cache(maxsize=4)
def _key(configured: str, var_dir: str) -> bytes:
    del configured, var_dir  # the cache's key: a changed secret is a new key
    return hmac.new(pseudonym._master_secret(), DIGEST_LABEL, hashlib.sha256).digest()


@lru_cache(maxsize=4)
def _keyed(key: bytes):
    """An HMAC with the key already taken in; each digest starts from a copy."""
    return hmac.new(key, digestmod=hashlib.sha256)


def digest_key() -> bytes:
    """Return the audit digest key, derived from the pseudonym secret and never stored."""
    return _key(settings.REGISTRY3D_PSEUDONYM_KEY or "", str(settings.VAR_DIR))


def _plain(value: Any) -> bool:
    """Whether orjson writes the value exactly as canonical_json does (no floats)."""
    kind = type(value)
    if kind is str or kind is bool:
        return True
    if kind is int:
        return -(2**63) <= value < 2**64
    if kind is list:
        return all(type(v) is str for v in value)
    return False


def digest(value: Any, key: bytes | None = None) -> str | None:
    """Return the keyed digest of one value (16 hexadecimal characters); None for None."""
    if value is None:
        return None
    # Most values through orjson: the same text as canonical_json, several
    # times faster (a new case has a digest for each of its values).
    if _plain(value):
        text = orjson.dumps(value)
    else:
        text = canonical_json(value).encode("utf-8")
    mac = _keyed(key or digest_key()).copy()
    mac.update(text)
    return mac.hexdigest()[:DIGEST_LENGTH]


def digest_changes(changes: dict) -> dict:
    """Turn ``{path: [old, new]}`` into ``{path: [digest(old), digest(new)]}``.

    The case's status and the patient key's "(changed)" marker stay as they
    are: they are record fields, not values somebody typed.
    """
    key = digest_key()
    out = {}
    for path, pair in changes.items():
        if path in KEPT_AS_THEY_ARE:
            out[path] = pair
        else:
            old, new = pair
            out[path] = [digest(old, key), digest(new, key)]
    return out


def digest_values(values: dict) -> dict:
    """Turn ``{name: value}`` into ``{name: digest(value)}`` (a questionnaire's answers)."""
    key = digest_key()
    return {name: digest(value, key) for name, value in values.items()}
