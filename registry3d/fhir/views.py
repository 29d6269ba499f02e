"""The FHIR endpoints: Questionnaires and metadata (public), responses (write token).

Every answer is ``application/fhir+json``; every refusal an OperationOutcome.
"""

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from registry3d.api.middleware import json_depth
from registry3d.cases.errors import CaseExists, NotAllowed
from registry3d.dictionary import registry
from registry3d.dictionary.validation import shown_name
from registry3d.fhir import questionnaire, services
from registry3d.fhir.common import fhir_response, issue, outcome, outcome_response
from registry3d.fhir.errors import CaseNotFound, InvalidResource
from registry3d.lib.ratelimit import token_write_wait
from registry3d.sites.services import authenticate_token, token_can_write

_built: dict = {}


def _cached(kind: str, build):
    """Build once per loaded dictionary; a reload swaps the dictionary object."""
    dictionary = registry.current().dictionary
    key = (kind, id(dictionary))
    found = _built.get(key)
    if found is None or found[0] is not dictionary:
        found = (dictionary, build(dictionary))
        if len(_built) > 8:
            _built.clear()
        _built[key] = found
    return found[1]


@require_GET
def questionnaire_read(request, name: str):
    if name not in questionnaire.QUESTIONNAIRES:
        return outcome_response(
            404,
            [
                issue(
                    f"No Questionnaire {shown_name(name)}; there are "
                    + " and ".join(questionnaire.QUESTIONNAIRES),
                    code="not-found",
                )
            ],
        )
    return fhir_response(_cached(name, lambda d: questionnaire.build(d, name)))


@require_GET
def metadata(request):
    return fhir_response(_cached("metadata", questionnaire.capability_statement))


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else ""


# A token API like /api/: no session, so no CSRF to forge.
@csrf_exempt
@require_http_methods(["POST"])
def response_create(request):
    """Accept a case or physician QuestionnaireResponse from site software."""
    token = authenticate_token(_bearer(request))
    if token is None:
        response = outcome_response(
            401,
            [
                issue(
                    "A valid API token is required: send 'Authorization: Bearer <token>'. "
                    "The token may be missing, mistyped or revoked.",
                    code="login",
                )
            ],
        )
        response["WWW-Authenticate"] = 'Bearer realm="registry3d"'
        return response
    if not token_can_write(token):
        return outcome_response(
            403,
            [
                issue(
                    "This token may only read; ask the site manager for a write token",
                    code="forbidden",
                )
            ],
        )
    refusal = _limits(request, token)
    if refusal is not None:
        return refusal
    try:
        received = services.receive(token, request.body, request)
    except InvalidResource as exc:
        return outcome_response(exc.status, exc.issues)
    except CaseNotFound as exc:
        return outcome_response(404, [issue(str(exc), code="not-found")])
    except (NotAllowed, CaseExists) as exc:
        return outcome_response(409, [issue(str(exc), code="conflict")])
    status = 201 if received.created else 200
    headers = {"ETag": f'W/"{received.case.version}"'}
    if request.headers.get("Prefer", "").replace(" ", "") == "return=OperationOutcome":
        said = "stored" if received.changed else "unchanged"
        return fhir_response(
            outcome(
                [
                    issue(
                        f"Case {received.case.case_uid} {said}, version {received.case.version}",
                        code="informational",
                        severity="information",
                    ),
                    *received.warnings,
                ]
            ),
            status=status,
            headers=headers,
        )
    return fhir_response(received.resource, status=status, headers=headers)


def _limits(request, token):
    """The API's limits (body size, nesting, write rate), answered as OperationOutcomes."""
    limit = settings.REGISTRY3D_API_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return outcome_response(
            413,
            [
                issue(
                    f"The request body is {length} bytes; at most {limit} are accepted.",
                    code="too-long",
                )
            ],
        )
    wait = token_write_wait(token)
    if wait:
        response = outcome_response(
            429,
            [issue(f"Too many writes with this token; wait {wait} s and retry.", code="throttled")],
        )
        response["Retry-After"] = str(wait)
        return response
    depth = json_depth(request.body)
    if depth > settings.REGISTRY3D_API_MAX_JSON_DEPTH:
        return outcome_response(
            400,
            [
                issue(
                    f"The JSON body nests {depth} levels deep; at most "
                    f"{settings.REGISTRY3D_API_MAX_JSON_DEPTH} are accepted.",
                    code="structure",
                )
            ],
        )
    return None
