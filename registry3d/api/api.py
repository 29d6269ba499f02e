"""The REST API for site software, versioned under ``/api/v1/``.

Endpoints stay thin: authenticate the token, call one service, shape the
answer. Every error is ``application/problem+json`` (RFC 9457) with an
``errors`` list naming the field.
"""

import json
from datetime import datetime

from ninja import NinjaAPI, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from pydantic import Field, field_validator

from registry3d import __version__
from registry3d.api.cases import router as cases_router
from registry3d.api.common import (
    Forbidden,
    Problem,
    Throttled,
    TokenAuth,
    problem,
    require_write,
)
from registry3d.api.fhir import router as fhir_router
from registry3d.api.imports import router as imports_router
from registry3d.api.intake import router as intake_router
from registry3d.api.questionnaires import router as questionnaires_router
from registry3d.sites import services
from registry3d.sites.errors import SiteError
from registry3d.sites.models import ApiToken, Printer


class RegistryAPI(NinjaAPI):
    """The API, whose schema says what every error answer really is."""

    def get_openapi_schema(self, *args, **kwargs):
        """Document error answers as application/problem+json, and the limits' answers.

        Every 4xx answer is an RFC 9457 problem; any request may get 400 (a
        NUL character in its address), writes also 400 for malformed or too
        deeply nested JSON, 413 (body too large) and 429 (too many writes,
        with Retry-After).
        """
        schema = super().get_openapi_schema(*args, **kwargs)
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for path in schema.get("paths", {}).values():
            for method, operation in path.items():
                responses = operation.get("responses", {})
                responses.setdefault(
                    400,
                    {
                        "description": "Malformed request",
                        "content": {"application/json": {"schema": problem_ref}},
                    },
                )
                if method in ("post", "put", "patch", "delete"):
                    for status, why in (
                        (400, "Malformed request"),
                        (413, "Request body too large"),
                        (429, "Too many writes; see Retry-After"),
                    ):
                        responses.setdefault(
                            status,
                            {
                                "description": why,
                                "content": {"application/json": {"schema": problem_ref}},
                            },
                        )
                    if operation.get("security") != []:
                        responses.setdefault(
                            401,
                            {
                                "description": "Missing, malformed or revoked token",
                                "content": {"application/json": {"schema": problem_ref}},
                            },
                        )
                for status, response in responses.items():
                    content = response.get("content", {})
                    if 400 <= int(status) < 500 and "application/json" in content:
                        content["application/problem+json"] = content.pop("application/json")
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        return schema


class NotAnObject(ValueError):
    """Raised for a JSON body that is valid JSON but not an object."""


class ObjectParser(Parser):
    """JSON bodies must be objects.

    django-ninja reads a body that is an array, a string or null as if no
    fields had been sent, so ``PUT /cases/{uid}`` with ``null`` replaced the
    case with an empty draft; such a body is refused instead (422).
    """

    def parse_body(self, request):
        value = super().parse_body(request)
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string", bool: "true or false"}.get(
                type(value), "null" if value is None else "a number"
            )
            raise NotAnObject(f"The body must be a JSON object, not {kind}")
        return value


api = RegistryAPI(
    parser=ObjectParser(),
    title="registry3d API",
    version="1",
    description=(
        "REST API of registry3d, the clinical data registry for medical 3D "
        "printing. Authenticate with `Authorization: Bearer <token>`; site "
        "managers create tokens on the site's Tokens page or with "
        "`registry3d token create`."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request, exc):
    return problem(
        request,
        401,
        "Unauthorized",
        "A valid API token is required: send 'Authorization: Bearer <token>'. "
        "The token may be missing, mistyped or revoked.",
        headers={"WWW-Authenticate": 'Bearer realm="registry3d"'},
    )


@api.exception_handler(Forbidden)
def on_forbidden(request, exc):
    return problem(request, 403, "Forbidden", str(exc))


@api.exception_handler(Throttled)
def on_throttled(request, exc):
    response = problem(request, 429, "Too Many Requests", str(exc))
    response["Retry-After"] = str(exc.wait)
    return response


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc):
    errors = []
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        if location and location[0] in ("payload", "data") and len(location) > 1:
            location = location[1:]
        errors.append(
            {
                "field": ".".join(location),
                "code": error.get("type", "invalid"),
                "message": error.get("msg", "Invalid value"),
            }
        )
    return problem(request, 422, "Unprocessable Content", "The request has invalid values.", errors)


