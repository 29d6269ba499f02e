"""Network helpers shared by the audit trail and rate limits."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """Return the caller's address, trusting only the configured proxies.

    With ``REGISTRY3D_PROXY_COUNT=N`` the N-th address from the right of
    ``X-Forwarded-For`` is taken (the one our own proxies saw); otherwise the
    socket's peer address.
    """
    if request is None:
        return None
    count = settings.REGISTRY3D_PROXY_COUNT
    if count:
        chain = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(chain) >= count:
            forwarded = _valid_ip(chain[-count])
            if forwarded:
                return forwarded
    return _valid_ip(request.META.get("REMOTE_ADDR", ""))


def _valid_ip(text: str) -> str | None:
    """Return ``text`` as a normalised address, or None if it is not one.

    Proxies sometimes append a port ("1.2.3.4:5678") or write "unknown".
    """
    text = text.strip()
    if text.count(":") == 1:  # IPv4 with a port
        text = text.split(":")[0]
    if text.startswith("[") and "]" in text:  # [IPv6]:port
        text = text[1 : text.index("]")]
    try:
        return str(ipaddress.ip_address(text.split("%")[0]))
    except ValueError:
        return None
