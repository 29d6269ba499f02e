"""Network helpers shared by the audit trail and rate limits."""

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
            return chain[-count]
    return request.META.get("REMOTE_ADDR") or None
