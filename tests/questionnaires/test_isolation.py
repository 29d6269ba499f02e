"""Who sees a questionnaire: its site, its physician, and nobody else; and one answer only."""

import threading

import pytest
from django.core import mail
from django.db import connection
from django.http import QueryDict
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case, CaseVersion
from registry3d.questionnaires import services
from registry3d.questionnaires.models import (
    QuestionnaireLink,
    QuestionnaireRequest,
    QuestionnaireResponse,
)
from registry3d.sites import services as sites
from tests.conftest import PASSWORD, client_for, csrf_post
from tests.questionnaires.conftest import GOOD_ANSWERS, link_in, submitted_case

# E-mails leave when the request is committed, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

DOCTOR = "dr.lee@hospital.example.org"
SEED = 11  # submitted_case's default: its patient's MRN is MRN0000011
MRN = f"MRN{SEED:07d}"


def action_url(case, code="SITEA"):
    return f"/sites/{code}/cases/{case.case_uid}/questionnaire/"


def send(world, case, email=DOCTOR):
    services.send(case, email=email, specialty="cardiothoracic_surgery", actor=world.alice)
    return QuestionnaireRequest.objects.get(case=case)


def snapshot(case):
    """Everything a refused action could have changed."""
    questionnaire = QuestionnaireRequest.objects.filter(case=case).values().first()
    return (
        questionnaire,
        QuestionnaireLink.objects.count(),
        QuestionnaireResponse.objects.count(),
        Case.objects.get(pk=case.pk).version,
        AuditEvent.objects.filter(action__startswith="questionnaire.").count(),
        len(mail.outbox),
    )


