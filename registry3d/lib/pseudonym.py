"""Pseudonymous patient keys: a keyed hash of a site's local record number.

The same MRN at the same site always gives the same key; the same MRN at
two sites gives two unrelated keys. Each site's key is derived from the
registry's pseudonym secret, which lives outside the database (an
environment variable, or ``var/pseudonym_key`` written once with owner-only
permissions), so a copy of the database alone cannot link keys to MRNs.
"""

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def _master_secret() -> bytes:
    configured = settings.REGISTRY3D_PSEUDONYM_KEY
    if configured:
        return configured.encode("utf-8")
    path = Path(settings.VAR_DIR) / "pseudonym_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ImproperlyConfigured(f"{path} holds no usable pseudonym secret")
    return secret.encode("utf-8")


def site_secret(site_code: str) -> bytes:
    """Return the site's own hashing key, derived and never stored."""
    return hmac.new(
        _master_secret(), f"registry3d-site:{site_code}".encode(), hashlib.sha256
    ).digest()


def normalise_mrn(mrn: str) -> str:
    """Trim, fold case and drop spaces and dashes, so typing style does not matter."""
    text = unicodedata.normalize("NFKC", mrn).strip().upper()
    return re.sub(r"[\s\-_/.]", "", text)


def patient_key(site_code: str, mrn: str) -> str:
    """Return the pseudonymous key of ``mrn`` at the site (64 hexadecimal characters)."""
    normalised = normalise_mrn(mrn)
    if not normalised:
        raise ValueError("the medical record number is empty")
    return hmac.new(site_secret(site_code), normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def looks_like_key(value: str) -> bool:
    """Whether ``value`` has the shape :func:`patient_key` gives: 64 lowercase hex digits.

    Anything else (a name, a birth date, a record number) is refused, so
    only a key made with the registry's secret is stored (#15).
    """
    return isinstance(value, str) and bool(KEY_RE.fullmatch(value))
