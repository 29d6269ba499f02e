"""Back up a populated registry, restore it into an empty database, verify it.

Runs on SQLite, and on PostgreSQL when the suite does (DATABASE_URL).
"""

import io
import json
import stat
import subprocess
import tarfile
import time

import pytest

from registry3d.ops import OpsError, backup
from tests.ops.conftest import CLI

POPULATE = """
import random
from registry3d.cases import services as cases
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.pseudonym import patient_key
from registry3d.questionnaires import services as questionnaires
from registry3d.sites import services

site = services.add_site("BKP01", "Backup Hospital", region="Ohio", facility_type="academic")
other = services.add_site("BKP02", "Other Clinic", region="Texas", facility_type="community")
owner = services.add_user("owner@bkp.example.org", "correct-horse-battery-9")
services.set_membership(site, owner, "manager")
services.set_membership(other, owner, "viewer")
labels = {}
for technology in ["material_jetting", "vat_photopolymerization", "material_extrusion",
                   "powder_bed_fusion", "binder_jetting"]:
    labels[technology] = f"P-{technology[:10]}"
    services.add_printer(site, label=labels[technology], manufacturer="M", model="X",
                         technology=technology)
dictionary = registry.current().dictionary
saved = []
for i in range(24):
    data = synthetic_case(dictionary, random.Random(i), printer_labels=labels)
    saved.append(cases.save_case(
        site, case_uid=f"BK-{i:03d}", data=data, status="submitted", actor=owner,
        patient_key=patient_key("BKP01", f"MRN{i}"),
    ).case)
for case in saved[:3]:
    cases.patch_case(case, {"age_years": 33}, actor=owner)
cases.withdraw_case(saved[5], "asked to leave the registry")
questionnaires.send(saved[1], email="dr.kim@hospital.example.org", specialty="urology")
questionnaires.send(saved[2], email="dr.lee@hospital.example.org", specialty="urology")
"""


@pytest.fixture(scope="module")
def source(new_registry, tmp_path_factory):
    """A populated registry, its row counts before the backup, and the backup."""
    registry = new_registry("source", migrated=True)
    populate = registry.cli("manage", "shell", "-c", POPULATE)
    assert populate.returncode == 0, populate.stderr
    archive = tmp_path_factory.mktemp("backups") / "registry.tar"
    result = registry.cli("backup", "--out", str(archive))
    assert result.returncode == 0, result.stderr
    manifest = backup.read_manifest(archive)
    manifest_tables = sorted(manifest["tables"])
    counts = {table: registry.count(table) for table in manifest_tables}
    # The backup itself is recorded after its snapshot: one audit event more.
    counts["audit_auditevent"] -= 1
    return registry, archive, manifest, counts, result


@pytest.fixture(scope="module")
def restored(new_registry, source):
    registry = new_registry("restored")
    result = registry.cli("restore", str(source[1]))
    return registry, result


def test_backup_is_one_private_archive_with_a_manifest_of_every_table(source):
    registry, archive, manifest, counts, result = source
    assert "Wrote" in result.stdout and "and the pseudonym key" in result.stdout
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    engine = "postgresql" if registry.url else "sqlite"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert all(stat.S_IMODE(m.mode) == 0o600 for m in tar.getmembers())
        key = tar.extractfile("pseudonym_key").read()
    assert names == ["manifest.json", backup.DUMPS[engine], "pseudonym_key"]
    assert key == (registry.var / "pseudonym_key").read_bytes()
    assert manifest["engine"] == engine
    assert manifest["registry3d_version"]
    assert manifest["pseudonym_key"]["included"] is True
    assert manifest["migrations"]["cases"].startswith("0")
    assert "django_session" not in manifest["tables"]
    for table in (
        "accounts_user",
        "audit_auditevent",
        "auth_permission",
        "cases_case",
        "cases_caseversion",
        "django_tasks_database_dbtaskresult",
        "questionnaires_questionnairerequest",
        "sites_site",
    ):
        assert manifest["tables"][table]["rows"] == counts[table], table
        assert len(manifest["tables"][table]["sha256"]) == 64
    assert manifest["tables"]["cases_case"]["rows"] == 24
    assert manifest["tables"]["cases_caseversion"]["rows"] == 24 + 3 + 1
    assert manifest["tables"]["django_tasks_database_dbtaskresult"]["rows"] >= 2
    assert manifest["audit"]["events"] == manifest["audit"]["head_seq"] > 30
    # Taking the backup is recorded for the doctor, and in the audit trail.
    record = json.loads((registry.var / "backups" / "last-backup.json").read_text())
    assert record["file"] == str(archive) and record["engine"] == engine
    assert registry.execute(
        "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'registry.backup'"
    ) == (1,)


def test_restore_into_an_empty_database_reproduces_every_table(source, restored):
    _, archive, manifest, counts, _ = source
    registry, result = restored
    assert result.returncode == 0, result.stdout + result.stderr
    tables = len(manifest["tables"])
    assert f"All {tables} tables match the backup of {manifest['created_at']}" in result.stdout
    assert "audit trail intact" in result.stdout
    assert {table: registry.count(table) for table in counts} == counts
    key = registry.var / "pseudonym_key"
    assert key.read_bytes() == (source[0].var / "pseudonym_key").read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    verify = registry.cli("verify", "--manifest", str(archive))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert registry.cli("audit", "verify").returncode == 0
    shown = registry.cli("case", "show", "BKP01", "BK-001")
    assert shown.returncode == 0 and '"version": 2' in shown.stdout


