"""Write and verify the audit trail.

Every service that changes something calls :func:`record` inside its own
transaction, so the event is stored exactly when the change is.
"""

import contextvars
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from registry3d.audit.models import GENESIS_HASH, AuditEvent, AuditHead
from registry3d.lib.net import client_ip

# Who acts when no account does: the command line sets this to name itself.
default_actor_label: contextvars.ContextVar[str] = contextvars.ContextVar(
    "default_actor_label", default=""
)


def canonical_json(value: Any) -> str:
    """Return ``value`` as the one JSON text the trail stores and hashes.

    Keys are sorted; dates, decimals and UUIDs become strings; numbers that
    JSON cannot hold (NaN, infinity) become strings too.
    """
    options = {
        "cls": DjangoJSONEncoder,
        "sort_keys": True,
        "separators": (",", ":"),
        "ensure_ascii": False,
        "allow_nan": False,
    }
    try:
        return json.dumps(value, **options)
    except ValueError:  # NaN or infinity somewhere: walk the value only then
        return json.dumps(_finite(value), **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _normalised_ip(ip: str | None) -> str | None:
    """Return the address as the database stores it, so the hash matches."""
    if ip and ":" in ip:
        return clean_ipv6_address(ip)
    return ip


def _hash_body(event: AuditEvent) -> dict:
    return {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "ip": event.ip,
        "action": event.action,
        "site": event.site_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "via": event.via,
        "changes": event.changes_json,
        "prev": event.prev_hash,
    }


def _hash_text(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(event: AuditEvent) -> str:
    """Return the SHA-256 over every field of the event and its predecessor."""
    return hashlib.sha256(_hash_text(_hash_body(event)).encode("utf-8")).hexdigest()


def via_of(request: HttpRequest | None) -> str:
    if request is None:
        return "cli" if default_actor_label.get() else ""
    token = getattr(request, "auth", None)
    prefix = getattr(token, "prefix", None)
    if prefix:
        kind = "redcap" if getattr(token, "kind", "api") == "redcap" else "api"
        return f"{kind} token {prefix}"
    return "web"


def new_event(
    action: str,
    *,
    actor=None,
    request: HttpRequest | None = None,
    site=None,
    target=None,
    object_type: str = "",
    object_id: str = "",
    changes: dict | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Return the event :func:`record` would append, not yet numbered, linked or stored.

    ``target`` is any model instance; its class name and public identifier
    (``code``, else ``email``) are recorded.
    """
    # The request's user acts unless the caller names the actor or labels one
    # (a physician's link, the registry itself).
    if actor is None and not actor_label and request is not None and request.user.is_authenticated:
        actor = request.user
    if target is not None:
        object_type = object_type or type(target).__name__.lower()
        object_id = object_id or str(
            getattr(target, "code", None) or getattr(target, "email", None) or target.pk
        )
    return AuditEvent(
        seq=0,
        at=timezone.now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label
        or (actor.email if actor is not None else default_actor_label.get()),
        ip=_normalised_ip(client_ip(request)),
        action=action,
        site=site,
        object_type=object_type,
        object_id=str(object_id),
        via=via_of(request),
        changes_json=canonical_json(changes or {}),
        prev_hash="",
    )


def record(action: str, **details) -> AuditEvent:
    """Append one event to the trail and return it.

    Steps:
    1. Lock the head row, so appends are strictly one after another.
    2. Build the event with the next sequence number and the head's hash.
    3. Hash it, store it, move the head.

    On PostgreSQL the three steps are one statement (:func:`append_sql`); the
    head stays locked until the caller's transaction ends, so services call
    this last. ``details`` are those of :func:`new_event`.
    """
    return append(new_event(action, **details))


def append(event: AuditEvent) -> AuditEvent:
    """Append an event made by :func:`new_event`; see :func:`record`."""
    if one_statement_appends():
        ctes, params = append_sql(event)
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {ctes} SELECT * FROM audit_event", params)
            appended(event, cursor.fetchone())
        return event
    with transaction.atomic():
        head = AuditHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            head = AuditHead.objects.create(pk=1, seq=0, hash=GENESIS_HASH)
        event.seq = head.seq + 1
        event.prev_hash = head.hash
        event.hash = event_hash(event)
        event.save()
        head.seq, head.prev_hash, head.hash = event.seq, event.prev_hash, event.hash
        head.save(update_fields=["seq", "prev_hash", "hash"])
    return event


def one_statement_appends() -> bool:
    """Whether the database computes hashes, so an append is one statement."""
    return connection.vendor == "postgresql"


# The hashed text of an event with these two values in place of its link and
# number; PostgreSQL puts the head's hash and next number there itself. Quotes
# inside values are escaped in JSON, so the pair occurs once, at the top level.
_PREV_MARK, _SEQ_MARK = "@prev@", "@seq@"
_LINK = f'"prev":"{_PREV_MARK}","seq":"{_SEQ_MARK}"'


def append_sql(event: AuditEvent) -> tuple[str, list]:
    """Return two common table expressions that append ``event``, and their parameters.

    ``audit_head`` moves the head (or creates it, on an empty trail) and
    ``audit_event`` inserts the event, hashed by PostgreSQL (``sha256``) over
    the same text :func:`event_hash` checks: the event's JSON with the head's
    hash and the next number put in. ``audit_event`` returns the event's id,
    number, link and hash for :func:`appended`. A service that writes other
    rows in the same statement makes its change and its audit event one
    round trip to the database, and one atomic step.
    """
    body = _hash_body(event)
    body["prev"], body["seq"] = _PREV_MARK, _SEQ_MARK
    before, after = _hash_text(body).split(_LINK)
    head_table = connection.ops.quote_name(AuditHead._meta.db_table)
    event_table = connection.ops.quote_name(AuditEvent._meta.db_table)
    first_hash = hashlib.sha256(
        f'{before}"prev":"{GENESIS_HASH}","seq":1{after}'.encode()
    ).hexdigest()
    ctes = f"""
        audit_head AS (
            INSERT INTO {head_table} AS head (id, seq, prev_hash, hash)
            VALUES (1, 1, %s::text, %s::text)
            ON CONFLICT (id) DO UPDATE
            SET prev_hash = head.hash,
                seq = head.seq + 1,
                hash = encode(sha256(convert_to(
                    %s::text || '"prev":"' || head.hash || '","seq":' || (head.seq + 1)::text
                    || %s::text,
                    'UTF8')), 'hex')
            RETURNING seq, prev_hash, hash
        ),
        audit_event AS (
            INSERT INTO {event_table} (
                seq, at, actor_id, actor_label, ip, action, site_id, object_type,
                object_id, via, changes_json, prev_hash, hash
            )
            SELECT audit_head.seq, %s::timestamptz, %s::bigint, %s::text, %s::inet,
                   %s::text, %s::bigint, %s::text, %s::text, %s::text, %s::text,
                   audit_head.prev_hash, audit_head.hash
            FROM audit_head
            RETURNING id, seq, prev_hash, hash
        )
    """
    params = [
        GENESIS_HASH,
        first_hash,
        before,
        after,
        event.at,
        event.actor_id,
        event.actor_label,
        event.ip,
        event.action,
        event.site_id,
        event.object_type,
        event.object_id,
        event.via,
        event.changes_json,
    ]
    return ctes, params


def appended(event: AuditEvent, row: tuple) -> None:
    """Fill in what :func:`append_sql`'s ``audit_event`` returned: id, number, link, hash."""
    event.pk, event.seq, event.prev_hash, event.hash = row
    event._state.adding = False


@dataclass
class ChainReport:
    """What :func:`verify_chain` found."""

    checked: int
    ok: bool
    broken_seq: int | None = None
    reason: str = ""
    # Each re-base of the chain (``audit scrub-values``): its event's number,
    # the first event it rewrote, and the head's number and hash before.
    rebases: list[dict] = field(default_factory=list)


def verify_chain(batch_size: int = 2000) -> ChainReport:
    """Recompute every hash in order and check each link to its predecessor.

    Reports the first event whose stored hash does not match its content,
    whose link does not match the event before it, or that is missing from
    the sequence; and a trail that ends before the head says it should.
    The head is read first: events appended while the check runs lie beyond
    it and are left for the next check.
    """
    head = AuditHead.objects.filter(pk=1).first()
    head_seq = head.seq if head is not None else None
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    rebases: list[dict] = []
    while True:
        events = AuditEvent.objects.filter(seq__gte=expected_seq).order_by("seq")
        if head_seq is not None:
            events = events.filter(seq__lte=head_seq)
        batch = list(events[:batch_size])
        if not batch:
            break
        for event in batch:
            if event.seq != expected_seq:
                return ChainReport(
                    checked,
                    False,
                    expected_seq,
                    f"event #{expected_seq} is missing (next found is #{event.seq})",
                )
            if event.prev_hash != prev_hash:
                return ChainReport(
                    checked,
                    False,
                    event.seq,
                    f"event #{event.seq} does not link to the event before it",
                )
            if event_hash(event) != event.hash:
                return ChainReport(
                    checked,
                    False,
                    event.seq,
                    f"event #{event.seq} ({event.action}) was changed after it was recorded",
                )
            if event.action == "audit.rebased":
                rebases.append(_rebase(event))
            prev_hash = event.hash
            expected_seq += 1
            last_seq = event.seq
            checked += 1
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        return ChainReport(
            checked,
            False,
            last_seq + 1,
            f"the trail ends at #{last_seq} but #{head.seq} was recorded; "
            "events were removed from the end",
        )
    return ChainReport(checked, True, rebases=rebases)


def _rebase(event: AuditEvent) -> dict:
    changes = event.changes
    old_head = changes.get("old_head") or {}
    return {
        "seq": event.seq,
        "at": event.at,
        "by": event.actor_label,
        "from_seq": changes.get("from_seq"),
        "old_head_seq": old_head.get("seq"),
        "old_head_hash": old_head.get("hash"),
    }
