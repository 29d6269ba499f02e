"""``registry3d doctor`` on real deployments: what it finds, and what it says to fix."""

import secrets

import pytest


def lines(result) -> dict[str, str]:
    """The doctor's lines by check name: {"worker": "WARN  worker  ..."}."""
    found = {}
    for line in result.stdout.splitlines()[:-1]:
        status, rest = line.split(None, 1)
        found[rest.split("  ", 1)[0].strip()] = f"{status} {rest}"
    return found


@pytest.fixture(scope="module")
def fresh(new_registry):
    return new_registry("doctor", migrated=True)


def test_a_fresh_registry_is_told_about_worker_backups_and_mail(fresh):
    result = fresh.cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert found["database"].startswith("OK ")
    assert "fully migrated" in found["database"]
    assert found["worker"].startswith("WARN worker")
    assert "-> fix: run 'registry3d worker'" in found["worker"]
    assert found["backups"].startswith("WARN backups")
    assert (
        "no backup has been recorded -> fix: run 'registry3d backup --out FILE'"
        in (found["backups"])
    )
    assert found["mail"].startswith("WARN mail")
    assert "-> fix: set EMAIL_HOST" in found["mail"]
    assert found["production mode"].startswith("WARN")
    assert found["check --deploy"].startswith("WARN")
    assert "security.W012" in found["check --deploy"]
    assert found["debug"].startswith("OK")
    assert found["disk space"].split()[0] in ("OK", "WARN")
    assert result.stdout.splitlines()[-1].startswith("0 failed, ")
    # For cron and monitoring, --strict turns those warnings into exit 1.
    strict = fresh.cli("doctor", "--strict")
    assert strict.returncode == 1 and strict.stdout.splitlines()[-1].startswith("0 failed, ")


def test_doctor_prints_no_secret(fresh):
    secret, password = "s3cr3t-key-" + "x" * 40, "mail-pa55word-9"
    result = fresh.cli(
        "doctor",
        env={
            "SECRET_KEY": secret,
            "EMAIL_HOST": "smtp.example.org",
            "EMAIL_HOST_PASSWORD": password,
        },
    )
    key = (
        (fresh.var / "pseudonym_key").read_text().strip()
        if (fresh.var / "pseudonym_key").exists()
        else "no-key-file"
    )
    for hidden in (secret, password, key):
        assert hidden not in result.stdout + result.stderr


def test_production_settings_and_mail_pass(fresh):
    result = fresh.cli(
        "doctor",
        env={
            "REGISTRY3D_PRODUCTION": "1",
            "ALLOWED_HOSTS": "registry.example.org",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "EMAIL_HOST": "smtp.example.org",
        },
    )
    found = lines(result)
    assert found["production mode"].startswith("OK")
    assert found["secret key"].startswith("OK") and "environment" in found["secret key"]
    assert (
        found["allowed hosts"].startswith("OK")
        and "registry.example.org" in (found["allowed hosts"])
    )
    assert found["mail"].startswith("OK") and "smtp.example.org:587" in found["mail"]
    assert found["check --deploy"].startswith("OK")


def test_a_job_waiting_for_minutes_means_no_worker_runs(fresh):
    enqueue = fresh.cli(
        "manage",
        "shell",
        "-c",
        "from registry3d.accounts.tasks import send_email;"
        "send_email.enqueue(['a@example.org'], 'Hello', 'Text')",
    )
    assert enqueue.returncode == 0, enqueue.stderr
    table = "django_tasks_database_dbtaskresult"
    fresh.execute(f"UPDATE {table} SET enqueued_at = '2020-01-01 00:00:00+00:00'")
    result = fresh.cli("doctor")
    assert result.returncode == 1
    assert (
        lines(result)["worker"].startswith("FAIL worker")
        and "no worker is running -> fix: run 'registry3d worker'" in (lines(result)["worker"])
    )
    fresh.execute(f"DELETE FROM {table}")


def test_a_recent_backup_is_ok(fresh, tmp_path):
    result = fresh.cli("backup", "--out", str(tmp_path / "b.tar"))
    assert result.returncode == 0, result.stderr
    # The audit trail remembers it too, should var/backups be lost.
    (fresh.var / "backups" / "last-backup.json").unlink()
    found = lines(fresh.cli("doctor"))
    assert found["backups"].startswith("OK") and "hours old" in found["backups"]


def test_an_unmigrated_database_fails(new_registry):
    registry = new_registry("unmigrated")
    result = registry.cli("doctor")
    assert result.returncode == 1
    found = lines(result)
    assert found["database"].startswith("FAIL database")
    assert (
        "not migrated" in found["database"]
        and "-> fix: run 'registry3d init'" in (found["database"])
    )
    assert "not checked: the database is not ready" in found["worker"]
    assert result.stdout.splitlines()[-1].startswith("1 failed, ")


def test_an_unreachable_database_fails(new_registry):
    registry = new_registry("unreachable")
    result = registry.cli("doctor", env={"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1
    found = lines(result)
    assert found["database"].startswith("FAIL database") and "cannot reach" in found["database"]
    assert "-> fix: check DATABASE_URL" in found["database"]
    assert "Traceback" not in result.stderr