def test_verify_without_a_manifest_counts_rows_and_checks_the_chain(restored):
    registry, _ = restored
    result = registry.cli("verify")
    assert result.returncode == 0, result.stderr
    assert "cases_case" in result.stdout
    assert "tables counted; audit trail intact" in result.stdout


def test_a_changed_row_fails_verification_naming_its_table(source, new_registry):
    registry = new_registry("tampered")
    assert registry.cli("restore", str(source[1])).returncode == 0
    registry.execute("UPDATE sites_site SET name = 'Changed Hospital' WHERE code = 'BKP02'")
    result = registry.cli("verify", "--manifest", str(source[1]))
    assert result.returncode == 1
    assert "sites_site" in result.stdout
    assert "cases_case" not in result.stdout
    assert result.stderr.strip() == "Verification FAILED: 1 mismatch (sites_site)."


def test_a_changed_manifest_fails_verification(source, restored, tmp_path):
    registry, _ = restored
    manifest = json.loads(json.dumps(source[2]))
    manifest["tables"]["cases_case"]["rows"] += 1
    manifest["tables"]["cases_caseversion"]["sha256"] = "0" * 64
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    result = registry.cli("verify", "--manifest", str(path))
    assert result.returncode == 1
    assert "cases_case " in result.stdout and "cases_caseversion" in result.stdout
    assert "Verification FAILED: 2 mismatches" in result.stderr


def test_a_deleted_audit_event_fails_verification(source, new_registry):
    registry = new_registry("audit")
    assert registry.cli("restore", str(source[1])).returncode == 0
    registry.execute("DELETE FROM audit_auditevent WHERE seq = 3")
    result = registry.cli("verify", "--manifest", str(source[1]))
    assert result.returncode == 1
    assert "audit hash chain" in result.stdout and "event #3 is missing" in result.stdout
    assert "audit_auditevent" in result.stdout


def test_restore_refuses_a_database_that_holds_data(source):
    registry, archive, _, counts, _ = source
    before = registry.count("cases_case")
    result = registry.cli("restore", str(archive))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: ")
    assert "already holds registry data (" in result.stderr
    assert "cases_case: 24 rows" in result.stderr
    assert result.stderr.rstrip().endswith("restore only into an empty database")
    assert registry.count("cases_case") == before


