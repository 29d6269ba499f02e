"""A correlation id for every request, in its log lines and its answer.

When something fails, the error page shows the id and the log line with the
traceback carries the same one, so a user's report ("error 3f9c1a2b7d4e")
leads straight to the cause without showing the user any of it. A reverse
proxy's ``X-Request-ID`` is kept when it looks like an id, so the proxy's
logs line up with ours; only behind a proxy (``REGISTRY3D_BEHIND_PROXY``),
so a client cannot choose the id of its own error.
"""

import logging
import re
import secrets
from contextvars import ContextVar

from django.conf import settings

HEADER = "X-Request-ID"
_SAFE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
current: ContextVar[str] = ContextVar("registry3d_request_id", default="-")


def new_id() -> str:
    return secrets.token_hex(6)


class RequestIdMiddleware:
    """Give each request an id (``request.request_id``) and answer with it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        trusted = settings.REGISTRY3D_BEHIND_PROXY and _SAFE.match(incoming)
        request_id = incoming if trusted else new_id()
        request.request_id = request_id
        token = current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current.reset(token)
        response[HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every log record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or current.get()
        return True
