"""The physician questionnaire endpoints over real HTTP, as a site's software uses them."""

import pytest
from django.core import mail
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.cases import services as cases
from registry3d.lib.ratelimit import limiter
from registry3d.questionnaires.models import QuestionnaireLink, QuestionnaireRequest
from registry3d.sites import services
from tests.questionnaires.conftest import GOOD_ANSWERS, link_in, submitted_case

PROBLEM = "application/problem+json"
PATH = "/api/v1/cases/{}/questionnaire"
DOCTOR = {"email": "dr.lee@hospital.example.org", "specialty": "cardiothoracic_surgery"}


@pytest.fixture
def api(http_world, http):
    limiter.clear()
    case = submitted_case(http_world, uid="QA-1")
    _, write = services.create_token(http_world.site_a, http_world.alice, name="W", scope="write")
    _, read = services.create_token(http_world.site_a, http_world.bob, name="R", scope="read")
    _, other = services.create_token(http_world.site_b, http_world.carol, name="B", scope="write")
    mail.outbox.clear()
    return {
        "http": http,
        "case": case,
        "write": write,
        "read": read,
        "other": other,
        "world": http_world,
    }


def call(api, method, token, body=None, uid=None):
    path = PATH.format(uid or api["case"].case_uid)
    return api["http"].call(method, path, token=api[token], body=body)


def answer_through_the_link(path: str):
    physician = Client(enforce_csrf_checks=True)
    assert physician.get(path).status_code == 200
    done = physician.post(path, GOOD_ANSWERS, HTTP_X_CSRFTOKEN=physician.cookies["csrftoken"].value)
    assert done.status_code == 302


def test_a_write_token_sends_and_reads_back_the_answers(api):
    missing = call(api, "GET", "read")
    assert missing.status == 404
    assert missing.json()["detail"] == "No questionnaire was sent for this case"

    sent = call(api, "POST", "write", DOCTOR)
    assert sent.status == 201, sent.body
    body = sent.json()
    assert (body["case_uid"], body["status"]) == ("QA-1", "sent")
    assert (body["email"], body["specialty"]) == (DOCTOR["email"], DOCTOR["specialty"])
    assert body["expires_at"] > body["sent_at"]
    assert body["answers"] is None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [DOCTOR["email"]]
    path = link_in(mail.outbox[0])

    waiting = call(api, "GET", "read")
    assert waiting.status == 200
    assert (waiting.json()["status"], waiting.json()["answers"]) == ("sent", None)

    answer_through_the_link(path)

    answered = call(api, "GET", "read")
    assert answered.status == 200
    got = answered.json()
    assert got["status"] == "answered"
    assert got["answered_at"] is not None and got["opened_at"] is not None
    assert got["answers"]["respondent_role"] == "surgeon_or_proceduralist"
    assert got["answers"]["ua_important"] == "5"
    assert got["answers"]["est_procedure_time_saved_min"] == 25
    assert got["answers"]["plan_change_type"] == ["approach_changed"]
    # The answers went into the case as well.
    case = api["http"].call("GET", "/api/v1/cases/QA-1", token=api["read"]).json()
    assert case["version"] == 2 and case["data"]["ua_important"] == "5"

    again = call(api, "POST", "write", DOCTOR)
    assert again.status == 409
    assert again.json()["detail"] == "The questionnaire of case QA-1 is answered"
    assert len(mail.outbox) == 1


def test_a_read_token_cannot_send(api):
    reply = call(api, "POST", "read", DOCTOR)
    assert reply.status == 403
    assert reply.headers["Content-Type"] == PROBLEM
    assert "only read" in reply.json()["detail"]
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0


def test_a_case_without_a_physician_is_set_aside(api):
    reply = call(api, "POST", "write", {"status": "not_applicable"})
    assert reply.status == 201, reply.body
    assert (reply.json()["status"], reply.json()["sent_at"]) == ("not_applicable", None)
    got = call(api, "GET", "read").json()
    assert got["status"] == "not_applicable"
    assert QuestionnaireRequest.objects.get(case=api["case"]).status == "not_applicable"
    assert len(mail.outbox) == 0
    assert AuditEvent.objects.filter(action="questionnaire.not_applicable").count() == 1


def test_a_draft_case_cannot_be_sent(api):
    world = api["world"]
    cases.save_case(world.site_a, case_uid="QA-DRAFT", data={}, actor=world.alice)
    reply = call(api, "POST", "write", DOCTOR, uid="QA-DRAFT")
    assert reply.status == 409
    assert reply.headers["Content-Type"] == PROBLEM
    assert reply.json()["detail"] == (
        "Case QA-DRAFT is draft; only a submitted case can have a questionnaire"
    )
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0


@pytest.mark.parametrize("email", ["not an address", "", "dr.lee@"])
def test_a_bad_address_is_refused_naming_the_problem(api, email):
    reply = call(api, "POST", "write", {**DOCTOR, "email": email})
    assert reply.status in (409, 422)
    assert reply.headers["Content-Type"] == PROBLEM
    detail = reply.json()["detail"]
    assert detail == "This is not an e-mail address; give the physician's work address"
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0


def test_an_unknown_specialty_is_refused(api):
    reply = call(api, "POST", "write", {**DOCTOR, "specialty": "astrology"})
    assert reply.status == 422
    assert any(e["field"] == "specialty" for e in reply.json()["errors"])
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0


def test_another_sites_token_finds_nothing_and_changes_nothing(api):
    # Before anything was sent: neither the case nor its questionnaire exists for site B.
    assert call(api, "GET", "other").status == 404
    refused = call(api, "POST", "other", {**DOCTOR, "email": "spy@b.example.org"})
    assert refused.status == 404
    assert refused.json()["detail"] == "No case with this ID at the token's site"
    assert not QuestionnaireRequest.objects.exists()
    assert len(mail.outbox) == 0

    assert call(api, "POST", "write", DOCTOR).status == 201
    events = AuditEvent.objects.count()
    hidden = call(api, "GET", "other")
    assert hidden.status == 404
    # The same answer as for a case that does not exist at all.
    assert hidden.json()["detail"] == call(api, "GET", "other", uid="NO-SUCH").json()["detail"]
    assert DOCTOR["email"] not in hidden.body.decode()
    for body in (
        {**DOCTOR, "email": "spy@b.example.org"},
        {"status": "not_applicable"},
        {"status": "ask_later"},
    ):
        assert call(api, "POST", "other", body).status == 404
    stored = QuestionnaireRequest.objects.get()
    assert (stored.status, stored.email) == ("sent", DOCTOR["email"])
    assert QuestionnaireLink.objects.count() == 1
    assert len(mail.outbox) == 1
    assert AuditEvent.objects.count() == events


def test_the_openapi_schema_lists_the_questionnaire_endpoint(api):
    reply = api["http"].call("GET", "/api/openapi.json")
    assert reply.status == 200
    operations = reply.json()["paths"]["/api/v1/cases/{case_uid}/questionnaire"]
    assert {"get", "post"} <= set(operations)
    assert "201" in operations["post"]["responses"]
    assert "409" in operations["post"]["responses"]
    assert "200" in operations["get"]["responses"]
