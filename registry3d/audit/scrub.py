"""Take case values out of audit events written before the trail held digests.

Events recorded before keyed digests (:mod:`registry3d.audit.digests`)
copied case values into the trail: every changed element's old and new
value, withdrawal reasons, the physician's answers, and the names of
uploaded files as typed (which may name the patient). The trail cannot be
edited, so those values could never be removed. :func:`scrub_values` does
it once, openly:

1. lock the head, so nothing is appended meanwhile;
2. replace each value in those events with its digest (values that are
   digests already, and None, stay as they are);
3. hash the chain again from the first event changed, since every later
   event's hash covers its predecessor's;
4. append one ``audit.rebased`` event naming the first event rewritten, how
   many were, and the head's number and hash before (so an anchor of the old
   head kept elsewhere can still be matched to this step).

This re-bases the chain: tamper evidence from before the re-base rests on
that event and on backups taken before it, which hold the old chain. The
verify command reports every re-base. A second run changes nothing.
"""

import json
import re
from dataclasses import dataclass

from django.db import transaction

from registry3d.audit.digests import KEPT_AS_THEY_ARE, digest, digest_key
from registry3d.audit.models import GENESIS_HASH, AuditEvent, AuditHead
from registry3d.audit.services import canonical_json, event_hash, record

REBASED = "audit.rebased"
CASE_ELEMENT_EVENTS = ("case.created", "case.submitted", "case.updated")
# Events that named an uploaded file as the person typed it (which may name
# the patient) before file names were screened: action -> the key.
FILE_NAME_EVENTS = {
    "import.created": "file",
    "model_file.kept": "file_name",
    "dictionary.proposed": "file",
}
_DIGEST_RE = re.compile(r"^[0-9a-f]{16}$")


@dataclass
class Scrub:
    """What :func:`scrub_values` did."""

    rewritten: int  # events whose values became digests
    rehashed: int  # events hashed again (those and every later one)
    first_seq: int | None  # the first event rewritten
    event: AuditEvent | None  # the audit.rebased event, if anything changed


def _scrubbed(value, key: bytes):
    if value is None or (isinstance(value, str) and _DIGEST_RE.match(value)):
        return value
    return digest(value, key)


def scrubbed_changes(action: str, changes: dict, key: bytes) -> dict:
    """The event's changes with every case value replaced by its digest."""
    out = dict(changes)
    if action in CASE_ELEMENT_EVENTS and isinstance(changes.get("elements"), dict):
        out["elements"] = {
            path: pair
            if path in KEPT_AS_THEY_ARE or not isinstance(pair, list)
            else [_scrubbed(v, key) for v in pair]
            for path, pair in changes["elements"].items()
        }
    elif action == "case.withdrawn" and "reason" in changes:
        out["reason"] = _scrubbed(changes["reason"], key)
    elif action == "questionnaire.answered" and isinstance(changes.get("answers"), dict):
        out["answers"] = {k: _scrubbed(v, key) for k, v in changes["answers"].items()}
    elif action in FILE_NAME_EVENTS and FILE_NAME_EVENTS[action] in changes:
        name = FILE_NAME_EVENTS[action]
        out[name] = _scrubbed(changes[name], key)
    return out


def scrub_values(batch_size: int = 2000) -> Scrub:
    """Rewrite old events' case values to digests and re-base the chain; see the module."""
    key = digest_key()
    with transaction.atomic():
        head = AuditHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            return Scrub(0, 0, None, None)
        old_seq, old_hash = head.seq, head.hash
        rewritten, rehashed, first_seq = 0, 0, None
        prev_hash, after = GENESIS_HASH, 0
        while True:
            batch = list(
                AuditEvent.objects.filter(seq__gt=after, seq__lte=old_seq).order_by("seq")[
                    :batch_size
                ]
            )
            if not batch:
                break
            changed = []
            for event in batch:
                after = event.seq
                changes = json.loads(event.changes_json)
                scrubbed = scrubbed_changes(event.action, changes, key)
                if scrubbed != changes:
                    event.changes_json = canonical_json(scrubbed)
                    rewritten += 1
                    first_seq = first_seq or event.seq
                if first_seq is not None:
                    event.prev_hash = prev_hash
                    event.hash = event_hash(event)
                    changed.append(event)
                prev_hash = event.hash
            # bulk_update writes without save(), which refuses to change an event.
            AuditEvent.objects.bulk_update(
                changed, ["changes_json", "prev_hash", "hash"], batch_size=500
            )
            rehashed += len(changed)
        if first_seq is None:
            return Scrub(0, 0, None, None)
        head.hash = prev_hash
        head.prev_hash = AuditEvent.objects.get(seq=old_seq).prev_hash
        head.save(update_fields=["hash", "prev_hash"])
        event = record(
            REBASED,
            object_type="audit",
            object_id=f"#{first_seq}",
            changes={
                "from_seq": first_seq,
                "events_rewritten": rewritten,
                "events_rehashed": rehashed,
                "old_head": {"seq": old_seq, "hash": old_hash},
                "why": "case values in events before keyed digests were replaced by digests",
            },
        )
    return Scrub(rewritten, rehashed, first_seq, event)
