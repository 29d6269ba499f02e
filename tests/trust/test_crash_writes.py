"""Kill the server with SIGKILL while clients write: after a restart every acknowledged
write is there at its version, and nothing half-written is visible.

The real server (``registry3d serve --no-worker``: gunicorn with two workers)
runs against a database of its own; four client threads create cases and
update them with If-Match (some of them the same few cases, so some updates
race and get 412). Mid-stream the whole process group of the server is
killed, then the server is started again on the same port and the clients
carry on. Afterwards ``tests.trust.load_checks.check`` holds the database to
what the clients were answered: every 2xx write stored exactly once at the
version it was answered with, every refused one absent, versions 1..n for
every case with the case equal to its newest one, one audit event per
version; a write cut off by the kill may be stored or not, but only whole
and only once. ``registry3d audit verify`` passes.

The same for an import killed mid-way (only whole batches are kept, and a
rerun finishes it) is ``tests/intake/test_import_crash.py``.
"""

import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.test_deployment import clean_env
from tests.trust.load_checks import Client, check, report, snapshot_sql

ROOT = Path(__file__).resolve().parent.parent.parent
CLI = [sys.executable, "-m", "registry3d.cli"]
SITE = "CRASHW"
CLIENTS = 4
KILLS = 1  # each restart costs a few seconds (gunicorn loading Django)
SETUP = f"""
from django.core.management import call_command
from tests.trust.load_checks import prepare_site
call_command("migrate", interactive=False, verbosity=0)
write, read = prepare_site({SITE!r}, {CLIENTS + 1}, {CLIENTS + 1})
print("TOKENS", " ".join(write), " ".join(read))
"""


@pytest.fixture
def database(tmp_path):
    """A database of the server's own: a SQLite file, or a new PostgreSQL database
    beside the suite's when the suite runs on PostgreSQL; and a way to query it."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        path = tmp_path / "var" / "registry3d.sqlite3"

        def query(sql, params):
            with sqlite3.connect(path) as connection:
                return connection.execute(sql.replace("%s", "?"), params).fetchall()

        yield {}, query
        return
    import psycopg

    name = f"crashw_{uuid.uuid4().hex[:12]}"
    server = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def query(sql, params):
        with psycopg.connect(f"{server}/{name}", autocommit=True) as connection:
            return connection.execute(sql, params).fetchall()

    yield {"DATABASE_URL": f"{server}/{name}"}, query
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/health")
        return conn.getresponse().status == 200
    except OSError:
        return False


class Server:
    """gunicorn with two workers, as ``registry3d serve --no-worker`` starts it (without its
    collection of static files, ten seconds the API does not need), in a group of its own."""

    def __init__(self, env: dict, port: int, log: Path):
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "registry3d.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "2",
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            if healthy(self.port):
                return
            time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL to the whole group: serve, gunicorn's arbiter and its workers."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None


def test_a_killed_server_keeps_every_acknowledged_write_and_nothing_half_written(
    tmp_path, database
):
    extra, query = database
    env = clean_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="registry3d.settings",
        REGISTRY3D_API_WRITES_PER_SECOND="0",
        LOG_LEVEL="WARNING",
        **extra,
    )
    setup = subprocess.run(
        [*CLI, "manage", "shell", "-c", SETUP],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stderr
    line = next(x for x in setup.stdout.splitlines() if x.startswith("TOKENS "))
    tokens = line.split()[1:]
    write, read = tokens[: CLIENTS + 1], tokens[CLIENTS + 1 :]

    port = free_port()
    server = Server(env, port, tmp_path / "serve.log")
    stop = threading.Event()
    try:
        server.start()
        first = Client(9, "127.0.0.1", port, write[CLIENTS], read[CLIENTS], seed=5)
        hot = [f"HOT-{n}" for n in range(2)]
        for uid in hot:
            assert first.create(uid, "submitted").status == 201
        mix = {"create": 40, "update": 50, "stale": 5, "get": 5}
        clients = [
            Client(n, "127.0.0.1", port, write[n], read[n], hot=hot, seed=5, mix=mix)
            for n in range(CLIENTS)
        ]
        threads = [
            threading.Thread(target=c.run, args=(time.monotonic() + 60,), kwargs={"stop": stop})
            for c in clients
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()

        def acknowledged() -> int:
            return sum(1 for c in clients for r in list(c.records) if r.status in (200, 201))

        def wait_for(count: int) -> None:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and acknowledged() < count:
                time.sleep(0.02)

        kills = []  # (killed at, acknowledged before, restarted at)
        for _ in range(KILLS):
            wait_for(acknowledged() + 40)
            killed_at = time.monotonic()
            server.kill()
            before_kill = acknowledged()
            time.sleep(0.3)  # clients meet a closed port for a while
            server.start()
            kills.append((killed_at, before_kill, time.monotonic()))
        wait_for(acknowledged() + 30)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        stop.set()  # the clients end at their next request, also when this failed
        server.kill()

    records = first.records + [r for c in clients for r in c.records]
    print("\n".join(report(records, time.monotonic() - started)))
    failures, summary = check(records, snapshot_sql(query, SITE), unanswered_ok=True)
    print(dict(summary))
    assert not failures, str(failures)
    answered = [r for r in records if r.status in (200, 201)]
    for n, (killed_at, before_kill, restarted_at) in enumerate(kills):
        until = kills[n + 1][0] if n + 1 < len(kills) else float("inf")
        assert sum(r.started < killed_at for r in answered) >= 10, "too few writes before a kill"
        assert sum(restarted_at < r.started < until for r in answered) >= 10, (
            "too few writes after a restart"
        )
        cut = [r for r in records if r.status == 0 and r.started < killed_at]
        print(f"kill: {before_kill} writes acknowledged before it, {len(cut)} cut off up to it")
    verify = subprocess.run(
        [*CLI, "audit", "verify"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
