"""Back up a running registry into one archive, and restore it into an empty database.

The archive is a tar file, readable by its owner only, holding:

- ``manifest.json``: registry3d version, database engine, time, migration
  state, rows and checksum of every table and the audit trail's head, all
  read in the same snapshot as the dump;
- ``database.pgdump`` (``pg_dump`` custom format) or ``database.sqlite3``
  (SQLite's online backup);
- ``pseudonym_key``, when the pseudonym secret lives in ``var/pseudonym_key``
  rather than in the environment: without it, restored patient keys cannot
  be matched with new MRNs.
"""

import glob
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection

from registry3d.ops import OpsError, state

FORMAT = "registry3d-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMPS = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}
KEY_MEMBER = "pseudonym_key"
RECORD = "last-backup.json"


def registry3d_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("registry3d")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        from registry3d import __version__

        return __version__


def engine() -> str:
    return "postgresql" if connection.vendor == "postgresql" else "sqlite"


# --- PostgreSQL tools ---------------------------------------------------------------


def pg_tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: on PATH, else the newest installed."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: str) -> tuple:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.parent.name))

    installed = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if installed:
        return installed[-1]
    raise OpsError(
        f"{name} was not found: install the PostgreSQL client tools "
        "(e.g. the postgresql-client package) or put it on PATH"
    )


def pg_env() -> dict[str, str]:
    """The environment that points libpq at the configured database; never on a command line."""
    config = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("NAME", "PGDATABASE"),
    ):
        if config.get(key):
            env[variable] = str(config[key])
    options = config.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("passfile", "PGPASSFILE"),
        ("service", "PGSERVICE"),
    ):
        if options.get(option):
            env[variable] = str(options[option])
    return env


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, env=pg_env(), capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        raise OpsError(f"{what} failed: {detail}")


# --- Backup -------------------------------------------------------------------------


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    size: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_dump(target: Path) -> dict:
    """Dump the database and read its state in one snapshot."""
    pg_dump = pg_tool("pg_dump")
    with state.pg_snapshot() as db:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot}",
                "--exclude-table-data=django_session",
                f"--file={target}",
            ],
            "pg_dump",
        )
        return state.collect(db)


def _sqlite_dump(target: Path) -> dict:
    """Copy the database with SQLite's online backup, then read the state of the copy."""
    source = sqlite3.connect(connection.settings_dict["NAME"], timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # all pages in one step: one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")
        with copy:
            copy.execute("DELETE FROM django_session")
        copy.execute("VACUUM")
    finally:
        copy.close()
        source.close()
    with state.sqlite_snapshot(target) as db:
        return state.collect(db)


def _pseudonym_key() -> tuple[Path | None, dict]:
    if settings.REGISTRY3D_PSEUDONYM_KEY:
        return None, {
            "included": False,
            "source": "environment",
            "note": "REGISTRY3D_PSEUDONYM_KEY is set in the environment; keep a copy of it "
            "apart from this backup",
        }
    path = Path(settings.VAR_DIR) / "pseudonym_key"
    if not path.exists():
        return None, {"included": False, "source": "none", "note": "no pseudonym key yet"}
    return path, {"included": True, "source": str(path), "member": KEY_MEMBER}


def backup(out: Path) -> BackupResult:
    """Write a consistent backup of the configured database to ``out`` (mode 0600)."""
    out = Path(out)
    if out.is_dir():
        raise OpsError(f"{out} is a folder; give a file name such as {out / 'registry.tar'}")
    if not out.parent.is_dir():
        raise OpsError(f"No folder {str(out.parent)!r} to write {out.name} into")
    kind = engine()
    dump_name = DUMPS[kind]
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".registry3d-backup-") as work:
        dump = Path(work) / dump_name
        tables = _pg_dump(dump) if kind == "postgresql" else _sqlite_dump(dump)
        key_path, key_info = _pseudonym_key()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "registry3d_version": registry3d_version(),
            "engine": kind,
            "created_at": created_at,
            "dump": {"member": dump_name, "bytes": dump.stat().st_size, "sha256": _sha256(dump)},
            "pseudonym_key": key_info,
            **tables,
        }
        partial = Path(work) / "archive.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w") as tar:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
            _add_file(tar, dump, dump_name)
            if key_path is not None:
                _add_file(tar, key_path, KEY_MEMBER)
        os.replace(partial, out)
    os.chmod(out, 0o600)
    size = out.stat().st_size
    _record(out, manifest, size)
    return BackupResult(out, manifest, size)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tar.gettarinfo(str(path), arcname=name)
    info.mode = 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(path, "rb") as handle:
        tar.addfile(info, handle)


