from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import identify_hasher
from django.test import Client, override_settings
from django.utils import timezone

from registry3d import settings as production_settings
from registry3d.audit.models import AuditEvent
from registry3d.sites import services
from tests.conftest import PASSWORD, csrf_post


def log_in(client, email, password, **extra):
    return csrf_post(client, "/accounts/login/", {"username": email, "password": password}, **extra)


def test_it_logs_in_with_email_and_password_and_records_it(world):
    client = Client(enforce_csrf_checks=True)
    response = log_in(client, "alice@a.example.org", PASSWORD, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    assert response["Location"] == "/"
    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor == world.alice
    assert event.ip == "10.1.2.3"


def test_the_email_is_not_case_sensitive(world):
    response = log_in(Client(enforce_csrf_checks=True), "Alice@A.Example.org", PASSWORD)
    assert response.status_code == 302


def test_it_gives_the_same_generic_message_for_a_wrong_password_and_an_unknown_email(world):
    wrong = log_in(Client(enforce_csrf_checks=True), "alice@a.example.org", "not-her-password")
    unknown = log_in(Client(enforce_csrf_checks=True), "nobody@a.example.org", "whatever-1234")
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "E-mail or password is not correct." in response.content.decode()
    failures = AuditEvent.objects.filter(action="auth.login_failed")
    assert [e.actor_label for e in failures.order_by("seq")] == [
        "alice@a.example.org",
        "nobody@a.example.org",
    ]
    assert all(e.actor is None for e in failures)


def test_it_rotates_the_session_id_at_log_in(world):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    client.session.save()
    before = client.cookies["sessionid"].value if "sessionid" in client.cookies else None
    log_in(client, "alice@a.example.org", PASSWORD)
    after = client.cookies["sessionid"].value
    assert after and after != before


def test_the_tenth_failure_in_a_row_locks_the_account_even_for_the_right_password(world):
    client = Client(enforce_csrf_checks=True)
    for attempt in range(1, 10):
        response = log_in(client, "bob@a.example.org", f"wrong-{attempt}")
        assert response.status_code == 400, attempt
    tenth = log_in(client, "bob@a.example.org", "wrong-10")
    assert tenth.status_code == 429
    assert "This account is paused for about 15 minutes" in tenth.content.decode()
    # A pause with a known end, never a permanent ban.
    assert 14 * 60 < int(tenth["Retry-After"]) <= 15 * 60
    right = log_in(Client(enforce_csrf_checks=True), "bob@a.example.org", PASSWORD)
    assert right.status_code == 429
    assert 0 < int(right["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in Client().session
    # Other accounts behind the same address are not affected.
    assert log_in(client, "alice@a.example.org", PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off_time(world):
    client = Client(enforce_csrf_checks=True)
    for attempt in range(10):
        log_in(client, "bob@a.example.org", f"wrong-{attempt}")
    assert log_in(client, "bob@a.example.org", PASSWORD).status_code == 429
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert (
            log_in(Client(enforce_csrf_checks=True), "bob@a.example.org", PASSWORD).status_code
            == 302
        )


def test_a_success_resets_the_failure_count(world):
    client = Client(enforce_csrf_checks=True)
    for attempt in range(9):
        log_in(client, "bob@a.example.org", f"wrong-{attempt}")
    assert (
        log_in(Client(enforce_csrf_checks=True), "bob@a.example.org", PASSWORD).status_code == 302
    )
    for attempt in range(9):
        assert log_in(client, "bob@a.example.org", f"again-{attempt}").status_code == 400


def test_log_out_needs_a_post_and_is_recorded(world):
    client = Client(enforce_csrf_checks=True)
    log_in(client, "alice@a.example.org", PASSWORD)
    assert client.get("/accounts/logout/").status_code == 405
    response = csrf_post(client, "/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/sites/SITEA/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.logout", actor=world.alice).count() == 1


def test_an_inactive_account_cannot_log_in(world):
    world.bob.is_active = False
    world.bob.save()
    response = log_in(Client(enforce_csrf_checks=True), "bob@a.example.org", PASSWORD)
    assert response.status_code == 400


def test_it_does_not_follow_a_next_address_to_another_host(world):
    client = Client(enforce_csrf_checks=True)
    response = csrf_post(
        client,
        "/accounts/login/",
        {"username": "alice@a.example.org", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2_by_default():
    with override_settings(PASSWORD_HASHERS=production_settings.PASSWORD_HASHERS):
        user = services.add_user("argon@example.org", "a-long-enough-password")
        assert identify_hasher(user.password).algorithm == "argon2"
        assert user.check_password("a-long-enough-password") is True