@api.exception_handler(HttpError)
def on_http_error(request, exc):
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, NotAnObject):  # JSON, of the wrong type
        return problem(
            request,
            422,
            "Unprocessable Content",
            str(cause),
            [{"field": "body", "code": "wrong_type", "message": str(cause)}],
        )
    if exc.status_code == 400 and isinstance(cause, ValueError):  # the body did not parse
        message = (
            f"The body is not valid JSON: {cause}"
            if isinstance(cause, json.JSONDecodeError)
            else "The body is not UTF-8 JSON"
        )
        return problem(
            request,
            400,
            "Bad Request",
            message,
            [{"field": "body", "code": "bad_format", "message": message}],
        )
    return problem(request, exc.status_code, "Error", str(exc))


# --- Schemas --------------------------------------------------------------------


class SiteOut(Schema):
    code: str
    name: str


class WhoAmIOut(Schema):
    site: SiteOut
    user: str
    scope: str
    can_write: bool
    token_name: str
    token_prefix: str
    api_version: str


class PrinterIn(Schema):
    label: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    manufacturer: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    technology: str = Field(
        description="ISO/ASTM 52900 category: a code of the dictionary's print_technology "
        "value set, e.g. material_jetting"
    )

    @field_validator("technology")
    @classmethod
    def known_technology(cls, value: str) -> str:
        codes = services.print_technologies()
        if value not in codes:
            raise ValueError(f"expected one of: {', '.join(codes)}")
        return value


class PrinterOut(Schema):
    code: str
    label: str
    manufacturer: str
    model: str
    technology: str
    active: bool


def printer_out(printer: Printer) -> dict:
    return {
        "code": str(printer.code),
        "label": printer.label,
        "manufacturer": printer.manufacturer,
        "model": printer.model,
        "technology": printer.technology,
        "active": printer.active,
    }


# --- Endpoints ------------------------------------------------------------------

v1 = Router(tags=["site"])


@v1.get("/whoami", response={200: WhoAmIOut, 401: Problem})
def whoami(request):
    """Which site, member and scope the token stands for."""
    token: ApiToken = request.auth
    return {
        "site": {"code": token.site.code, "name": token.site.name},
        "user": token.user.email,
        "scope": token.scope,
        "can_write": services.token_can_write(token),
        "token_name": token.name,
        "token_prefix": token.prefix,
        "api_version": __version__,
    }


@v1.get("/printers", response={200: list[PrinterOut], 401: Problem})
def list_printers(request):
    """The site's printer inventory; cases refer to printers by label."""
    token: ApiToken = request.auth
    return [printer_out(p) for p in Printer.objects.filter(site=token.site)]


@v1.post(
    "/printers",
    response={201: PrinterOut, 401: Problem, 403: Problem, 422: Problem},
)
def add_printer(request, payload: PrinterIn):
    """Add a printer to the site's inventory (write token)."""
    token = require_write(request)
    try:
        printer = services.add_printer(
            token.site,
            label=payload.label,
            manufacturer=payload.manufacturer,
            model=payload.model,
            technology=payload.technology,
            actor=token.user,
            request=request,
        )
    except SiteError as exc:
        return problem(
            request,
            422,
            "Unprocessable Content",
            str(exc),
            [{"field": "label", "code": "invalid", "message": str(exc)}],
        )
    return Status(201, printer_out(printer))


api.add_router("/v1/", v1)
api.add_router("/v1/", cases_router)
api.add_router("/v1/", imports_router)
api.add_router("/v1/", intake_router)
api.add_router("/v1/", questionnaires_router)
api.add_router("/v1/", fhir_router)


class StatusOut(Schema):
    status: str
    version: str
    time: datetime


@api.get("/health", auth=None, response=StatusOut, tags=["service"])
def health(request):
    """Liveness check for load balancers; no authentication."""
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok", "version": __version__, "time": timezone.now()}
