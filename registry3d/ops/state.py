"""What a registry database holds, as numbers a backup carries and a restore must reproduce.

For every table of the registry's apps: the number of rows and a SHA-256
over the rows read in primary-key order. Values are written in one
canonical form before they are hashed (times in UTC with microseconds,
decimals without trailing zeros, UUIDs as 32 hexadecimal digits, JSON with
sorted keys), so the same data give the same checksum on SQLite and on
PostgreSQL. Each state is read inside one snapshot of the database.
"""

import hashlib
import json
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from django.apps import apps
from django.db import connection, transaction
from django.utils.dateparse import parse_date, parse_datetime

# Log-in sessions are short-lived credentials: never backed up, never compared.
SKIPPED_TABLES = {"django_session"}
# Tables whose rows migrating an empty database writes by itself.
BOOKKEEPING_TABLES = {"django_content_type", "auth_permission", "audit_audithead"}
TEXT_KINDS = {"CharField", "TextField", "SlugField", "EmailField", "FilePathField", "FileField"}
BATCH = 2000


def registry_tables() -> dict[str, type]:
    """Every table of the installed apps' models, by name (sessions left out)."""
    tables = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy or meta.swapped or meta.db_table in SKIPPED_TABLES:
            continue
        tables.setdefault(meta.db_table, model)
    return dict(sorted(tables.items()))


def _kind(field) -> str:
    """The field's internal type; a foreign key takes the type of what it points to."""
    if field is None:
        return ""
    while field.is_relation and getattr(field, "target_field", None) is not None:
        field = field.target_field
    kind = field.get_internal_type()
    return {"AutoField": "IntegerField", "BigAutoField": "IntegerField"}.get(kind, kind)


