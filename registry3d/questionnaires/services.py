"""Everything that sends, opens, answers, reminds and counts physician questionnaires.

Pages, the API, the command line and the reminder job call these functions
and nothing else; each change is audited here.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.http import HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from registry3d.accounts.services import absolute_url
from registry3d.accounts.tasks import send_email
from registry3d.audit.digests import digest_values
from registry3d.audit.services import record
from registry3d.cases import services as cases
from registry3d.cases.errors import InvalidCase, NotAllowed
from registry3d.cases.models import Case, CaseStatus
from registry3d.dictionary import forms, registry
from registry3d.dictionary.validation import Problem
from registry3d.lib.net import client_ip
from registry3d.questionnaires.models import (
    LinkFailure,
    QuestionnaireLink,
    QuestionnaireRequest,
    QuestionnaireResponse,
    RequestStatus,
    Specialty,
)

TOKEN_BYTES = 32  # 256 bits


class QuestionnaireError(Exception):
    """A site's request that cannot be done, in words for the page or the API."""


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def for_case(case: Case) -> QuestionnaireRequest | None:
    return QuestionnaireRequest.objects.filter(case=case).first()


# --- What the site does ------------------------------------------------------------------


def send(
    case: Case,
    *,
    email: str,
    specialty: str,
    actor=None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> QuestionnaireRequest:
    """Ask the physician at ``email`` about a submitted case; e-mail them a link.

    Sending again to a case not yet answered replaces the address and starts
    a new period; links already sent keep working until it ends.
    """
    now = now or timezone.now()
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise QuestionnaireError(
            "This is not an e-mail address; give the physician's work address"
        ) from None
    if specialty not in Specialty.values:
        raise QuestionnaireError(
            f"Unknown specialty; expected one of: {', '.join(Specialty.values)}"
        )
    with transaction.atomic():
        case = _locked_case(case)
        existing = _locked_request(case)
        if existing is not None and existing.status == RequestStatus.ANSWERED:
            raise QuestionnaireError(f"The questionnaire of case {case.case_uid} is answered")
        questionnaire = existing or QuestionnaireRequest(site=case.site, case=case)
        questionnaire.status = RequestStatus.SENT
        questionnaire.email = email
        questionnaire.specialty = specialty
        questionnaire.created_by = questionnaire.created_by or actor
        questionnaire.sent_at = now
        questionnaire.expires_at = now + timedelta(days=settings.REGISTRY3D_QUESTIONNAIRE_DAYS)
        questionnaire.reminders_sent = 0
        questionnaire.closed_at = None
        questionnaire.save()
        kind = "resent" if existing is not None and existing.sent_at else "first"
        _send_link(questionnaire, kind, request, now)
        _audit(
            "questionnaire.sent",
            case,
            actor=actor,
            request=request,
            changes={"to": email, "specialty": specialty, "link": kind},
        )
    return questionnaire


def set_aside(
    case: Case, status: str, *, actor=None, request: HttpRequest | None = None
) -> QuestionnaireRequest:
    """Record that the site will ask later, or that no physician can be asked."""
    if status not in (RequestStatus.ASK_LATER, RequestStatus.NOT_APPLICABLE):
        raise QuestionnaireError("Unknown choice; expected ask_later or not_applicable")
    with transaction.atomic():
        case = _locked_case(case)
        questionnaire = _locked_request(case) or QuestionnaireRequest(site=case.site, case=case)
        if questionnaire.status == RequestStatus.ANSWERED:
            raise QuestionnaireError(f"The questionnaire of case {case.case_uid} is answered")
        questionnaire.status = status
        questionnaire.created_by = questionnaire.created_by or actor
        questionnaire.closed_at = timezone.now()
        questionnaire.save()
        _audit(
            f"questionnaire.{status}",
            case,
            actor=actor,
            request=request,
        )
    return questionnaire


def resend(
    case: Case, *, actor=None, request: HttpRequest | None = None, now: datetime | None = None
) -> QuestionnaireRequest:
    """Send the physician a new link now, to the same address, for a new period."""
    questionnaire = for_case(case)
    if questionnaire is None or not questionnaire.email:
        raise QuestionnaireError(f"No physician was asked about case {case.case_uid} yet")
    return send(
        case,
        email=questionnaire.email,
        specialty=questionnaire.specialty,
        actor=actor,
        request=request,
        now=now,
    )


def cancel(case: Case, *, actor=None, request: HttpRequest | None = None) -> QuestionnaireRequest:
    """Stop the links of a sent questionnaire; no reminders follow."""
    with transaction.atomic():
        case = _locked_case(case)
        questionnaire = _locked_request(case)
        if questionnaire is None or questionnaire.status != RequestStatus.SENT:
            raise QuestionnaireError(f"Case {case.case_uid} has no questionnaire waiting")
        questionnaire.status = RequestStatus.CANCELLED
        questionnaire.closed_at = timezone.now()
        questionnaire.save(update_fields=["status", "closed_at"])
        _audit(
            "questionnaire.cancelled",
            case,
            actor=actor,
            request=request,
        )
    return questionnaire


def _audit(action: str, case: Case, **details) -> None:
    """Record a questionnaire event under its case, as every one of them is."""
    record(action, site=case.site, object_type="case", object_id=case.case_uid, **details)


def _locked_case(case: Case) -> Case:
    locked = Case.objects.select_for_update(of=("self",)).select_related("site").get(pk=case.pk)
    if locked.status != CaseStatus.SUBMITTED:
        raise QuestionnaireError(
            f"Case {locked.case_uid} is {locked.get_status_display().lower()}; "
            "only a submitted case can have a questionnaire"
        )
    return locked


def _locked_request(case: Case) -> QuestionnaireRequest | None:
    return QuestionnaireRequest.objects.select_for_update().filter(case=case).first()


# --- E-mail ----------------------------------------------------------------------------------


def context_of(questionnaire: QuestionnaireRequest) -> dict:
    """What the physician may see of the case: nothing that identifies the patient."""
    dictionary = registry.current().dictionary
    data = questionnaire.case.data

    def label(name: str) -> str:
        element = dictionary.elements.get(name)
        value = data.get(name) or ""
        if element is not None and element.value_set is not None and value:
            return element.value_set.label_of(value)
        return str(value)

    return {
        "site_name": questionnaire.site.name,
        "object_type": label("object_type"),
        "organ_system": label("organ_system"),
        "case_month": questionnaire.case.case_month,
        "expires_at": questionnaire.expires_at,
    }


def _send_link(
    questionnaire: QuestionnaireRequest, kind: str, request: HttpRequest | None, now: datetime
) -> None:
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    QuestionnaireLink.objects.create(request=questionnaire, token_hash=hash_token(raw), kind=kind)
    questionnaire.last_sent_at = now
    questionnaire.save(update_fields=["last_sent_at"])
    context = {
        **context_of(questionnaire),
        "link": absolute_url(reverse("questionnaire_link", args=[raw]), request),
        "reminder": kind == "reminder",
        "registry_name": settings.REGISTRY3D_NAME,
    }
    subject = (
        "Reminder: " if kind == "reminder" else ""
    ) + f"Two minutes on a 3D printed {context['object_type'].lower() or 'model'} you used"
    text = render_to_string("questionnaires/email/request.txt", context)
    html = render_to_string("questionnaires/email/request.html", context)
    to = questionnaire.email
    # Sent only once the request is stored: a refused change sends nothing.
    transaction.on_commit(
        lambda: send_email.enqueue(to=[to], subject=subject, text=text, html=html)
    )


# --- What the physician does -----------------------------------------------------------------


@dataclass
class Opened:
    """What a link leads to: ``open`` (the form), ``answered`` (thanks) or ``invalid``."""

    state: str
    questionnaire: QuestionnaireRequest | None = None


def open_link(raw: str, *, now: datetime | None = None) -> Opened:
    """Find the questionnaire behind a link; note the first opening.

    Unknown, expired and cancelled links look the same to the caller.
    """
    now = now or timezone.now()
    if not raw or len(raw) > 100:
        return Opened("invalid")
    link = (
        QuestionnaireLink.objects.select_related("request__case", "request__site")
        .filter(token_hash=hash_token(raw))
        .first()
    )
    if link is None:
        return Opened("invalid")
    return _state(link.request, now)


def open_for_user(user, code, *, now: datetime | None = None) -> Opened:
    """The questionnaire ``code`` if it was sent to the logged-in user's address."""
    questionnaire = (
        QuestionnaireRequest.objects.select_related("case", "site")
        .filter(code=code, email__iexact=user.email)
        .first()
    )
    if questionnaire is None:
        return Opened("invalid")
    return _state(questionnaire, now or timezone.now())


def _state(questionnaire: QuestionnaireRequest, now: datetime) -> Opened:
    if questionnaire.status == RequestStatus.ANSWERED:
        return Opened("answered", questionnaire)
    if questionnaire.status != RequestStatus.SENT:
        return Opened("invalid")
    if questionnaire.expires_at is not None and questionnaire.expires_at <= now:
        _expire(questionnaire.pk, now)
        return Opened("invalid")
    if questionnaire.opened_at is None:
        QuestionnaireRequest.objects.filter(pk=questionnaire.pk, opened_at__isnull=True).update(
            opened_at=now
        )
        questionnaire.opened_at = now
    return Opened("open", questionnaire)


def questions(row: dict | None = None, problems: list[Problem] = ()) -> list:
    """The questionnaire's sections as form sections, with values and problems in place."""
    dictionary = registry.current().dictionary
    ids = [s.id for s in dictionary.questionnaire_sections()]
    return forms.build(dictionary, row or {}, problems, sections=ids)


def read_answers(post: QueryDict) -> tuple[dict, dict, list[Problem]]:
    """Return (the row as posted, the answers, problems) for the questionnaire's elements only."""
    dictionary = registry.current().dictionary
    names = {e.name for s in dictionary.questionnaire_sections() for e in s.elements}
    row, data, problems = forms.read_post(dictionary, post)
    row = {k: v for k, v in row.items() if k in names}
    answers = {k: v for k, v in data.items() if k in names}
    problems = [p for p in problems if p.path.split("[")[0].split(".")[0] in names]
    problems += registry.current().validator.validate_questionnaire(answers, complete=True)
    return row, answers, problems


def answer(
    questionnaire: QuestionnaireRequest,
    answers: dict,
    *,
    user=None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> str:
    """Store the physician's checked answers once and add them to the case.

    Returns ``answered`` when these answers were stored, ``already`` when the
    questionnaire had been answered before (a second tab, a replayed post),
    ``invalid`` when it closed meanwhile.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            locked = (
                QuestionnaireRequest.objects.select_for_update()
                .select_related("case", "site")
                .get(pk=questionnaire.pk)
            )
            if locked.status == RequestStatus.ANSWERED:
                return "already"
            if locked.status != RequestStatus.SENT or (
                locked.expires_at is not None and locked.expires_at <= now
            ):
                return "invalid"
            response = QuestionnaireResponse.objects.create(
                request=locked,
                answers=answers,
                answered_by=user if user is not None and user.is_authenticated else None,
            )
            outcome = _add_to_case(locked, answers, request)
            response.case_version = outcome.get("version")
            response.case_problem = outcome.get("case_not_updated", "")
            response.save(update_fields=["case_version", "case_problem"])
            locked.status = RequestStatus.ANSWERED
            locked.answered_at = now
            locked.save(update_fields=["status", "answered_at"])
            _audit(
                "questionnaire.answered",
                locked.case,
                request=request,
                actor=user if user is not None and user.is_authenticated else None,
                actor_label="" if user is not None and user.is_authenticated else "physician link",
                changes={"answers": digest_values(answers), **outcome},
            )
    except IntegrityError:
        return "already"  # the other tab's answers were stored first
    return "answered"


def _add_to_case(questionnaire: QuestionnaireRequest, answers: dict, request) -> dict:
    """Write the answers into the case through the one write path; say what happened."""
    try:
        with transaction.atomic():
            result = cases.patch_case(
                questionnaire.case,
                answers,
                request=request,
                note="physician questionnaire",
            )
    except (InvalidCase, NotAllowed) as exc:
        # The physician's answers are kept on the response all the same; the
        # site sees why the case did not take them.
        return {"case_not_updated": str(exc)[:500]}
    return {"version": result.case.version}


# --- Reminders and expiry --------------------------------------------------------------------


def send_reminders(now: datetime | None = None) -> dict[str, int]:
    """Expire what is past its period; remind what waits (after 7 and 14 days, at most two).

    Safe to run often and from two processes at once: each request is
    locked, checked again and changed in its own transaction.
    """
    now = now or timezone.now()
    counts = {"expired": 0, "reminded": 0}
    due_to_expire = QuestionnaireRequest.objects.filter(
        status=RequestStatus.SENT, expires_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due_to_expire):
        counts["expired"] += _expire(pk, now)
    days = settings.REGISTRY3D_QUESTIONNAIRE_REMINDER_DAYS
    waiting = QuestionnaireRequest.objects.filter(
        status=RequestStatus.SENT, reminders_sent__lt=len(days), expires_at__gt=now
    ).values_list("pk", "sent_at", "reminders_sent")
    for pk, sent_at, sent_count in list(waiting):
        if sent_at is not None and sent_at + timedelta(days=days[sent_count]) <= now:
            counts["reminded"] += _remind(pk, now)
    return counts


def _expire(pk: int, now: datetime) -> int:
    with transaction.atomic():
        questionnaire = (
            QuestionnaireRequest.objects.select_for_update()
            .select_related("case", "site")
            .filter(pk=pk, status=RequestStatus.SENT, expires_at__lte=now)
            .first()
        )
        if questionnaire is None:
            return 0
        questionnaire.status = RequestStatus.EXPIRED
        questionnaire.closed_at = now
        questionnaire.save(update_fields=["status", "closed_at"])
        _audit(
            "questionnaire.expired",
            questionnaire.case,
            actor_label="registry",
        )
    return 1


def _remind(pk: int, now: datetime) -> int:
    days = settings.REGISTRY3D_QUESTIONNAIRE_REMINDER_DAYS
    with transaction.atomic():
        questionnaire = (
            QuestionnaireRequest.objects.select_for_update()
            .select_related("case", "site")
            .filter(pk=pk, status=RequestStatus.SENT, expires_at__gt=now)
            .first()
        )
        if questionnaire is None or questionnaire.reminders_sent >= len(days):
            return 0
        due = questionnaire.sent_at + timedelta(days=days[questionnaire.reminders_sent])
        if due > now:
            return 0
        questionnaire.reminders_sent = F("reminders_sent") + 1
        questionnaire.save(update_fields=["reminders_sent"])
        questionnaire.refresh_from_db(fields=["reminders_sent"])
        _send_link(questionnaire, "reminder", None, now)
        _audit(
            "questionnaire.reminded",
            questionnaire.case,
            actor_label="registry",
            changes={"reminder": questionnaire.reminders_sent},
        )
    return 1


# --- Guessing --------------------------------------------------------------------------------


def wait_seconds(request: HttpRequest, now: datetime | None = None) -> int:
    """Seconds this address must wait before opening links again (0: it may go on)."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    address = client_ip(request) or "unknown"
    failures = (
        LinkFailure.objects.filter(address=address, hour=hour).values_list("count", flat=True)
    ).first() or 0
    if failures < settings.REGISTRY3D_QUESTIONNAIRE_BAD_LINKS_PER_HOUR:
        return 0
    return max(1, int((hour + timedelta(hours=1) - now).total_seconds()))


def note_bad_link(request: HttpRequest, now: datetime | None = None) -> None:
    """Count an unknown or dead link opened from this address, and audit it."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    address = client_ip(request) or "unknown"
    with transaction.atomic():
        updated = LinkFailure.objects.filter(address=address, hour=hour).update(
            count=F("count") + 1
        )
        if not updated:
            try:
                with transaction.atomic():
                    LinkFailure.objects.create(address=address, hour=hour, count=1)
            except IntegrityError:  # another request made the row first
                LinkFailure.objects.filter(address=address, hour=hour).update(count=F("count") + 1)
        record("questionnaire.bad_link", request=request, actor_label="anonymous")
    LinkFailure.objects.filter(hour__lt=hour - timedelta(days=1)).delete()


# --- Counting ------------------------------------------------------------------------------


@dataclass
class Rates:
    sent: int
    opened: int
    answered: int
    expired: int
    waiting: int
    cancelled: int
    ask_later: int
    not_applicable: int

    @property
    def response_rate(self) -> float | None:
        """Answered among those sent, or None when none was sent."""
        return self.answered / self.sent if self.sent else None

    @property
    def response_percent(self) -> str:
        rate = self.response_rate
        return "–" if rate is None else f"{100 * rate:.0f}%"


def rates(site=None, since: datetime | None = None) -> Rates:
    """Response counts for a site (or the registry), of questionnaires sent since ``since``."""
    qs = QuestionnaireRequest.objects.all()
    if site is not None:
        qs = qs.filter(site=site)
    if since is not None:
        qs = qs.filter(Q(sent_at__gte=since) | Q(sent_at__isnull=True, created_at__gte=since))
    counts = qs.aggregate(
        sent=Count("pk", filter=Q(sent_at__isnull=False)),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        answered=Count("pk", filter=Q(status=RequestStatus.ANSWERED)),
        expired=Count("pk", filter=Q(status=RequestStatus.EXPIRED)),
        waiting=Count("pk", filter=Q(status=RequestStatus.SENT)),
        cancelled=Count("pk", filter=Q(status=RequestStatus.CANCELLED)),
        ask_later=Count("pk", filter=Q(status=RequestStatus.ASK_LATER)),
        not_applicable=Count("pk", filter=Q(status=RequestStatus.NOT_APPLICABLE)),
    )
    return Rates(**counts)


def open_for_physician(user):
    """The questionnaires sent to the logged-in user's address and still waiting."""
    return (
        QuestionnaireRequest.objects.select_related("case", "site")
        .filter(email__iexact=user.email, status=RequestStatus.SENT, expires_at__gt=timezone.now())
        .order_by("sent_at")
    )
