"""Case endpoints: create, read, list, replace, patch and withdraw a site's cases.

Every write goes through ``registry3d.cases.services``; a token only ever
sees its own site's cases, and another site's case answers 404.
"""

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any, Literal

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from registry3d.api.common import Problem, problem, require_write
from registry3d.cases import services
from registry3d.cases.errors import CaseExists, InvalidCase, NotAllowed, StaleVersion
from registry3d.cases.models import Case
from registry3d.dictionary import registry
from registry3d.dictionary.generators import json_schema
from registry3d.lib.pseudonym import KEY_RE

router = Router(tags=["cases"])

CASE_UID = r"^[A-Za-z0-9_-]{1,64}$"
KEY_PATTERN = KEY_RE.pattern


# Unknown fields are refused, not ignored: a body of other fields (a typo'd
# "dta", another resource) would otherwise replace a case with an empty draft.
STRICT = ConfigDict(extra="forbid")


class CaseIn(Schema):
    model_config = STRICT

    case_uid: str = Field(
        description="The site's own case identifier (letters, digits, - _)",
        # Documented, not enforced here: the write path checks it and names the problem.
        json_schema_extra={"pattern": CASE_UID, "maxLength": 64, "examples": ["CASE-2026-001"]},
    )
    patient_key: str | None = Field(
        None,
        description="Pseudonymous patient key from 'registry3d pseudonymize' (64 hexadecimal "
        "digits); never an MRN",
        # Documented, not enforced here: the write path checks it and names the problem.
        json_schema_extra={"pattern": KEY_PATTERN},
    )
    status: Literal["draft", "submitted"] = "draft"
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Case data: elements of the data dictionary (GET /api/v1/dictionary)",
    )


class CaseReplace(Schema):
    model_config = STRICT

    patient_key: str | None = None
    status: Literal["draft", "submitted"] = "draft"
    data: dict[str, Any] = Field(default_factory=dict)


class CasePatch(Schema):
    model_config = STRICT

    patient_key: str | None = None
    status: Literal["draft", "submitted"] | None = None
    data: dict[str, Any] = Field(
        default_factory=dict, description="Elements to change; null removes an element"
    )


class WithdrawIn(Schema):
    reason: str = Field(min_length=3, max_length=500)


class CaseOut(Schema):
    case_uid: str
    code: str
    site: str
    patient_key: str
    status: str
    version: int
    dictionary_version: str
    data: dict[str, Any]
    withdrawn_reason: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    warnings: list[dict] = []


class CasePage(Schema):
    items: list[CaseOut]
    next_cursor: str | None


def case_out(case: Case, warnings=()) -> dict:
    return {
        "case_uid": case.case_uid,
        "code": str(case.code),
        "site": case.site.code,
        "patient_key": case.patient_key,
        "status": case.status,
        "version": case.version,
        "dictionary_version": case.dictionary_version,
        "data": case.data,
        "withdrawn_reason": case.withdrawn_reason,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "submitted_at": case.submitted_at,
        "warnings": [w.as_dict() for w in warnings],
    }


def _with_etag(response, case: Case):
    response["ETag"] = f'"{case.version}"'
    return response


def _if_match(request: HttpRequest) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidCase(
            [
                services.Problem(
                    "If-Match",
                    "bad_format",
                    'If-Match must be the case version in quotes, e.g. "3"',
                )
            ]
        )
    return int(text)


def _field(path: str) -> str:
    return (
        path
        if path in ("case_uid", "patient_key", "status", "reason", "If-Match")
        else f"data.{path}"
        if path and path != "data"
        else "data"
    )


def _refusal(request, exc):
    """Turn a refusal of the write path into its problem answer."""
    if isinstance(exc, InvalidCase):
        return problem(
            request,
            422,
            "Unprocessable Content",
            f"The case has {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}.",
            [{"field": _field(p.path), "code": p.code, "message": p.message} for p in exc.problems],
        )
    if isinstance(exc, StaleVersion):
        return problem(
            request,
            412,
            "Precondition Failed",
            str(exc),
            [
                {
                    "field": f"data.{path}" if path != "patient_key" else path,
                    "code": "changed",
                    "message": f"now {json.dumps(new)}, was {json.dumps(old)}",
                }
                for path, (old, new) in exc.changes.items()
            ],
            headers={"ETag": f'"{exc.case.version}"'},
        )
    if isinstance(exc, CaseExists):
        return problem(request, 409, "Conflict", str(exc))
    if isinstance(exc, NotAllowed):
        return problem(request, 409, "Conflict", str(exc))
    raise exc


