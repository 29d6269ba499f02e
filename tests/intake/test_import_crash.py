"""Kill an import mid-way: only whole batches are stored, and a rerun finishes it."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from tests.intake.import_files import case_rows, write_csv
from tests.test_deployment import clean_env, init_registry

CLI = [sys.executable, "-m", "registry3d.cli"]
LABELS = {
    t: f"P-{t[:10]}"
    for t in [
        "material_jetting",
        "vat_photopolymerization",
        "material_extrusion",
        "powder_bed_fusion",
        "binder_jetting",
    ]
}
SETUP = """
from registry3d.sites import services
site = services.add_site("CRASH", "Crash Test Hospital")
for technology, label in {labels!r}.items():
    services.add_printer(site, label=label, manufacturer="M", model="X", technology=technology)
"""


@pytest.fixture
def database(tmp_path):
    """A registry database of its own for the killed import: SQLite, or a new
    PostgreSQL database beside the suite's when the suite runs on PostgreSQL
    (where batches are written by two threads on two connections)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        path = tmp_path / "var" / "registry3d.sqlite3"
        yield {}, lambda sql: _sqlite_scalar(path, sql)
        return
    import psycopg

    name = f"crash_{uuid.uuid4().hex[:12]}"
    server = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def scalar(sql):
        with psycopg.connect(f"{server}/{name}", autocommit=True) as connection:
            sql = sql.replace("group_concat(status)", "string_agg(status, ',')")
            return connection.execute(sql).fetchone()[0]

    yield {"DATABASE_URL": f"{server}/{name}"}, scalar
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _sqlite_scalar(db, sql):
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchone()[0]


def test_a_killed_import_keeps_only_whole_batches_and_a_rerun_finishes_it(tmp_path, database):
    extra, scalar = database
    env = clean_env(tmp_path, **extra)
    init_registry(env, SETUP.format(labels=LABELS))
    rows = 6000
    path = write_csv(tmp_path / "big.csv", case_rows(rows, LABELS, prefix="K"))

    process = subprocess.Popen(
        [*CLI, "import", str(path), "--site", "CRASH"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            committed = scalar("select coalesce(max(batches_committed), 0) from intake_import")
        except sqlite3.OperationalError:
            committed = 0
        if committed >= 2:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be killed"

    cases = scalar("select count(*) from cases_case")
    written = scalar("select written from intake_import")
    versions = scalar("select count(*) from cases_caseversion")
    assert cases == written == versions
    assert cases % 1000 == 0 and 2000 <= cases < rows
    assert scalar("select status from intake_import") == "importing"

    rerun = subprocess.run(
        [*CLI, "import", str(path), "--site", "CRASH"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "1 earlier import(s) had stopped before finishing; marked interrupted." in rerun.stderr
    assert (
        f"{rows} rows — {rows - cases} new, 0 changed, {cases} unchanged, 0 invalid" in rerun.stdout
    )
    assert scalar("select count(*) from cases_case") == rows
    assert scalar("select count(distinct case_uid) from cases_case") == rows
    statuses = scalar("select group_concat(status) from intake_import")
    assert sorted(statuses.split(",")) == ["done", "interrupted"]
    verify = subprocess.run([*CLI, "audit", "verify"], env=env, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
