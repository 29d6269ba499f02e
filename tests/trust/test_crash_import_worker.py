"""Kill the server and its worker (SIGKILL) while an import sent through the API is
being written: only whole batches are stored, the restarted worker marks the import
interrupted, and sending the file again finishes it with every row exactly once.

(tests/intake/test_import_crash.py kills a command-line import the same way.)
"""

import os
import signal
import subprocess
import time

import requests

from tests.intake.import_files import case_rows, write_csv
from tests.intake.test_import_crash import LABELS, database  # noqa: F401 - a fixture
from tests.test_deployment import CLI, clean_env, free_port, init_registry

SETUP = """
from registry3d.sites import services
site = services.add_site("CRASH", "Crash Test Hospital")
for technology, label in {labels!r}.items():
    services.add_printer(site, label=label, manufacturer="M", model="X", technology=technology)
user = services.add_user("w@crash.example.org", "correct-horse-battery-9")
services.set_membership(site, user, "contributor")
print(services.create_token(site, user, name="w", scope="write")[1])
"""
ROWS = 6000
IMPORTED = "select count(*) from audit_auditevent where action = 'cases.imported'"


def start(command, env):
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(check, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds} s for {what}")


def upload(base, token, path):
    with path.open("rb") as handle:
        answer = requests.post(
            f"{base}/api/v1/imports",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (path.name, handle, "text/csv")},
            data={"mode": "all-or-nothing", "status": "submitted"},
            timeout=60,
        )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def test_a_killed_worker_leaves_whole_batches_and_the_file_sent_again_finishes(
    tmp_path,
    database,  # noqa: F811
):
    extra, scalar = database
    env = clean_env(tmp_path, REGISTRY3D_API_WRITES_PER_SECOND="0", **extra)
    token = init_registry(env, SETUP.format(labels=LABELS)).strip().splitlines()[-1]
    path = write_csv(tmp_path / "big.csv", case_rows(ROWS, LABELS, prefix="W"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [*CLI, "serve", "--port", str(port), "--workers", "1", "--no-worker"]
    server, worker = start(serve, env), start([*CLI, "worker", "--interval", "0.2"], env)
    try:
        wait_for(lambda: _answers(base), "the server")
        upload(base, token, path)
        wait_for(
            lambda: (
                scalar("select coalesce(max(batches_committed), 0) from intake_import") >= 2
                or worker.poll() is not None
            ),
            "two batches written",
        )
        assert worker.poll() is None, worker.stderr.read()
        for process in (worker, server):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

        cases = scalar("select count(*) from cases_case")
        written = scalar("select written from intake_import")
        versions = scalar("select count(*) from cases_caseversion")
        batches = scalar("select batches_committed from intake_import")
        events = scalar(IMPORTED)
        assert cases == written == versions
        assert cases % 1000 == 0 and 2000 <= cases < ROWS
        # One audit event per committed batch, none for the batch that was cut.
        assert events == batches >= 2
        assert scalar("select status from intake_import") == "importing"

        # The restarted worker sees the import's process is gone.
        server, worker = start(serve, env), start([*CLI, "worker", "--interval", "0.2"], env)
        wait_for(lambda: scalar("select status from intake_import") == "interrupted", "interrupted")
        wait_for(lambda: _answers(base), "the server again")
        upload(base, token, path)
        wait_for(
            lambda: scalar("select count(*) from intake_import where status = 'done'") == 1,
            "the second import to finish",
            seconds=300,
        )
        assert scalar("select count(*) from cases_case") == ROWS
        assert scalar("select count(distinct case_uid) from cases_case") == ROWS
        assert scalar("select count(*) from cases_caseversion") == ROWS
        assert scalar(IMPORTED) > events
    finally:
        for process in (worker, server):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    verify = subprocess.run([*CLI, "audit", "verify"], env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _answers(base) -> bool:
    try:
        return requests.get(f"{base}/api/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False
