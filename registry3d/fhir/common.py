"""What every FHIR module shares: the version, systems, ids, answers and outcomes.

The registry speaks FHIR R4B (4.3.0), the last release of the R4 line, whose
models in ``fhir.resources.R4B`` run on pydantic v2 like the rest of the
registry (``fhir.resources`` 8 keeps plain R4 only for pydantic v1).
"""

import importlib
import json
import uuid
from functools import cache

from django.http import HttpResponse
from pydantic import ValidationError

FHIR_VERSION = "4.3.0"
# The FHIR mime type with its version parameter (FHIR http.html#version-parameter).
CONTENT_TYPE = "application/fhir+json; fhirVersion=4.3"

# Canonical addresses: stable names, whatever host a registry runs on (as the
# JSON Schema's $id is).
CANONICAL = "https://registry3d.org/fhir"
CASE_QUESTIONNAIRE = "registry3d-case"
PHYSICIAN_QUESTIONNAIRE = "registry3d-physician"
EXTENSION = CANONICAL + "/StructureDefinition/"
CODE_SYSTEM = CANONICAL + "/CodeSystem/"
ELEMENT_SYSTEM = CODE_SYSTEM + "element"  # codes are dictionary element paths

UCUM = "http://unitsofmeasure.org"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# External code systems of the dictionary's ``code`` elements and value sets.
SYSTEMS = {"ICD-10-CM": ICD10CM, "CPT": CPT}
VALUE_SET_SYSTEMS = {"cpt_code": CPT}

CASE_UID_SYSTEM = "urn:registry3d:case-uid"
# Resource ids are name-based UUIDs under this namespace, from the case's
# random ``code``: stable from one export to the next, and telling nothing.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CANONICAL)


def questionnaire_url(name: str) -> str:
    return f"{CANONICAL}/Questionnaire/{name}"


def case_uid_system(site_code: str) -> str:
    return f"urn:registry3d:site:{site_code}:case-uid"


def patient_key_system(site_code: str) -> str:
    return f"urn:registry3d:site:{site_code}:patient-key"


def value_set_system(value_set_name: str) -> str:
    return VALUE_SET_SYSTEMS.get(value_set_name, CODE_SYSTEM + value_set_name)


def resource_id(case_code, *parts) -> str:
    """A stable id for one resource of a case, e.g. ``resource_id(code, "Device", 2)``."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join([str(case_code), *map(str, parts)])))


def fhir_response(resource: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(resource, ensure_ascii=False), status=status, content_type=CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- OperationOutcome ------------------------------------------------------------------------


def issue(message: str, expression: str = "", code: str = "invalid", severity="error") -> dict:
    """One OperationOutcome issue; ``expression`` is a FHIRPath to the bad part."""
    out = {"severity": severity, "code": code, "details": {"text": message}}
    if expression:
        out["expression"] = [expression]
    return out


def outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_response(status: int, issues: list[dict]) -> HttpResponse:
    return fhir_response(outcome(issues), status=status)


# --- Validation with fhir.resources ------------------------------------------------------------


@cache
def model_of(resource_type: str):
    """The ``fhir.resources.R4B`` class of a resource type, or None if there is none."""
    if not resource_type.isalpha():
        return None
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    except ImportError:
        return None
    return getattr(module, resource_type, None)


def fhirpath(resource_type: str, loc: tuple) -> str:
    """Turn a pydantic error location into a FHIRPath: ``Bundle.entry[0].resource``."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("__root__", "resource_type"):
            path += f".{part}"
    return path


def validation_issues(resource_type: str, exc: ValidationError) -> list[dict]:
    issues = []
    for error in exc.errors(include_url=False):
        message = error.get("msg", "invalid value").split("\n")[0].strip()
        issues.append(issue(f"Not valid FHIR: {message}", fhirpath(resource_type, error["loc"])))
    return issues


def validated(resource: dict) -> dict:
    """Return the resource after fhir.resources has read it; raise ValueError if it cannot.

    Everything the registry publishes passes through here (or, for bulk
    files, is checked by the tests), so a mapping that drifts from FHIR fails
    loudly instead of sending out something other systems refuse.
    """
    model = model_of(resource["resourceType"])
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise ValueError(f"registry3d built an invalid {resource['resourceType']}: {exc}") from exc
    return resource
