"""A case as a FHIR Bundle, for site software that speaks FHIR."""

from django.http import Http404
from ninja import Router

from registry3d.api.cases import NOT_FOUND, _own_case
from registry3d.api.common import Problem, problem
from registry3d.fhir.common import fhir_response
from registry3d.fhir.resources import bundle

router = Router(tags=["fhir"])


@router.get(
    "/cases/{case_uid}/fhir",
    response={401: Problem, 404: Problem},
    openapi_extra={
        "responses": {
            "200": {
                "description": "A FHIR R4B (4.3.0) Bundle of type collection",
                "content": {"application/fhir+json": {"schema": {"type": "object"}}},
            }
        }
    },
)
def case_bundle(request, case_uid: str):
    """One case of the token's site as a FHIR Bundle (Patient, Procedure, Device...)."""
    try:
        case = _own_case(request, case_uid)
    except Http404:
        return problem(request, 404, "Not Found", NOT_FOUND)
    return fhir_response(bundle(case))