def _record(out: Path, manifest: dict, size: int) -> None:
    """Note the backup for ``registry3d doctor``: a file under var/backups and an audit event."""
    from registry3d.audit.services import record

    details = {
        "file": str(out.resolve()),
        "bytes": size,
        "engine": manifest["engine"],
        "created_at": manifest["created_at"],
        "tables": len(manifest["tables"]),
        "audit_head_seq": manifest["audit"]["head_seq"],
    }
    folder = Path(settings.VAR_DIR) / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).write_text(json.dumps(details, indent=2) + "\n", encoding="utf-8")
    record("registry.backup", object_type="backup", object_id=out.name, changes=details)


def last_backup() -> datetime | None:
    """When the newest backup recorded on this registry was taken, if any."""
    times = []
    path = Path(settings.VAR_DIR) / "backups" / RECORD
    try:
        times.append(datetime.fromisoformat(json.loads(path.read_text())["created_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from registry3d.audit.models import AuditEvent

    event = AuditEvent.objects.filter(action="registry.backup").order_by("-seq").first()
    if event is not None:
        times.append(event.at)
    return max(times) if times else None


# --- Reading an archive -----------------------------------------------------------------


def check_manifest(manifest, source: str) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OpsError(f"{source} is not a registry3d backup manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise OpsError(
            f"{source} was written by a newer registry3d (backup format {version}, "
            f"this one reads up to {FORMAT_VERSION}); upgrade registry3d first"
        )
    for key in ("engine", "tables", "migrations", "audit", "dump"):
        if key not in manifest:
            raise OpsError(f"{source} is not a complete backup manifest (no {key!r})")
    tables, audit = manifest["tables"], manifest["audit"]
    well_formed = (
        isinstance(tables, dict)
        and all(
            isinstance(t, dict)
            and isinstance(t.get("rows"), int)
            and isinstance(t.get("sha256"), str)
            for t in tables.values()
        )
        and isinstance(manifest["migrations"], dict)
        and isinstance(audit, dict)
        and isinstance(audit.get("head_seq"), int)
        and isinstance(audit.get("head_hash"), str)
        and isinstance(manifest["dump"], dict)
        and manifest["dump"].get("member") in DUMPS.values()
    )
    if not well_formed:
        raise OpsError(f"{source} has a damaged backup manifest")
    return manifest


def read_manifest(path: Path) -> dict:
    """The manifest of a backup archive, or of a manifest.json file."""
    path = Path(path)
    if not path.exists():
        raise OpsError(f"No file {str(path)!r}")
    if path.is_dir():
        raise OpsError(f"{path} is a folder, not a backup file")
    if tarfile.is_tarfile(path):
        with _open_tar(path) as tar:
            return _tar_manifest(tar, path)
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"{path} is neither a registry3d backup archive nor a manifest") from None
    return check_manifest(manifest, str(path))


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise OpsError(f"{path} is not a readable backup archive: {exc}") from None


def _tar_manifest(tar: tarfile.TarFile, path: Path) -> dict:
    try:
        member = tar.getmember(MANIFEST)
        manifest = json.loads(tar.extractfile(member).read())
    except KeyError:
        raise OpsError(f"{path} is not a registry3d backup (it holds no {MANIFEST})") from None
    except (ValueError, tarfile.TarError, AttributeError):
        raise OpsError(f"{path} has a damaged {MANIFEST}") from None
    return check_manifest(manifest, str(path))


# --- Restore ------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    manifest: dict
    notes: list[str]


def restore(path: Path) -> RestoreResult:
    """Restore the archive ``path`` into the configured database, which must be empty."""
    path = Path(path)
    if not path.exists():
        raise OpsError(f"No file {str(path)!r}")
    if path.is_dir() or not tarfile.is_tarfile(path):
        raise OpsError(f"{path} is not a registry3d backup archive")
    with _open_tar(path) as tar:
        manifest = _tar_manifest(tar, path)
        kind = engine()
        if manifest["engine"] != kind:
            raise OpsError(
                f"{path.name} is a {manifest['engine']} backup but the registry is configured "
                f"for {kind}; set DATABASE_URL to a {manifest['engine']} database"
            )
        _refuse_unknown_migrations(manifest)
        try:
            member = tar.getmember(manifest["dump"]["member"])
        except KeyError:
            raise OpsError(f"{path.name} holds no {manifest['dump']['member']}") from None
        if not member.isfile():
            raise OpsError(f"{path.name} holds a damaged {member.name}")
        _refuse_other_key(tar, manifest)
        if kind == "postgresql":
            _restore_pg(tar, member, manifest)
        else:
            _restore_sqlite(tar, member, manifest)
        notes = _restore_key(tar, manifest)
    return RestoreResult(manifest, notes)


def _refuse_unknown_migrations(manifest: dict) -> None:
    from django.db.migrations.loader import MigrationLoader

    known = MigrationLoader(None, ignore_no_migrations=True).disk_migrations
    unknown = [
        f"{app} {name}" for app, name in manifest["migrations"].items() if (app, name) not in known
    ]
    if unknown:
        raise OpsError(
            "The backup's database has migrations this registry3d does not know "
            f"({', '.join(unknown[:3])}); restore it with registry3d "
            f"{manifest.get('registry3d_version', '?')} or newer"
        )


def _refuse_data(found: dict[str, int], where: str) -> None:
    if found:
        listed = ", ".join(
            f"{table}: {rows} row{'s' if rows != 1 else ''}"
            for table, rows in list(found.items())[:4]
        )
        more = f" and {len(found) - 4} more tables" if len(found) > 4 else ""
        raise OpsError(
            f"{where} already holds registry data ({listed}{more}); "
            "restore only into an empty database"
        )


def _copy_checked(source, target: Path, expected: dict) -> None:
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            handle.write(chunk)
    if digest.hexdigest() != expected["sha256"]:
        raise OpsError(
            f"The backup's {expected['member']} is damaged (its checksum does not match "
            "the manifest); nothing was restored"
        )


def _restore_pg(tar: tarfile.TarFile, member: tarfile.TarInfo, manifest: dict) -> None:
    pg_restore = pg_tool("pg_restore")
    name = connection.settings_dict["NAME"]
    tables = set(connection.introspection.table_names())
    _refuse_data(state.data_rows(connection) if tables else {}, f"The database {name!r}")
    connection.close()
    with tempfile.TemporaryDirectory(prefix="registry3d-restore-") as work:
        dump = Path(work) / DUMPS["postgresql"]
        _copy_checked(tar.extractfile(member), dump, manifest["dump"])
        command = [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={name}",
        ]
        if tables:
            # Migrated but empty: the dump's tables replace the empty ones.
            command += ["--clean", "--if-exists"]
        _run([*command, str(dump)], "pg_restore")


def _restore_sqlite(tar: tarfile.TarFile, member: tarfile.TarInfo, manifest: dict) -> None:
    target = Path(connection.settings_dict["NAME"])
    connection.close()
    if target.exists() and target.stat().st_size > 0:
        try:
            with state.sqlite_snapshot(target) as db:
                found = state.data_rows(db)
        except Exception as exc:  # noqa: BLE001 - not a database we may replace
            raise OpsError(f"{target} exists and is not a registry database: {exc}") from None
        _refuse_data(found, str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restoring")
    partial.unlink(missing_ok=True)
    try:
        _copy_checked(tar.extractfile(member), partial, manifest["dump"])
        # A journal left beside the old file must never be applied to the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _refuse_other_key(tar: tarfile.TarFile, manifest: dict) -> None:
    """Refuse, before anything is restored, a registry whose pseudonym key differs.

    Patient keys are keyed hashes: with another key, the same MRN would get
    a new key after the restore and match none of the restored cases.
    """
    info = manifest.get("pseudonym_key") or {}
    if not info.get("included"):
        return
    try:
        secret = tar.extractfile(tar.getmember(info.get("member", KEY_MEMBER))).read().strip()
    except (KeyError, AttributeError):
        return
    if settings.REGISTRY3D_PSEUDONYM_KEY:
        current, where = (
            settings.REGISTRY3D_PSEUDONYM_KEY.strip().encode(),
            "REGISTRY3D_PSEUDONYM_KEY",
        )
    else:
        path = Path(settings.VAR_DIR) / "pseudonym_key"
        if not path.exists():
            return
        current, where = path.read_bytes().strip(), str(path)
    if current != secret:
        raise OpsError(
            f"{where} differs from the backup's pseudonym key, so patient keys made after "
            "the restore would not match the restored ones; restore with the backup's key "
            "(remove or change it) and try again"
        )


def _restore_key(tar: tarfile.TarFile, manifest: dict) -> list[str]:
    info = manifest.get("pseudonym_key") or {}
    if not info.get("included"):
        return [f"Pseudonym key: {info.get('note', 'not in the backup')}."]
    try:
        secret = tar.extractfile(tar.getmember(info.get("member", KEY_MEMBER))).read()
    except (KeyError, AttributeError):
        return ["Pseudonym key: listed in the manifest but missing from the archive."]
    if settings.REGISTRY3D_PSEUDONYM_KEY:
        if settings.REGISTRY3D_PSEUDONYM_KEY.strip().encode() != secret.strip():
            return [
                "Pseudonym key: REGISTRY3D_PSEUDONYM_KEY differs from the backed-up key; "
                "new patient keys will not match restored ones"
            ]
        return []
    path = Path(settings.VAR_DIR) / "pseudonym_key"
    if path.exists():
        if path.read_bytes().strip() != secret.strip():
            return [
                f"Pseudonym key: {path} differs from the backed-up key and was left unchanged; "
                "new patient keys will not match restored ones"
            ]
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return [f"Pseudonym key restored to {path}."]
