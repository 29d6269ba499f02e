"""Request checks that protect every page and endpoint at once."""

from django.http import HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "The request contains a NUL character, which no field may hold."


class RejectNulMiddleware:
    """Refuse NUL characters in addresses, query strings and form or JSON bodies.

    PostgreSQL cannot store them in text, and no registry value needs one;
    refusing them here turns a would-be server error into a clear 400.
    File uploads (multipart) are left alone: binary files hold NUL bytes.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            if request.path.startswith("/api/"):
                response = JsonResponse(
                    {
                        "type": "about:blank",
                        "title": "Bad Request",
                        "status": 400,
                        "detail": NUL_MESSAGE,
                        "errors": [],
                    },
                    status=400,
                )
                response["Content-Type"] = "application/problem+json"
                return response
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return True
        if "\x00" in request.path_info:
            return True
        content_type = request.META.get("CONTENT_TYPE", "")
        if request.method in ("POST", "PUT", "PATCH") and not content_type.startswith("multipart/"):
            try:
                body = request.body
            except Exception:  # noqa: BLE001 - too large: Django answers that itself
                return False
            return b"\x00" in body or b"\\u0000" in body or b"%00" in body
        return False


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer the registry builds.

    Pages and API answers carry case data, and a hospital's shared
    workstation or a proxy must keep no copy of them. Static files (served
    before this runs) stay cacheable; an answer that set its own
    ``Cache-Control`` keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