def test_restore_into_a_migrated_but_empty_database(source, new_registry):
    registry = new_registry("migrated", migrated=True)
    result = registry.cli("restore", str(source[1]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tables match the backup" in result.stdout
    assert registry.count("cases_case") == 24
    # The restored registry takes new rows (its id sequences came along) and audits them.
    added = registry.cli("site", "add", "NEW01", "--name", "New Hospital")
    assert added.returncode == 0, added.stderr
    assert registry.cli("audit", "verify").returncode == 0


def _tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_bad_files_are_refused_in_one_line(source, restored, tmp_path):
    registry, _ = restored
    manifest = dict(source[2])
    text = tmp_path / "notes.txt"
    text.write_text("not a backup\n")
    newer = _tar(
        tmp_path / "newer.tar",
        {"manifest.json": json.dumps({**manifest, "format_version": 99}).encode()},
    )
    foreign = _tar(tmp_path / "foreign.tar", {"data.csv": b"a,b\n"})
    other_format = tmp_path / "other.json"
    other_format.write_text(json.dumps({"format": "something-else"}))
    cases = [
        (("restore", str(tmp_path / "missing.tar")), "No file"),
        (("restore", str(text)), "is not a registry3d backup archive"),
        (("restore", str(foreign)), "is not a registry3d backup (it holds no manifest.json)"),
        (("restore", str(newer)), "was written by a newer registry3d (backup format 99"),
        (("verify", "--manifest", str(tmp_path / "missing.json")), "No file"),
        (("verify", "--manifest", str(text)), "neither a registry3d backup archive nor"),
        (("verify", "--manifest", str(other_format)), "is not a registry3d backup manifest"),
        (("verify", "--manifest", str(newer)), "upgrade registry3d first"),
        (("backup", "--out", str(tmp_path / "no" / "such" / "b.tar")), "No folder"),
    ]
    for args, message in cases:
        result = registry.cli(*args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("Error: ") and message in result.stderr, args
        assert result.stderr.count("\n") == 1, result.stderr
    # Nothing was touched by the refusals.
    assert registry.count("cases_case") == 24


def test_a_backup_of_the_other_engine_is_refused(source, tmp_path, new_registry):
    manifest = dict(source[2])
    other = "sqlite" if manifest["engine"] == "postgresql" else "postgresql"
    archive = _tar(
        tmp_path / "other.tar",
        {"manifest.json": json.dumps({**manifest, "engine": other}).encode()},
    )
    result = new_registry("engine").cli("restore", str(archive))
    assert result.returncode == 1
    assert f"is a {other} backup but the registry is configured for" in result.stderr


def test_a_damaged_dump_is_refused_before_anything_is_restored(source, tmp_path, new_registry):
    manifest = dict(source[2])
    member = manifest["dump"]["member"]
    archive = _tar(
        tmp_path / "damaged.tar",
        {"manifest.json": json.dumps(manifest).encode(), member: b"garbage"},
    )
    registry = new_registry("damaged")
    result = registry.cli("restore", str(archive))
    assert result.returncode == 1
    assert f"The backup's {member} is damaged" in result.stderr
    assert not (registry.var / "registry3d.sqlite3").exists() or registry.url


def test_missing_pg_dump_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    monkeypatch.setattr(backup.glob, "glob", lambda pattern: [])
    with pytest.raises(OpsError, match=r"^pg_dump was not found: install the PostgreSQL client"):
        backup.pg_tool("pg_dump")


def test_the_newest_installed_pg_dump_is_used_when_none_is_on_the_path(monkeypatch):
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    found = ["/usr/lib/postgresql/9/bin/pg_dump", "/usr/lib/postgresql/16/bin/pg_dump"]
    monkeypatch.setattr(backup.glob, "glob", lambda pattern: list(found))
    assert backup.pg_tool("pg_dump") == "/usr/lib/postgresql/16/bin/pg_dump"


def test_the_checksums_do_not_depend_on_the_engine():
    from datetime import UTC, datetime
    from decimal import Decimal
    from uuid import UUID

    from registry3d.ops.state import canonical

    moment = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    # What SQLite gives, and what PostgreSQL gives, for the same value.
    assert canonical("2026-03-01 12:00:05", "DateTimeField") == canonical(moment, "DateTimeField")
    assert canonical(12.5, "DecimalField") == canonical(Decimal("12.50"), "DecimalField")
    uid = UUID("12345678-1234-5678-1234-567812345678")
    assert canonical(uid.hex, "UUIDField") == canonical(uid, "UUIDField")
    assert canonical('{"b": 1e16, "a": [1.5]}', "JSONField") == canonical(
        '{"a": [1.5], "b": 10000000000000000}', "JSONField"
    )
    assert canonical(1, "BooleanField") is canonical(True, "BooleanField") is True


def test_commands_have_help():
    for command in ("backup", "restore", "verify", "doctor"):
        from click.testing import CliRunner

        from registry3d.cli import main

        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        assert len(result.output.split("\n\n")[1].strip()) > 10


WRITER = """
import time
from pathlib import Path
from registry3d.cases import services as cases
from registry3d.sites import services

site = services.add_site("BUSY1", "Busy Hospital")
stop = Path({stop!r})
deadline = time.monotonic() + 120
i = 0
while not stop.exists() and time.monotonic() < deadline:
    cases.save_case(site, case_uid=f"W-{{i:05d}}", data={{"age_years": i % 90}}, status="draft")
    i += 1
"""


def test_a_backup_taken_during_writes_is_one_consistent_snapshot(new_registry, tmp_path):
    """Cases are written while the backup runs: the dump and its manifest agree."""
    registry = new_registry("busy", migrated=True)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [*CLI, "manage", "shell", "-c", WRITER.format(stop=str(stop))],
        env=registry.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _cases(registry) < 5:
            assert writer.poll() is None, writer.stderr.read()
            assert time.monotonic() < deadline, "the writer wrote nothing"
            time.sleep(0.2)
        archive = tmp_path / "busy.tar"
        result = registry.cli("backup", "--out", str(archive))
        assert result.returncode == 0, result.stderr
        time.sleep(0.5)
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0, writer.stderr.read()
    manifest = backup.read_manifest(archive)
    tables = manifest["tables"]
    # Every case has its one version and its audit event, and nothing more.
    assert tables["cases_case"]["rows"] == tables["cases_caseversion"]["rows"] >= 5
    assert manifest["audit"]["events"] == manifest["audit"]["head_seq"]
    assert registry.count("cases_case") > tables["cases_case"]["rows"]  # writes went on

    target = new_registry("busy-restored")
    restored = target.cli("restore", str(archive))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert target.count("cases_case") == tables["cases_case"]["rows"]


def _cases(registry) -> int:
    try:
        return registry.count("cases_case")
    except Exception:  # noqa: BLE001 - locked or not yet there
        return 0


def test_restore_refuses_a_registry_with_another_pseudonym_key_before_touching_it(
    source, new_registry
):
    registry = new_registry("other-key")
    registry.var.mkdir(parents=True, exist_ok=True)
    (registry.var / "pseudonym_key").write_text("a-different-key-" + "k" * 40 + "\n")
    result = registry.cli("restore", str(source[1]))
    assert result.returncode == 1
    assert "differs from the backup's pseudonym key" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was restored: the database has no case table, or an empty one.
    try:
        cases = registry.count("cases_case")
    except Exception:  # noqa: BLE001 - no table (or no database file) at all
        cases = 0
    assert cases == 0
    assert (registry.var / "pseudonym_key").read_text().startswith("a-different-key-")
