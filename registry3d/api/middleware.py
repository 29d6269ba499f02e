"""Limits on API requests, checked before anything is parsed."""

import json

from django.conf import settings
from django.http import HttpResponse

PROBLEM_TYPE = "application/problem+json"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _problem(status: int, title: str, detail: str, headers: dict | None = None) -> HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": []}
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def json_depth(body: bytes) -> int:
    """Return how deeply arrays and objects nest in a JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class ApiLimitsMiddleware:
    """413 for bodies over the limit, 400 for JSON nested too deeply.

    The write rate (429) is checked once the token is known (TokenAuth).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/") and request.method in WRITE_METHODS:
            refusal = self.check(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def check(self, request):
        limit = settings.REGISTRY3D_API_MAX_BODY_BYTES
        if request.META.get("CONTENT_TYPE", "").startswith("multipart/"):
            # File uploads (imports, DICOM, 3D models) have their own limits.
            limit = settings.REGISTRY3D_API_MAX_UPLOAD_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return _problem(
                413,
                "Content Too Large",
                f"The request body is {length} bytes; at most {limit} are accepted.",
            )
        if request.META.get("CONTENT_TYPE", "").startswith("application/json"):
            depth = json_depth(request.body)
            if depth > settings.REGISTRY3D_API_MAX_JSON_DEPTH:
                return _problem(
                    400,
                    "Bad Request",
                    f"The JSON body nests {depth} levels deep; at most "
                    f"{settings.REGISTRY3D_API_MAX_JSON_DEPTH} are accepted.",
                )
        return None
