"""A failure shows a short page with an error id; the log line has the same id."""

import io
import logging
import re

import pytest
from django.test import Client, override_settings

from tests.conftest import client_for


@pytest.fixture
def console():
    """What the registry's console log handler writes, formatted as in production."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def failing_client(user=None) -> Client:
    client = client_for(user) if user else Client()
    client.raise_request_exception = False
    return client


@override_settings(ROOT_URLCONF="tests.trust.boom_urls")
def test_a_page_that_fails_shows_an_error_id_and_no_traceback(world, console):
    response = failing_client(world.alice).get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{12}", request_id)
    assert f"<code>{request_id}</code>" in page
    assert "Something went wrong" in page
    for leak in ("Traceback", "RuntimeError", "hunter2", "boom", "settings"):
        assert leak not in page
    # The headers hold on an error page too.
    assert response["Content-Security-Policy"] and "no-store" in response["Cache-Control"]
    log = console.getvalue()
    lines = [line for line in log.splitlines() if f"[{request_id}]" in line]
    assert any("Internal Server Error: /boom/" in line for line in lines), log
    assert "RuntimeError: secret detail" in log  # the traceback is in the log, for staff


@override_settings(ROOT_URLCONF="tests.trust.boom_urls")
def test_api_and_fhir_failures_answer_in_their_own_format_with_the_id(world, console):
    api = failing_client().get("/api/v1/boom")
    assert api.status_code == 500
    assert api["Content-Type"] == "application/problem+json"
    body = api.json()
    assert body["request_id"] == api["X-Request-ID"]
    assert body["request_id"] in body["detail"] and "hunter2" not in api.content.decode()
    fhir = failing_client().get("/fhir/boom")
    assert fhir.status_code == 500
    outcome = fhir.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert fhir["X-Request-ID"] in outcome["issue"][0]["diagnostics"]
    assert f"[{api['X-Request-ID']}]" in console.getvalue()


@override_settings(REGISTRY3D_BEHIND_PROXY=True)
def test_a_proxy_request_id_is_kept_and_a_bad_one_replaced(world):
    client = Client()
    kept = client.get("/accounts/login/", HTTP_X_REQUEST_ID="edge-7f3a9c1b2d")
    assert kept["X-Request-ID"] == "edge-7f3a9c1b2d"
    replaced = client.get("/accounts/login/", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert re.fullmatch(r"[0-9a-f]{12}", replaced["X-Request-ID"])


def test_without_a_proxy_a_client_cannot_choose_its_request_id(world):
    chosen = Client().get("/accounts/login/", HTTP_X_REQUEST_ID="edge-7f3a9c1b2d")
    assert re.fullmatch(r"[0-9a-f]{12}", chosen["X-Request-ID"])


def test_a_failure_inside_an_api_operation_is_a_problem_with_the_logged_id(
    world, console, monkeypatch
):
    """A real django-ninja operation that fails, through the registry's own handler."""
    from registry3d.api import api as api_module
    from registry3d.sites import services

    _, token = services.create_token(world.site_a, world.alice, name="t", scope="read")

    def broken(token):
        raise RuntimeError("scope lookup failed: hunter2")

    monkeypatch.setattr(api_module.services, "token_can_write", broken)
    answer = failing_client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 500
    assert answer["Content-Type"] == "application/problem+json"
    request_id = answer.json()["request_id"]
    assert request_id == answer["X-Request-ID"] and "hunter2" not in answer.content.decode()
    log = console.getvalue()
    assert any(
        f"[{request_id}]" in line and "Internal Server Error: /api/v1/whoami" in line
        for line in log.splitlines()
    ), log
    assert "RuntimeError: scope lookup failed" in log
