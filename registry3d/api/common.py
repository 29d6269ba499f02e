"""Pieces every API module shares: problem answers, token authentication, scopes."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from ninja import Schema
from ninja.security import HttpBearer

from registry3d.lib.ratelimit import token_write_wait
from registry3d.sites import services
from registry3d.sites.models import ApiToken

PROBLEM_TYPE = "application/problem+json"


class ProblemDetail(Schema):
    field: str
    code: str
    message: str


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemDetail] = []


def problem(
    request: HttpRequest,
    status: int,
    title: str,
    detail: str,
    errors: list[dict] | None = None,
    headers: dict | None = None,
) -> HttpResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }
    response = HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder), status=status, content_type=PROBLEM_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def bad_file(request: HttpRequest, message: str, detail: str | None = None) -> HttpResponse:
    """422 for an uploaded file the registry cannot use, naming the ``file`` field."""
    return problem(
        request,
        422,
        "Unprocessable Content",
        detail or message,
        [{"field": "file", "code": "bad_format", "message": message}],
    )


class Forbidden(Exception):
    """Raised when a live token may not do what it asked."""


class Throttled(Exception):
    """Raised when a token writes faster than its limit; ``wait`` is in seconds."""

    def __init__(self, wait: int):
        super().__init__(f"Too many writes with this token; wait {wait} s and retry.")
        self.wait = wait


READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``: a live token of one site.

    Every API operation that is not a read writes, so a read token's write is
    refused here (403), before its body is read or validated, and so is a
    write over the token's rate (429).
    """

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = services.authenticate_token(token)
        if found is not None and request.method not in READ_ONLY_METHODS:
            if not services.token_can_write(found):
                raise Forbidden("This token may only read; ask the site manager for a write token")
            wait = token_write_wait(found)
            if wait:
                raise Throttled(wait)
        return found


def require_write(request: HttpRequest) -> ApiToken:
    token: ApiToken = request.auth
    if not services.token_can_write(token):
        raise Forbidden("This token may only read; ask the site manager for a write token")
    return token
