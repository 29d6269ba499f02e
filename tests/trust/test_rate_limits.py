"""Rate limits: 429 with Retry-After, a pause and never a ban, shared by all processes."""

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import time_machine
from django.test import Client, override_settings
from django.utils import timezone

from registry3d.lib.ratelimit import Limiter, limiter
from registry3d.sites.models import Throttle
from tests.conftest import PASSWORD, csrf_post
from tests.intake.test_import_crash import database  # noqa: F401 - a fixture
from tests.test_deployment import CLI, clean_env, free_port, init_registry


def test_the_limiter_allows_a_burst_then_the_rate_and_says_how_long_to_wait(db):
    now = 1_000_000.0
    waits = [limiter.take("k", rate=2, burst=3, now=now) for _ in range(4)]
    assert waits[:3] == [0, 0, 0]
    assert 0.49 < waits[3] <= 0.5  # one more every half second
    assert limiter.take("k", rate=2, burst=3, now=now + 0.5) == 0
    assert limiter.take("other", rate=2, burst=3, now=now) == 0  # keys are separate
    # The state is rows in the database, so any process sees the same limit.
    assert Limiter().take("k", rate=2, burst=3, now=now + 0.5) > 0
    assert Throttle.objects.filter(key="k").exists()
    # Never a ban: after the wait it goes on.
    assert Limiter().take("k", rate=2, burst=3, now=now + 60) == 0


@override_settings(REGISTRY3D_LOGIN_FAILURES_PER_MINUTE=3)
def test_one_address_trying_many_accounts_is_paused_with_retry_after(world):
    client = Client(enforce_csrf_checks=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for email in ("alice@a.example.org", "bob@a.example.org", "mona@a.example.org"):
            csrf_post(client, "/accounts/login/", {"username": email, "password": "wrong-pass"})
        paused = csrf_post(
            client, "/accounts/login/", {"username": "carol@b.example.org", "password": PASSWORD}
        )
        assert paused.status_code == 429
        assert 1 <= int(paused["Retry-After"]) <= 20
        assert "Too many failed log-ins came from this computer" in paused.content.decode()
        assert "_auth_user_id" not in client.session
        other_address = csrf_post(
            Client(enforce_csrf_checks=True),
            "/accounts/login/",
            {"username": "carol@b.example.org", "password": PASSWORD},
            REMOTE_ADDR="10.9.9.9",
        )
        assert other_address.status_code == 302
    with time_machine.travel(start + timedelta(seconds=25), tick=False):
        again = csrf_post(
            client, "/accounts/login/", {"username": "carol@b.example.org", "password": PASSWORD}
        )
        assert again.status_code == 302


@override_settings(REGISTRY3D_LOGIN_FAILURES_PER_MINUTE=3)
def test_staff_behind_one_address_who_log_in_rightly_are_never_paused(world):
    for _ in range(4):
        for email in ("alice@a.example.org", "bob@a.example.org", "mona@a.example.org"):
            form = {"username": email, "password": PASSWORD}
            answer = csrf_post(Client(enforce_csrf_checks=True), "/accounts/login/", form)
            assert answer.status_code == 302, email


def test_made_up_tokens_leave_no_rate_limit_rows(db, client):
    for n in range(50):
        answer = client.post(
            "/api/v1/cases",
            data={"case_uid": f"X-{n}", "data": {}},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer r3d_made_up_{n}",
        )
        assert answer.status_code == 401
    assert Throttle.objects.count() == 0


SETUP = """
from registry3d.sites import services
site = services.add_site("RATE", "Rate Hospital")
user = services.add_user("w@rate.example.org", "correct-horse-battery-9")
services.set_membership(site, user, "contributor")
print(services.create_token(site, user, name="w", scope="write")[1])
"""


def test_the_api_write_limit_holds_across_the_servers_worker_processes(tmp_path, database):  # noqa: F811
    """Two gunicorn workers, one limit: a burst of 4 lets 4 writes through in all."""
    extra, scalar = database
    env = clean_env(
        tmp_path,
        REGISTRY3D_API_WRITES_PER_SECOND="0.01",
        REGISTRY3D_API_WRITE_BURST="4",
        **extra,
    )
    token = init_registry(env, SETUP).strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", "2", "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api/health", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
        statuses = []

        def write(n):
            request = urllib.request.Request(
                base + "/api/v1/cases",
                data=json.dumps({"case_uid": f"R-{n}", "data": {}}).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    statuses.append((answer.status, None))
            except urllib.error.HTTPError as error:
                statuses.append((error.code, error.headers.get("Retry-After")))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        through = [s for s, _ in statuses if s != 429]
        limited = [r for s, r in statuses if s == 429]
        assert len(statuses) == 12
        assert len(through) == 4, statuses
        assert all(r and int(r) >= 1 for r in limited)
        assert scalar("select count(*) from cases_case") == through.count(201)
        assert scalar("select count(*) from sites_throttle") == 1  # one row for the token
    finally:
        server.terminate()
        server.wait(timeout=30)
