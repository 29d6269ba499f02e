"""Take a QuestionnaireResponse from site software into the registry.

A response to ``registry3d-case`` creates or replaces a case; one to
``registry3d-physician`` sets the physician's answers of an existing case.
Both go through the one write path (``cases.services.save_case`` and
``patch_case``), which validates against the dictionary, refuses patient
identifiers, keeps the history and writes the audit trail.
"""

from dataclasses import dataclass

from django.http import HttpRequest

from registry3d.cases import services as cases
from registry3d.cases.errors import CaseExists, InvalidCase, NotAllowed, StaleVersion
from registry3d.cases.models import Case
from registry3d.dictionary import registry
from registry3d.fhir import responses
from registry3d.fhir.common import CASE_QUESTIONNAIRE, PHYSICIAN_QUESTIONNAIRE, issue, validated
from registry3d.fhir.errors import CaseNotFound, InvalidResource
from registry3d.fhir.resources import response
from registry3d.sites.models import ApiToken

NOTE = "FHIR QuestionnaireResponse"


@dataclass
class Received:
    case: Case
    created: bool
    changed: bool
    resource: dict  # the response as stored, read back from the case
    warnings: list[dict]


def receive(token: ApiToken, body: bytes, request: HttpRequest | None = None) -> Received:
    """Store the answers of a posted QuestionnaireResponse in the token's site's case.

    Raises InvalidResource (400/422, with its issues), CaseNotFound, or
    NotAllowed/CaseExists from the write path; nothing is written then.
    """
    dictionary = registry.current().dictionary
    site = token.site
    parsed = responses.parse(body, site.code, dictionary)
    physician_names = {e.name for s in dictionary.questionnaire_sections() for e in s.elements}
    try:
        if parsed.questionnaire == CASE_QUESTIONNAIRE:
            existing = Case.objects.filter(site=site, case_uid=parsed.case_uid).first()
            # The case's response holds the lab's part; the physician's
            # answers stay as they are.
            kept = {
                k: v for k, v in (existing.data if existing else {}).items() if k in physician_names
            }
            result = cases.save_case(
                site,
                case_uid=parsed.case_uid,
                data={**parsed.data, **kept},
                status=parsed.status,
                patient_key=parsed.patient_key,
                actor=token.user,
                request=request,
                note=NOTE,
            )
        else:
            case = Case.objects.filter(site=site, case_uid=parsed.case_uid).first()
            if case is None:
                raise CaseNotFound("No case with this ID at the token's site")
            if parsed.patient_key not in (None, case.patient_key):
                raise InvalidResource(
                    422,
                    [
                        issue(
                            f"subject: this is not the patient key of case {case.case_uid}; "
                            "send the case's key, or leave the subject out",
                            "QuestionnaireResponse.subject.identifier",
                            code="value",
                        )
                    ],
                )
            problems = registry.current().validator.validate_questionnaire(
                parsed.data, complete=parsed.status == "submitted"
            )
            errors = [p for p in problems if p.severity == "error"]
            if errors:
                raise InvalidCase(errors)
            # A response is the physician's whole answer: what it leaves out
            # is cleared.
            changes = {name: parsed.data.get(name) for name in physician_names}
            result = cases.patch_case(
                case, changes, actor=token.user, request=request, note=f"{NOTE}, physician"
            )
    except InvalidCase as exc:
        raise InvalidResource(
            422, responses.problem_issues(exc.problems, parsed.questionnaire, dictionary)
        ) from None
    except StaleVersion as exc:  # no If-Match here, but a race can still lose
        raise InvalidResource(409, [issue(str(exc), code="conflict")]) from None
    stored = response(result.case, parsed.questionnaire, dictionary=dictionary)
    if stored is None:  # the physician cleared every answer
        stored = {
            "resourceType": "QuestionnaireResponse",
            "identifier": {"system": responses.CASE_UID_SYSTEM, "value": result.case.case_uid},
            "questionnaire": f"{responses.questionnaire_url(PHYSICIAN_QUESTIONNAIRE)}"
            f"|{dictionary.version}",
            "status": "completed",
        }
    return Received(
        result.case,
        result.created,
        result.changed,
        validated(stored),
        responses.problem_issues(result.warnings, parsed.questionnaire, dictionary),
    )


__all__ = ["CaseExists", "CaseNotFound", "InvalidResource", "NotAllowed", "Received", "receive"]
