"""``registry3d doctor``: check a deployment and say what to fix, one line per check."""

import os
import shutil
import stat
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"
# A job waiting longer than this means no worker takes jobs.
JOB_WAIT = timedelta(minutes=5)
BACKUP_AGE = timedelta(hours=26)
MIN_FREE_BYTES = 1024**3
MIN_FREE_SHARE = 0.10


@dataclass
class Check:
    name: str
    status: str
    message: str
    fix: str = ""


def check_settings() -> list[Check]:
    checks = []
    if not settings.PRODUCTION:
        checks.append(
            Check(
                "production mode",
                WARN,
                "REGISTRY3D_PRODUCTION is off (development defaults: no HTTPS-only cookies, "
                "no HSTS)",
                "set REGISTRY3D_PRODUCTION=1 on a real deployment",
            )
        )
    else:
        checks.append(Check("production mode", OK, "REGISTRY3D_PRODUCTION is on"))
    if settings.DEBUG:
        checks.append(
            Check(
                "debug",
                FAIL,
                "DEBUG is on: error pages show code and settings",
                "unset REGISTRY3D_DEBUG",
            )
        )
    else:
        checks.append(Check("debug", OK, "DEBUG is off"))
    from_env = bool(os.environ.get("SECRET_KEY"))
    if from_env:
        checks.append(Check("secret key", OK, "SECRET_KEY comes from the environment"))
    else:
        key_file = Path(settings.VAR_DIR) / "secret_key"
        checks.append(
            Check(
                "secret key",
                WARN if settings.PRODUCTION else OK,
                f"SECRET_KEY comes from {key_file}",
                "set SECRET_KEY in the environment (from a secrets store) in production"
                if settings.PRODUCTION
                else "",
            )
        )
    hosts = list(settings.ALLOWED_HOSTS)
    if "*" in hosts:
        checks.append(
            Check(
                "allowed hosts",
                FAIL if settings.PRODUCTION else WARN,
                "ALLOWED_HOSTS accepts any host name",
                "set ALLOWED_HOSTS to the registry's host names, e.g. registry.example.org",
            )
        )
    elif settings.PRODUCTION:
        checks.append(Check("allowed hosts", OK, "ALLOWED_HOSTS: " + ", ".join(hosts)))
    else:
        checks.append(
            Check(
                "allowed hosts",
                OK,
                "ALLOWED_HOSTS: " + ", ".join(hosts) + " (local only)",
            )
        )
    checks.append(_key_file_check())
    return checks


def _key_file_check() -> Check:
    if settings.REGISTRY3D_PSEUDONYM_KEY:
        return Check("pseudonym key", OK, "REGISTRY3D_PSEUDONYM_KEY comes from the environment")
    path = Path(settings.VAR_DIR) / "pseudonym_key"
    if not path.exists():
        return Check("pseudonym key", OK, f"{path} will be created with the first patient key")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(
            "pseudonym key",
            FAIL,
            f"{path} is readable by others (mode {mode:o})",
            f"chmod 600 {path}",
        )
    return Check(
        "pseudonym key",
        OK,
        f"{path} (owner only); backups include it",
    )


def check_deploy() -> Check:
    from django.core import checks

    try:
        messages = checks.run_checks(include_deployment_checks=True)
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a finding too
        return Check("check --deploy", FAIL, f"the system checks failed to run: {exc}")
    messages = [m for m in messages if not m.is_silenced()]
    errors = [m for m in messages if m.level >= checks.ERROR]
    warnings = [m for m in messages if checks.WARNING <= m.level < checks.ERROR]
    fix = "run 'registry3d manage check --deploy' for each finding and its fix"
    if errors:
        ids = ", ".join(sorted({m.id for m in errors}))
        return Check("check --deploy", FAIL, f"{len(errors)} errors ({ids})", fix)
    if warnings:
        ids = ", ".join(sorted({m.id for m in warnings}))
        return Check("check --deploy", WARN, f"{len(warnings)} warnings ({ids})", fix)
    return Check("check --deploy", OK, "no findings")


def check_database() -> Check:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    where = _database_label()
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(
            "database",
            FAIL,
            f"cannot reach {where}: {first}",
            "check DATABASE_URL and that the database server runs",
        )
    if plan:
        return Check(
            "database",
            FAIL,
            f"{where} is reachable but not migrated ({len(plan)} migrations to apply)",
            "run 'registry3d init'",
        )
    return Check("database", OK, f"{where} is reachable and fully migrated")