def fill(client, path, answers):
    client.get(path)
    return client.post(path, answers, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


def test_another_sites_manager_sees_no_status_and_answers_and_changes_nothing(world, case):
    questionnaire = send(world, case)
    carol = client_for(world.carol)
    detail = f"/sites/SITEA/cases/{case.case_uid}/"
    # The site's own contributor sees the panel; the page is not a 404 for everyone.
    assert b"Physician questionnaire" in client_for(world.alice).get(detail).content
    for path in (detail, f"/sites/SITEB/cases/{case.case_uid}/"):
        page = carol.get(path)
        assert page.status_code == 404
        assert DOCTOR.encode() not in page.content
    before = snapshot(case)
    for code in ("SITEA", "SITEB"):
        for data in (
            {"action": "send", "email": "spy@b.example.org", "specialty": "cardiology"},
            {"action": "resend"},
            {"action": "cancel"},
            {"action": "not_applicable"},
            {"action": "ask_later"},
        ):
            assert csrf_post(carol, action_url(case, code), data).status_code == 404, (code, data)
    assert snapshot(case) == before
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [DOCTOR]

    # Answered, the answers stay with site A as well.
    answered = fill(Client(enforce_csrf_checks=True), link_in(mail.outbox[0]), GOOD_ANSWERS)
    assert answered.status_code == 302
    assert QuestionnaireRequest.objects.get(case=case).status == "answered"
    assert carol.get(detail).status_code == 404
    assert carol.get(f"/questionnaires/{questionnaire.code}/").status_code == 404
    assert str(questionnaire.code) not in carol.get("/questionnaires/").content.decode()


def test_a_viewer_cannot_send_or_set_aside(world, case):
    bob = client_for(world.bob)
    page = bob.get(f"/sites/SITEA/cases/{case.case_uid}/")
    assert page.status_code == 200
    assert b"Physician questionnaire" in page.content
    assert b'value="send"' not in page.content  # no form offered
    before = snapshot(case)
    for data in (
        {"action": "send", "email": DOCTOR, "specialty": "cardiology"},
        {"action": "not_applicable"},
    ):
        assert csrf_post(bob, action_url(case), data).status_code == 403
    assert snapshot(case) == before
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0


def test_a_questionnaire_sent_to_someone_else_is_a_404_even_for_the_sender(world, case):
    questionnaire = send(world, case)
    for user in (world.alice, world.mona, world.ada):
        client = client_for(user)
        assert client.get(f"/questionnaires/{questionnaire.code}/").status_code == 404
        before = snapshot(case)
        refused = csrf_post(client, f"/questionnaires/{questionnaire.code}/", GOOD_ANSWERS)
        assert refused.status_code == 404
        assert snapshot(case) == before


def test_a_physician_account_sees_only_questionnaires_sent_to_its_own_address(world, case):
    doctor = sites.add_user(DOCTOR, PASSWORD)
    # Addresses that merely contain, or are contained in, the doctor's.
    near = sites.add_user("lee@hospital.example.org", PASSWORD)
    mine = send(world, case, email="DR.LEE@hospital.example.org")
    others = [
        send(world, submitted_case(world, uid=f"QI-{n}", seed=20 + n), email=email)
        for n, email in enumerate(
            ["lee@hospital.example.org", "xdr.lee@hospital.example.org", "dr.lee@hospital.example"]
        )
    ]
    client = client_for(doctor)
    listing = client.get("/questionnaires/").content.decode()
    assert str(mine.code) in listing
    assert all(str(q.code) not in listing for q in others)
    assert client.get(f"/questionnaires/{mine.code}/").status_code == 200
    for other in others:
        assert client.get(f"/questionnaires/{other.code}/").status_code == 404
    # Being asked about a case does not open the case, nor the site.
    assert client.get(f"/sites/SITEA/cases/{case.case_uid}/").status_code == 404
    assert client.get("/sites/SITEA/").status_code == 404

    near_listing = client_for(near).get("/questionnaires/").content.decode()
    assert str(others[0].code) in near_listing and str(mine.code) not in near_listing


def test_the_link_pages_show_no_patient_identifier_and_no_site_code(world, case):
    send(world, case)
    path = link_in(mail.outbox[0])
    physician = Client(enforce_csrf_checks=True)
    form = physician.get(path)
    checked = fill(physician, path, {**GOOD_ANSWERS, "ua_important": ""})
    assert checked.status_code == 422
    done = fill(physician, path, GOOD_ANSWERS)
    assert done.status_code == 302
    thanks = physician.get(path)
    assert b"Thank you" in thanks.content
    assert form["Referrer-Policy"] == "no-referrer"  # the token never leaves in a Referer
    assert '<meta name="referrer" content="no-referrer">' in form.content.decode()
    secrets = [case.case_uid, case.patient_key, MRN, MRN[3:], "SITEA", str(case.code)]
    for page in (form, checked, thanks):
        text = page.content.decode()
        assert "Site A Hospital" in text  # the site's name is shown, by design
        for secret in secrets:
            assert secret not in text, secret


def test_answers_through_a_link_are_not_credited_to_whoever_is_logged_in(world, case):
    # The link is the physician's credential; a session in the same browser
    # (a site member trying the link, or a forged post) is not the answerer.
    send(world, case)
    alice = client_for(world.alice)
    assert fill(alice, link_in(mail.outbox[0]), GOOD_ANSWERS).status_code == 302
    assert QuestionnaireResponse.objects.get().answered_by is None
    # Nor does the trail credit the session: the link answered.
    event = AuditEvent.objects.get(action="questionnaire.answered")
    assert (event.actor, event.actor_label) == (None, "physician link")


def test_two_answers_at_the_same_moment_store_one_response_and_one_case_version(world, case):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    questionnaire = send(world, case)
    posted = QueryDict(mutable=True)
    for name, value in GOOD_ANSWERS.items():
        posted.setlist(name, value if isinstance(value, list) else [value])
    _, answers, problems = services.read_answers(posted)
    assert not problems
    barrier = threading.Barrier(2, timeout=10)
    outcomes, errors = [], []

    def answer(important):
        try:
            barrier.wait()
            outcomes.append(services.answer(questionnaire, {**answers, "ua_important": important}))
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=answer, args=(v,)) for v in ("4", "5")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sorted(outcomes) == ["already", "answered"]
    response = QuestionnaireResponse.objects.get()
    assert response.case_version == 2
    saved = Case.objects.get(pk=case.pk)
    assert saved.version == 2
    assert saved.data["ua_important"] == response.answers["ua_important"]
    assert CaseVersion.objects.filter(case=case).count() == 2
    assert AuditEvent.objects.filter(action="questionnaire.answered").count() == 1
