"""Sessions: a new id at every log-in, and an end after idling or a day's work."""

from datetime import timedelta

import time_machine
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, override_settings
from django.utils import timezone

from registry3d.audit.models import AuditEvent
from tests.accounts.test_two_factor import current_code, turn_on_two_factor
from tests.conftest import PASSWORD, csrf_post


def log_in(client, email):
    return csrf_post(client, "/accounts/login/", {"username": email, "password": PASSWORD})


def anonymous_session(client) -> str:
    """Give the browser a session before log-in, as a fixation attack would."""
    session = client.session
    session["planted"] = "by someone else"
    session.save()
    client.cookies["sessionid"] = session.session_key
    return session.session_key


def test_log_in_gives_a_new_session_id_and_the_old_one_is_gone(world):
    client = Client(enforce_csrf_checks=True)
    planted = anonymous_session(client)
    assert log_in(client, "alice@a.example.org").status_code == 302
    after = client.cookies["sessionid"].value
    assert after != planted
    assert SessionStore().exists(planted) is False
    assert client.get("/accounts/").status_code == 200
    # The old id does not open the account.
    stale = Client()
    stale.cookies["sessionid"] = planted
    assert stale.get("/accounts/").status_code == 302


def test_the_two_factor_step_rotates_the_id_again(world):
    device = turn_on_two_factor(world.bob)
    client = Client(enforce_csrf_checks=True)
    planted = anonymous_session(client)
    assert log_in(client, "bob@a.example.org")["Location"] == "/accounts/login/code/"
    between = client.cookies["sessionid"].value
    assert between != planted
    # The code used to turn two-factor on is spent; the next one is good.
    with time_machine.travel(timezone.now() + timedelta(seconds=60)):
        device.refresh_from_db()
        response = csrf_post(client, "/accounts/login/code/", {"code": current_code(device)})
    assert response.status_code == 302
    final = client.cookies["sessionid"].value
    assert final not in (planted, between)
    assert SessionStore().exists(between) is False


def test_thirty_idle_minutes_end_the_session_and_the_trail_says_why(world):
    client = Client(enforce_csrf_checks=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        log_in(client, "alice@a.example.org")
        assert client.get("/accounts/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=29), tick=False):
        assert client.get("/accounts/").status_code == 200  # activity moves the clock on
    with time_machine.travel(start + timedelta(minutes=58), tick=False):
        assert client.get("/accounts/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=89), tick=False):
        response = client.get("/accounts/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        page = client.get(response["Location"])
        assert "logged out after 30 minutes without activity" in page.content.decode()
    event = AuditEvent.objects.get(action="auth.session_expired")
    assert event.actor == world.alice and event.changes == {"reason": "idle"}


@override_settings(REGISTRY3D_SESSION_IDLE_MINUTES=5)
def test_the_idle_limit_is_a_setting(world):
    client = Client(enforce_csrf_checks=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        log_in(client, "alice@a.example.org")
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        assert client.get("/accounts/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert client.get("/accounts/").status_code == 302


def test_a_busy_session_still_ends_at_its_lifetime(world):
    client = Client(enforce_csrf_checks=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        log_in(client, "alice@a.example.org")
    minutes = 0
    while minutes < 12 * 60 - 20:
        minutes += 20
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert client.get("/accounts/").status_code == 200, minutes
    with time_machine.travel(start + timedelta(hours=12, minutes=5), tick=False):
        assert client.get("/accounts/").status_code == 302
    assert AuditEvent.objects.get(action="auth.session_expired").changes == {"reason": "lifetime"}


def test_reading_pages_does_not_write_the_session_on_every_request(world):
    client = Client(enforce_csrf_checks=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        log_in(client, "alice@a.example.org")
        client.get("/accounts/")
        key = client.cookies["sessionid"].value
        saved = SessionStore(session_key=key).load()["registry3d_last_seen"]
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/accounts/")
        assert SessionStore(session_key=key).load()["registry3d_last_seen"] == saved
    with time_machine.travel(start + timedelta(seconds=90), tick=False):
        client.get("/accounts/")
        assert SessionStore(session_key=key).load()["registry3d_last_seen"] > saved