def _database_label() -> str:
    from django.db import connection

    config = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"PostgreSQL {config.get('NAME')} on {config.get('HOST') or 'local socket'}"
    return f"SQLite {config.get('NAME')}"


def check_worker() -> Check:
    from django.utils import timezone

    backend = settings.TASKS.get("default", {}).get("BACKEND", "")
    if not backend.startswith("django_tasks_db"):
        return Check("worker", OK, f"jobs run without a queue ({backend.rsplit('.', 1)[-1]})")
    from django_tasks_db.models import DBTaskResult, get_date_max

    now = timezone.now()
    ready = DBTaskResult.objects.ready()
    # A job waits from when it was queued, or from when it was due, if later.
    waiting = [
        max(enqueued_at, run_after) if run_after != get_date_max() else enqueued_at
        for enqueued_at, run_after in ready.order_by("enqueued_at").values_list(
            "enqueued_at", "run_after"
        )[:1000]
    ]
    stale = [since for since in waiting if now - since > JOB_WAIT]
    fix = "run 'registry3d worker' as a service ('registry3d serve' starts one too)"
    if stale:
        minutes = int((now - min(stale)).total_seconds() // 60)
        return Check(
            "worker",
            FAIL,
            f"{len(stale)} jobs have waited up to {minutes} minutes: no worker is running",
            fix,
        )
    recent = (
        DBTaskResult.objects.filter(finished_at__gte=now - timedelta(days=1))
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    if recent is not None:
        return Check("worker", OK, f"a worker finished a job at {recent:%Y-%m-%d %H:%M} UTC")
    return Check(
        "worker",
        WARN,
        "no job ran in the last day, so a running worker cannot be confirmed",
        fix,
    )


def check_mail() -> Check:
    if settings.EMAIL_HOST:
        return Check("mail", OK, f"e-mail goes through {settings.EMAIL_HOST}:{settings.EMAIL_PORT}")
    return Check(
        "mail",
        WARN,
        "EMAIL_HOST is not set: invitations, password resets and questionnaires are printed "
        "to the console, not sent",
        "set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD)",
    )


def check_disk() -> Check:
    folder = Path(settings.VAR_DIR)
    try:
        usage = shutil.disk_usage(folder if folder.exists() else folder.parent)
    except OSError as exc:
        return Check("disk space", FAIL, f"cannot read the disk of {folder}: {exc}")
    free_gb = usage.free / 1024**3
    share = usage.free / usage.total if usage.total else 0
    message = f"{free_gb:.1f} GB free ({share:.0%}) in {folder}"
    if usage.free < MIN_FREE_BYTES or share < MIN_FREE_SHARE:
        return Check(
            "disk space",
            WARN,
            message,
            "free space or grow the disk: the database, imports and backups need room",
        )
    return Check("disk space", OK, message)


def check_backups() -> Check:
    from django.utils import timezone

    from registry3d.ops.backup import last_backup

    fix = "run 'registry3d backup --out FILE' daily (e.g. from cron) and keep copies off the server"
    newest = last_backup()
    if newest is None:
        return Check("backups", WARN, "no backup has been recorded", fix)
    age = timezone.now() - newest
    hours = age.total_seconds() / 3600
    if age > BACKUP_AGE:
        return Check("backups", WARN, f"the newest backup is {hours:.0f} hours old", fix)
    return Check("backups", OK, f"the newest backup is {hours:.1f} hours old")


def check_backup_tool() -> Check | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    from registry3d.ops import OpsError
    from registry3d.ops.backup import pg_tool

    try:
        found = pg_tool("pg_dump")
    except OpsError as exc:
        return Check("backup tools", FAIL, str(exc), "install postgresql-client")
    return Check("backup tools", OK, f"pg_dump at {found}")


def run() -> list[Check]:
    """Every check, in order; those needing the database are skipped when it is not ready."""
    results = check_settings()
    results.append(check_deploy())
    database = check_database()
    results.append(database)
    if database.status == OK:
        results += [check_worker(), check_backups()]
    else:
        for name in ("worker", "backups"):
            results.append(Check(name, WARN, "not checked: the database is not ready"))
    results.append(check_mail())
    results.append(check_disk())
    tool = check_backup_tool()
    if tool is not None:
        results.append(tool)
    return results