def _own_case(request, case_uid: str) -> Case:
    case = (
        Case.objects.filter(site=request.auth.site, case_uid=case_uid)
        .select_related("site")
        .first()
    )
    if case is None:
        raise Http404
    return case


NOT_FOUND = "No case with this ID at the token's site"
# The problem answers a write may get, for the OpenAPI schema.
REFUSALS = {401: Problem, 403: Problem, 404: Problem, 409: Problem, 412: Problem, 422: Problem}


def _case_links(*statuses: int) -> dict:
    """OpenAPI links from an answer carrying a case to what can be done with it next.

    Clients (and schemathesis' stateful tests) follow them with the answer's
    ``case_uid``.
    """
    uid = {"case_uid": "$response.body#/case_uid"}
    links = {
        name: {"operationId": f"registry3d_api_{operation}", "parameters": uid, "description": why}
        for name, operation, why in (
            ("GetCase", "cases_get_case", "Read the case"),
            ("ReplaceCase", "cases_put_case", "Replace the case"),
            ("PatchCase", "cases_patch_case", "Change some elements of the case"),
            ("WithdrawCase", "cases_withdraw", "Withdraw the case"),
            ("GetCaseBundle", "fhir_case_bundle", "Read the case as a FHIR Bundle"),
            ("GetQuestionnaire", "questionnaires_get_questionnaire", "Its questionnaire"),
        )
    }
    # Integer keys, as django-ninja's own: openapi_extra is merged into them.
    return {"responses": {status: {"links": links} for status in statuses}}


@router.get("/dictionary", response={200: dict, 401: Problem})
def dictionary(request):
    """The current data dictionary: version, sections and the JSON Schema of case data."""
    d = registry.current().dictionary
    return {
        "name": d.name,
        "version": d.version,
        "released": d.released,
        "sections": [
            {
                "id": s.id,
                "label": s.label,
                "questionnaire": s.questionnaire,
                "elements": [e.name for e in s.elements],
            }
            for s in d.sections
        ],
        "schema": json_schema(d),
    }


@router.post(
    "/cases",
    response={201: CaseOut, 401: Problem, 403: Problem, 409: Problem, 422: Problem},
    openapi_extra=_case_links(201),
)
def create_case(request, payload: CaseIn):
    """Record a new case (draft or submitted); its case_uid must be new at the site."""
    token = require_write(request)
    try:
        result = services.save_case(
            token.site,
            case_uid=payload.case_uid,
            data=payload.data,
            status=payload.status,
            patient_key=payload.patient_key,
            actor=token.user,
            request=request,
            create_only=True,
        )
    except (InvalidCase, CaseExists, NotAllowed, StaleVersion) as exc:
        return _refusal(request, exc)
    response = Status(201, case_out(result.case, result.warnings))
    return response


class ListFilters(Schema):
    status: Literal["draft", "submitted", "withdrawn"] | None = None
    year: int | None = Field(None, ge=2000, le=2100)
    updated_since: datetime | None = None
    cursor: str | None = None
    limit: int = Field(100, ge=1, le=500)


def _as_utc(moment: datetime) -> datetime | None:
    """The moment in UTC, or None if no database could hold it (odd offsets, far years)."""
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return moment if 1900 <= moment.year <= 9999 else None