def _datetime(value) -> str:
    if isinstance(value, str):
        value = parse_datetime(value) or value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds")
    return str(value)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # PostgreSQL's jsonb writes 1e16 as 10000000000000000 and 2.0 as 2.0:
        # a whole number is an int while exact, a float beyond.
        if float(value).is_integer() and abs(value) < 2**53:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def canonical(value, kind: str = ""):
    """Return ``value`` in the one form both databases give for it."""
    if value is None:
        return None
    if kind in ("BooleanField", "NullBooleanField"):
        return bool(value)
    if kind == "DecimalField" or isinstance(value, Decimal):
        number = Decimal(str(value)).normalize()
        return format(number, "f")
    if kind == "UUIDField" or isinstance(value, uuid.UUID):
        try:
            return uuid.UUID(str(value)).hex
        except ValueError:
            return str(value)
    if kind == "JSONField":
        if isinstance(value, str | bytes):
            try:
                value = json.loads(value)
            except ValueError:
                return str(value)
        return json.dumps(
            _json_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    if kind == "DateTimeField" or isinstance(value, datetime):
        return _datetime(value)
    if kind == "DateField" or isinstance(value, date):
        parsed = parse_date(value) if isinstance(value, str) else value
        return parsed.isoformat() if parsed else str(value)
    if isinstance(value, time):
        return value.isoformat(timespec="microseconds")
    if kind == "DurationField" or isinstance(value, timedelta):
        if isinstance(value, timedelta):
            return (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        return int(value)
    if kind == "FloatField" or isinstance(value, float):
        return repr(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if kind == "GenericIPAddressField":
        return str(value).split("/")[0]
    if isinstance(value, bool | int | str):
        return value
    return str(value)


def table_state(db, table: str, model) -> dict:
    """Rows and checksum of one table, read through the Django connection ``db``."""
    quote = db.ops.quote_name
    with db.cursor() as cursor:
        columns = sorted(c.name for c in db.introspection.get_table_description(cursor, table))
    fields = {f.column: f for f in model._meta.concrete_fields}
    kinds = [_kind(fields.get(column)) for column in columns]
    pk = model._meta.pk
    order = quote(pk.column)
    if db.vendor == "postgresql" and _kind(pk) in TEXT_KINDS:
        order += ' COLLATE "C"'
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} ORDER BY {order}"
    digest = hashlib.sha256()
    digest.update(json.dumps(columns).encode() + b"\n")
    rows = 0
    with db.chunked_cursor() as cursor:
        cursor.execute(sql)
        while batch := cursor.fetchmany(BATCH):
            for row in batch:
                values = [canonical(v, k) for v, k in zip(row, kinds, strict=True)]
                digest.update(json.dumps(values, ensure_ascii=False).encode("utf-8") + b"\n")
            rows += len(batch)
    return {"rows": rows, "sha256": digest.hexdigest()}


def migration_state(db) -> dict[str, str]:
    """The newest applied migration of each app."""
    if "django_migrations" not in db.introspection.table_names():
        return {}
    latest: dict[str, str] = {}
    with db.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations")
        for app, name in cursor.fetchall():
            if name > latest.get(app, ""):
                latest[app] = name
    return dict(sorted(latest.items()))


def collect(db) -> dict:
    """Migrations, tables and the audit trail's head of the database behind ``db``.

    The caller holds one snapshot open (see :func:`live_snapshot`), so the
    numbers belong together.
    """
    existing = set(db.introspection.table_names())
    tables = {
        table: table_state(db, table, model)
        for table, model in registry_tables().items()
        if table in existing
    }
    head = {"seq": 0, "hash": ""}
    if "audit_audithead" in existing:
        with db.cursor() as cursor:
            cursor.execute("SELECT seq, hash FROM audit_audithead WHERE id = 1")
            row = cursor.fetchone()
        if row:
            head = {"seq": int(row[0]), "hash": row[1]}
    events = tables.get("audit_auditevent", {}).get("rows", 0)
    return {
        "migrations": migration_state(db),
        "tables": tables,
        "audit": {"head_seq": head["seq"], "head_hash": head["hash"], "events": events},
    }


def data_rows(db) -> dict[str, int]:
    """Tables holding registry data, with their row counts (bookkeeping left out)."""
    existing = set(db.introspection.table_names())
    found = {}
    with db.cursor() as cursor:
        for table in registry_tables():
            if table not in existing or table in BOOKKEEPING_TABLES - {"audit_audithead"}:
                continue
            where = " WHERE seq > 0" if table == "audit_audithead" else ""
            cursor.execute(f"SELECT COUNT(*) FROM {db.ops.quote_name(table)}{where}")
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


ALIAS = "registry3d_ops"


@contextmanager
def sqlite_snapshot(path: Path) -> Iterator:
    """Yield a Django connection of its own reading one snapshot of the SQLite file ``path``.

    Its transaction starts deferred, so reading never blocks the server's
    writers, and it leaves the file's journal mode as it is.
    """
    from django.db import connections

    settings_dict = dict(connection.settings_dict)
    settings_dict.update(
        ENGINE="django.db.backends.sqlite3", NAME=str(path), OPTIONS={}, CONN_MAX_AGE=0
    )
    connections.settings[ALIAS] = settings_dict
    db = connections[ALIAS]
    try:
        db.ensure_connection()
        with db.cursor() as cursor:
            cursor.execute("BEGIN")
        yield db
    finally:
        if db.connection is not None and db.connection.in_transaction:
            db.connection.execute("ROLLBACK")
        db.close()
        del connections[ALIAS]
        connections.settings.pop(ALIAS, None)


@contextmanager
def pg_snapshot() -> Iterator:
    """Yield the default PostgreSQL connection inside a repeatable-read, read-only transaction."""
    connection.ensure_connection()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SHOW transaction_isolation")
            level = cursor.fetchone()[0]
        if level != "repeatable read":
            raise RuntimeError(f"could not open a repeatable-read snapshot (got {level})")
        yield connection


@contextmanager
def live_snapshot() -> Iterator:
    """Yield a connection reading one snapshot of the configured database."""
    if connection.vendor == "postgresql":
        with pg_snapshot() as db:
            yield db
    else:
        with sqlite_snapshot(Path(connection.settings_dict["NAME"])) as db:
            yield db
