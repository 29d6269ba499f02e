"""Questionnaire pages: the physician's link (no log-in), their list, the site's actions."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registry3d.cases.services import get_case_for_user
from registry3d.questionnaires import services
from registry3d.questionnaires.models import Specialty


def _private(response, referrer: str = "no-referrer"):
    """Questionnaire pages are never cached or indexed, and never leak their address."""
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = referrer
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# No CSRF check: under "no-referrer" browsers post the form with "Origin: null",
# which Django's check refuses, and it would protect nothing here: the link
# itself is the only credential (the answers are not tied to a log-in), and
# whoever can forge the post already holds the link.
@csrf_exempt
@never_cache
def link(request, token):
    """The page a physician's e-mail links to: questions, thanks, or "not valid"."""
    wait = services.wait_seconds(request)
    if wait:
        response = render(
            request, "questionnaires/slow_down.html", {"minutes": -(-wait // 60)}, status=429
        )
        response["Retry-After"] = str(wait)
        return _private(response)
    opened = services.open_link(token)
    if opened.state == "invalid":
        services.note_bad_link(request)
        return _private(render(request, "questionnaires/invalid.html", status=404))
    return _private(_answer_page(request, opened, user=None))


@login_required
def mine(request):
    """The questionnaires sent to the logged-in physician's address."""
    waiting = [(q, services.context_of(q)) for q in services.open_for_physician(request.user)]
    return _private(render(request, "questionnaires/mine.html", {"waiting": waiting}))


@login_required
@never_cache
def mine_answer(request, code):
    opened = services.open_for_user(request.user, code)
    if opened.state == "invalid":
        return _private(render(request, "questionnaires/invalid.html", status=404))
    # The address holds no secret, and the CSRF check needs the browser's Origin.
    return _private(
        _answer_page(request, opened, user=request.user, referrer="same-origin"), "same-origin"
    )


def _answer_page(request, opened: services.Opened, *, user, referrer: str = "no-referrer"):
    questionnaire = opened.questionnaire
    context = {"context": services.context_of(questionnaire), "referrer_policy": referrer}
    if opened.state == "answered":
        return render(request, "questionnaires/thanks.html", context)
    row, problems = {}, []
    if request.method == "POST":
        row, answers, problems = services.read_answers(request.POST)
        if not [p for p in problems if p.severity == "error"]:
            outcome = services.answer(questionnaire, answers, user=user, request=request)
            if outcome == "invalid":
                return render(request, "questionnaires/invalid.html", status=404)
            return redirect(request.path)  # the thank-you page, also on reload
        problems = [p for p in problems if p.severity == "error"]
    return render(
        request,
        "questionnaires/answer.html",
        {**context, "sections": services.questions(row, problems), "problems": problems},
        status=422 if problems else 200,
    )


@login_required
@require_POST
def case_action(request, code, case_uid):
    """Send, resend, cancel, or set aside a case's questionnaire (contributors)."""
    case = get_case_for_user(request.user, code, case_uid, write=True)
    action = request.POST.get("action", "")
    try:
        if action == "send":
            services.send(
                case,
                email=request.POST.get("email", ""),
                specialty=request.POST.get("specialty", ""),
                actor=request.user,
                request=request,
            )
            messages.success(request, "The questionnaire is on its way.")
        elif action == "resend":
            services.resend(case, actor=request.user, request=request)
            messages.success(request, "A new link is on its way.")
        elif action == "cancel":
            services.cancel(case, actor=request.user, request=request)
            messages.success(request, "The questionnaire is cancelled; its links no longer work.")
        elif action in ("ask_later", "not_applicable"):
            services.set_aside(case, action, actor=request.user, request=request)
            messages.success(request, "Noted.")
        else:
            messages.error(
                request,
                "Unknown action; expected send, resend, cancel, ask_later or not_applicable",
            )
    except services.QuestionnaireError as exc:
        messages.error(request, str(exc))
    return redirect(f"{case.get_absolute_url()}#questionnaire")


SPECIALTIES = Specialty.choices