def _encode_cursor(case: Case) -> str:
    raw = json.dumps([case.updated_at.isoformat(), case.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str):
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        stamp, pk = json.loads(raw)
        moment = _as_utc(datetime.fromisoformat(stamp))
        return (moment, int(pk)) if moment is not None else None
    except (binascii.Error, ValueError, TypeError, json.JSONDecodeError):
        return None


@router.get("/cases", response={200: CasePage, 401: Problem, 422: Problem})
def list_cases(request, filters: Query[ListFilters]):
    """The site's cases, oldest change first; follow next_cursor for the next page."""
    cases = Case.objects.filter(site=request.auth.site).select_related("site")
    if filters.status:
        cases = cases.filter(status=filters.status)
    if filters.year:
        cases = cases.filter(case_month__startswith=f"{filters.year}-")
    if filters.updated_since:
        since = _as_utc(filters.updated_since)
        if since is None:
            return problem(
                request,
                422,
                "Unprocessable Content",
                "updated_since is not usable.",
                [
                    {
                        "field": "updated_since",
                        "code": "out_of_range",
                        "message": "Use a date and time from 1900 on, e.g. 2026-07-01T00:00:00Z",
                    }
                ],
            )
        cases = cases.filter(updated_at__gte=since)
    if filters.cursor:
        position = _decode_cursor(filters.cursor)
        if position is None:
            return problem(
                request,
                422,
                "Unprocessable Content",
                "The cursor is not valid.",
                [
                    {
                        "field": "cursor",
                        "code": "bad_format",
                        "message": "Use next_cursor from the previous page as it is",
                    }
                ],
            )
        stamp, pk = position
        from django.db.models import Q

        cases = cases.filter(Q(updated_at__gt=stamp) | Q(updated_at=stamp, pk__gt=pk))
    page = list(cases.order_by("updated_at", "pk")[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return {
        "items": [case_out(c) for c in page],
        "next_cursor": _encode_cursor(page[-1]) if more else None,
    }


@router.get("/cases/{case_uid}", response={200: CaseOut, 401: Problem, 404: Problem})
def get_case(request, case_uid: str, response: HttpResponse):
    """One case of the token's site; the ETag is its version."""
    try:
        case = _own_case(request, case_uid)
    except Http404:
        return problem(request, 404, "Not Found", NOT_FOUND)
    _with_etag(response, case)
    return case_out(case)


@router.put(
    "/cases/{case_uid}",
    response={
        200: CaseOut,
        201: CaseOut,
        401: Problem,
        403: Problem,
        409: Problem,
        412: Problem,
        422: Problem,
    },
    openapi_extra=_case_links(200, 201),
)
def put_case(request, case_uid: str, payload: CaseReplace, response: HttpResponse):
    """Create or replace a case. Sending the same body again changes nothing.

    With ``If-Match: "<version>"`` the change is refused (412) if the case
    has moved on, and nothing changes.
    """
    token = require_write(request)
    try:
        expected = _if_match(request)
        result = services.save_case(
            token.site,
            case_uid=case_uid,
            data=payload.data,
            status=payload.status,
            patient_key=payload.patient_key,
            actor=token.user,
            request=request,
            expected_version=expected,
        )
    except (InvalidCase, CaseExists, NotAllowed, StaleVersion) as exc:
        return _refusal(request, exc)
    _with_etag(response, result.case)
    return Status(201 if result.created else 200, case_out(result.case, result.warnings))


@router.patch(
    "/cases/{case_uid}",
    response={200: CaseOut, **REFUSALS},
    openapi_extra=_case_links(200),
)
def patch_case(request, case_uid: str, payload: CasePatch, response: HttpResponse):
    """Change some elements of a case (null removes one); same rules as PUT."""
    token = require_write(request)
    try:
        case = _own_case(request, case_uid)
    except Http404:
        return problem(request, 404, "Not Found", NOT_FOUND)
    try:
        result = services.patch_case(
            case,
            payload.data,
            status=payload.status or case.status,
            patient_key=payload.patient_key,
            actor=token.user,
            request=request,
            expected_version=_if_match(request),
        )
    except (InvalidCase, CaseExists, NotAllowed, StaleVersion) as exc:
        return _refusal(request, exc)
    _with_etag(response, result.case)
    return case_out(result.case, result.warnings)


@router.post(
    "/cases/{case_uid}/withdraw",
    response={200: CaseOut, **REFUSALS},
)
def withdraw(request, case_uid: str, payload: WithdrawIn, response: HttpResponse):
    """Withdraw a case from the registry, with a reason; it stays on record."""
    token = require_write(request)
    try:
        case = _own_case(request, case_uid)
    except Http404:
        return problem(request, 404, "Not Found", NOT_FOUND)
    try:
        case = services.withdraw_case(
            case,
            payload.reason,
            actor=token.user,
            request=request,
            expected_version=_if_match(request),
        )
    except (InvalidCase, NotAllowed, StaleVersion) as exc:
        return _refusal(request, exc)
    _with_etag(response, case)
    return case_out(case)
