"""The physician questionnaire of a case: site software sends it and reads its answers."""

from datetime import datetime
from typing import Literal

from django.http import Http404
from ninja import Router, Schema, Status
from pydantic import Field

from registry3d.api.cases import NOT_FOUND, _own_case
from registry3d.api.common import Problem, problem, require_write
from registry3d.questionnaires import services
from registry3d.questionnaires.models import QuestionnaireRequest, Specialty

router = Router(tags=["questionnaires"])


class QuestionnaireIn(Schema):
    """Send to a physician (``email`` and ``specialty``), or set it aside (``status``)."""

    email: str | None = Field(None, max_length=254, description="The physician's work address")
    specialty: Literal[tuple(Specialty.values)] | None = None  # type: ignore[valid-type]
    status: Literal["sent", "ask_later", "not_applicable"] = "sent"


class QuestionnaireOut(Schema):
    case_uid: str
    status: str
    email: str
    specialty: str
    sent_at: datetime | None
    expires_at: datetime | None
    reminders_sent: int
    opened_at: datetime | None
    answered_at: datetime | None
    answers: dict | None = Field(None, description="The physician's answers, once answered")


def questionnaire_out(questionnaire: QuestionnaireRequest) -> dict:
    response = getattr(questionnaire, "response", None) if questionnaire.pk else None
    return {
        "case_uid": questionnaire.case.case_uid,
        "status": questionnaire.status,
        "email": questionnaire.email,
        "specialty": questionnaire.specialty,
        "sent_at": questionnaire.sent_at,
        "expires_at": questionnaire.expires_at,
        "reminders_sent": questionnaire.reminders_sent,
        "opened_at": questionnaire.opened_at,
        "answered_at": questionnaire.answered_at,
        "answers": response.answers if response is not None else None,
    }


@router.post(
    "/cases/{case_uid}/questionnaire",
    response={
        201: QuestionnaireOut,
        401: Problem,
        403: Problem,
        404: Problem,
        409: Problem,
        422: Problem,
    },
)
def send_questionnaire(request, case_uid: str, payload: QuestionnaireIn):
    """E-mail the physician a link to the case's questionnaire, or record why not.

    Sending again before an answer sends a new link for a new period.
    """
    token = require_write(request)
    try:
        case = _own_case(request, case_uid)
    except Http404:
        return problem(request, 404, "Not Found", NOT_FOUND)
    try:
        if payload.status == "sent":
            questionnaire = services.send(
                case,
                email=payload.email or "",
                specialty=payload.specialty or "",
                actor=token.user,
                request=request,
            )
        else:
            questionnaire = services.set_aside(
                case, payload.status, actor=token.user, request=request
            )
    except services.QuestionnaireError as exc:
        return problem(request, 409, "Conflict", str(exc))
    return Status(201, questionnaire_out(questionnaire))


@router.get(
    "/cases/{case_uid}/questionnaire",
    response={200: QuestionnaireOut, 401: Problem, 404: Problem},
)
def get_questionnaire(request, case_uid: str):
    """Where the case's questionnaire stands, with the answers once given."""
    try:
        case = _own_case(request, case_uid)
    except Http404:
        return problem(request, 404, "Not Found", NOT_FOUND)
    questionnaire = services.for_case(case)
    if questionnaire is None:
        return problem(request, 404, "Not Found", "No questionnaire was sent for this case")
    return questionnaire_out(questionnaire)
