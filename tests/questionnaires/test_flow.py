"""From the site's request to the physician's answers, through the real e-mail."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from registry3d.audit.models import AuditEvent
from registry3d.audit.services import verify_chain
from registry3d.cases.models import Case, CaseVersion
from registry3d.questionnaires import services
from registry3d.questionnaires.models import (
    QuestionnaireLink,
    QuestionnaireRequest,
    QuestionnaireResponse,
)
from tests.conftest import client_for, csrf_post
from tests.questionnaires.conftest import GOOD_ANSWERS, link_in, submitted_case

# E-mails leave when the request is committed, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def send_from_page(world, case, email="dr.lee@hospital.example.org"):
    client = client_for(world.alice)
    response = csrf_post(
        client,
        f"/sites/SITEA/cases/{case.case_uid}/questionnaire/",
        {"action": "send", "email": email, "specialty": "cardiothoracic_surgery"},
    )
    assert response.status_code == 302
    return client


def field_html(page: str, name: str) -> str:
    """One question of a form page: its wrapper, input, help and messages."""
    start = page.rindex('<div class="field', 0, page.index(f'id="f-{name}"') + 20)
    end = page.index("</div>", page.index(f'id="err-{name}"'))
    return page[start:end]


def answer(client: Client, path: str, answers: dict):
    client.get(path)
    return client.post(path, answers, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


def test_the_physician_follows_the_emailed_link_answers_and_the_case_holds_the_answers(world, case):
    send_from_page(world, case)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dr.lee@hospital.example.org"]
    assert "3D printed" in message.subject
    html = message.alternatives[0][0]
    path = link_in(message)
    assert path in html
    # Only non-identifying context: no case ID, no patient key, no site code.
    for text in (message.body, html):
        without_link = text.replace(path, "")
        assert case.case_uid not in without_link and case.patient_key not in without_link
        assert "SITEA" not in without_link

    physician = Client(enforce_csrf_checks=True)
    page = physician.get(path)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "no-referrer"
    assert "no-store" in page["Cache-Control"]
    assert b"What was the 3D printed" in page.content
    assert QuestionnaireRequest.objects.get(case=case).opened_at is not None

    done = answer(physician, path, GOOD_ANSWERS)
    assert done.status_code == 302
    thanks = physician.get(path)
    assert b"Thank you" in thanks.content and b"Send my answers" not in thanks.content

    stored = QuestionnaireResponse.objects.get(request__case=case)
    assert stored.answers["est_procedure_time_saved_min"] == 25
    assert stored.answers["plan_change_type"] == ["approach_changed"]
    case = Case.objects.get(pk=case.pk)
    assert (case.version, case.status) == (2, "submitted")
    assert case.data["ua_important"] == "5"
    assert stored.case_version == 2
    version = CaseVersion.objects.get(case=case, version=2)
    assert version.note == "physician questionnaire"
    assert version.changes["ua_important"] == [None, "5"]
    assert QuestionnaireRequest.objects.get(case=case).status == "answered"
    actions = list(
        AuditEvent.objects.filter(object_id=case.case_uid)
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "case.submitted",
        "questionnaire.sent",
        "case.updated",
        "questionnaire.answered",
    ]
    assert verify_chain().ok


def test_a_used_link_replayed_stores_nothing_more(world, case):
    send_from_page(world, case)
    path = link_in(mail.outbox[0])
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first.get(path)
    second.get(path)  # a second tab, opened before the first one answered
    answer_1 = first.post(path, GOOD_ANSWERS, HTTP_X_CSRFTOKEN=first.cookies["csrftoken"].value)
    other = {**GOOD_ANSWERS, "ua_important": "1"}
    answer_2 = second.post(path, other, HTTP_X_CSRFTOKEN=second.cookies["csrftoken"].value)
    assert (answer_1.status_code, answer_2.status_code) == (302, 200)
    assert b"Thank you" in answer_2.content
    assert QuestionnaireResponse.objects.count() == 1
    assert Case.objects.get(pk=case.pk).data["ua_important"] == "5"
    assert CaseVersion.objects.filter(case=case).count() == 2


def test_bad_answers_are_shown_next_to_their_question_and_kept(world, case):
    send_from_page(world, case)
    path = link_in(mail.outbox[0])
    physician = Client(enforce_csrf_checks=True)
    bad = {**GOOD_ANSWERS, "est_procedure_time_saved_min": "5000", "ua_important": ""}
    bad["ua_comment"] = "Call Mrs. Smith on 555-123-4567 about it"
    page = answer(physician, path, bad)
    assert page.status_code == 422
    text = page.content.decode()
    saved = field_html(text, "est_procedure_time_saved_min")
    assert "has-error" in saved and 'value="5000"' in saved and "from -480 to 1440" in saved
    assert "has-error" in field_html(text, "ua_important")
    comment = field_html(text, "ua_comment")
    assert "has-error" in comment and "Call Mrs. Smith on 555-123-4567" in comment
    assert "has-error" not in field_html(text, "respondent_role")
    assert QuestionnaireResponse.objects.count() == 0
    assert Case.objects.get(pk=case.pk).version == 1


def test_reminders_after_7_and_14_days_then_none_and_expiry_after_30(world, case):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        send_from_page(world, case)
    first_path = link_in(mail.outbox[0])
    assert services.send_reminders(start + timedelta(days=6)) == {"expired": 0, "reminded": 0}
    assert len(mail.outbox) == 1
    assert services.send_reminders(start + timedelta(days=7, minutes=1))["reminded"] == 1
    assert services.send_reminders(start + timedelta(days=8))["reminded"] == 0
    assert services.send_reminders(start + timedelta(days=14, minutes=1))["reminded"] == 1
    assert services.send_reminders(start + timedelta(days=21))["reminded"] == 0
    assert len(mail.outbox) == 3
    assert all(m.subject.startswith("Reminder: ") for m in mail.outbox[1:])
    reminder_path = link_in(mail.outbox[2])
    assert reminder_path != first_path
    # Every link works while the questionnaire waits.
    with time_machine.travel(start + timedelta(days=20), tick=False):
        assert Client().get(first_path).status_code == 200
        assert Client().get(reminder_path).status_code == 200
    with time_machine.travel(start + timedelta(days=30, minutes=1), tick=False):
        gone = Client().get(reminder_path)
    assert gone.status_code == 404 and b"This link is not valid" in gone.content
    assert QuestionnaireRequest.objects.get(case=case).status == "expired"
    assert services.send_reminders(start + timedelta(days=31)) == {"expired": 0, "reminded": 0}
    assert AuditEvent.objects.filter(action="questionnaire.reminded").count() == 2
    assert AuditEvent.objects.filter(action="questionnaire.expired").count() == 1


def test_an_answered_questionnaire_gets_no_reminder(world, case):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        send_from_page(world, case)
        answer(Client(enforce_csrf_checks=True), link_in(mail.outbox[0]), GOOD_ANSWERS)
    assert services.send_reminders(start + timedelta(days=8)) == {"expired": 0, "reminded": 0}
    assert services.send_reminders(start + timedelta(days=40)) == {"expired": 0, "reminded": 0}
    assert len(mail.outbox) == 1


def test_unknown_expired_and_cancelled_links_look_the_same(world, case):
    send_from_page(world, case)
    path = link_in(mail.outbox[0])
    unknown = Client().get("/q/" + "A" * 43 + "/")
    near_miss = Client().get(path[:-2] + ("A" if path[-2] != "A" else "B") + "/")
    csrf_post(
        client_for(world.alice),
        f"/sites/SITEA/cases/{case.case_uid}/questionnaire/",
        {"action": "cancel"},
    )
    cancelled = Client().get(path)
    assert unknown.status_code == near_miss.status_code == cancelled.status_code == 404
    assert unknown.content == near_miss.content == cancelled.content
    assert AuditEvent.objects.filter(action="questionnaire.bad_link").count() == 3


def test_guessing_links_is_slowed_down_with_429_and_retry_after(world, case, settings):
    settings.REGISTRY3D_QUESTIONNAIRE_BAD_LINKS_PER_HOUR = 5
    send_from_page(world, case)
    path = link_in(mail.outbox[0])
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    answers = [guesser.get(f"/q/guess{n:040d}/").status_code for n in range(8)]
    assert answers == [404] * 5 + [429] * 3
    limited = guesser.get(path)
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 3600
    assert Client(REMOTE_ADDR="198.51.100.7").get(path).status_code == 200
    assert QuestionnaireRequest.objects.get(case=case).status == "sent"


def test_links_are_stored_only_as_hashes(world, case):
    send_from_page(world, case)
    raw = link_in(mail.outbox[0]).split("/")[2]
    assert len(raw) >= 43  # 256 random bits, base64
    link = QuestionnaireLink.objects.get()
    assert link.token_hash == services.hash_token(raw) and raw not in link.token_hash
    assert not AuditEvent.objects.filter(changes_json__contains=raw).exists()


def test_the_site_can_resend_cancel_and_set_aside(world, case):
    client = send_from_page(world, case)
    url = f"/sites/SITEA/cases/{case.case_uid}/questionnaire/"
    csrf_post(client, url, {"action": "resend"})
    assert len(mail.outbox) == 2
    paths = [link_in(m) for m in mail.outbox]
    assert Client().get(paths[0]).status_code == 200
    assert Client().get(paths[1]).status_code == 200
    csrf_post(client, url, {"action": "cancel"})
    assert QuestionnaireRequest.objects.get(case=case).status == "cancelled"
    assert Client().get(paths[1]).status_code == 404
    other = submitted_case(world, uid="Q-2", seed=12)
    csrf_post(
        client, f"/sites/SITEA/cases/{other.case_uid}/questionnaire/", {"action": "not_applicable"}
    )
    assert QuestionnaireRequest.objects.get(case=other).status == "not_applicable"
    page = client.get(f"/sites/SITEA/cases/{case.case_uid}/")
    assert b"Physician questionnaire" in page.content and b"Cancelled" in page.content


def test_a_draft_case_cannot_be_sent_and_a_bad_address_is_refused(world, case):
    client = client_for(world.alice)
    url = f"/sites/SITEA/cases/{case.case_uid}/questionnaire/"
    response = csrf_post(
        client,
        url,
        {"action": "send", "email": "not an address", "specialty": "cardiology"},
        follow=True,
    )
    assert b"is not an e-mail address" in response.content
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0


def test_a_physician_with_an_account_sees_and_answers_their_questionnaires(world, case):
    from registry3d.sites import services as sites

    doctor = sites.add_user("dr.lee@hospital.example.org", "long-enough-passphrase-1")
    send_from_page(world, case, email="Dr.Lee@hospital.example.org")
    send_from_page(
        world, submitted_case(world, uid="Q-3", seed=13), email="other@hospital.example.org"
    )
    client = client_for(doctor)
    page = client.get("/questionnaires/")
    assert page.status_code == 200
    code = str(QuestionnaireRequest.objects.get(case=case).code)
    assert code in page.content.decode()
    other = QuestionnaireRequest.objects.get(case__case_uid="Q-3")
    assert str(other.code) not in page.content.decode()
    assert client.get(f"/questionnaires/{other.code}/").status_code == 404
    client.get(f"/questionnaires/{code}/")
    done = client.post(
        f"/questionnaires/{code}/", GOOD_ANSWERS, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value
    )
    assert done.status_code == 302
    assert QuestionnaireResponse.objects.get(request__case=case).answered_by == doctor
    assert code not in client.get("/questionnaires/").content.decode()


def test_the_site_home_shows_the_response_rate(world, case):
    send_from_page(world, case)
    send_from_page(world, submitted_case(world, uid="Q-4", seed=14))
    answer(Client(enforce_csrf_checks=True), link_in(mail.outbox[0]), GOOD_ANSWERS)
    rates = services.rates(world.site_a)
    assert (rates.sent, rates.opened, rates.answered, rates.waiting) == (2, 1, 1, 1)
    page = client_for(world.alice).get("/sites/SITEA/")
    text = page.content.decode()
    assert "50%" in text.split("data-response-rate>")[1][:20]
    assert "2 sent · 1 opened · 1 answered · 0 expired" in text
