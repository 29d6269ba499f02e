"""Redaction: remove a value typed by mistake (an identifier, say) from a case for good.

A case keeps every version, so a value once saved stays in its history.
:func:`redact_case` takes it out of every place that holds it:

1. check the element path and the reason (no identifier, and not the
   value again), and that the path holds text somewhere in the case;
2. replace the value at the path in the case, in every version's data and
   recorded changes (for ``withdrawn_reason``: the case's reason and the
   withdrawal version's note) and in the physician's stored answers with
   :data:`REDACTED`, keeping every version number;
3. move the case's ``updated_at``, so the next reports snapshot reads it
   again, and record one audit event naming the element and the reason;
4. on SQLite, once committed, write the change into the database file and
   empty the write-ahead log, which still holds the pages with the old
   value (freed pages are overwritten: ``secure_delete`` in the settings).

The audit trail holds only keyed digests of values (see
:mod:`registry3d.audit.digests`), so it needs no change. Only text is
redacted: a coded, numeric or checked value is corrected by editing the case.
Every text value the path held is replaced, not only the current one (a
code it holds now, carried forward from text by a newer dictionary, stays);
a path into a group (``anatomic_parts[2].comment``) means that item number in each
version.
"""

import logging
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from registry3d.audit.services import record
from registry3d.cases.errors import RedactionRefused
from registry3d.cases.models import Case, CaseStatus, CaseVersion
from registry3d.dictionary import registry
from registry3d.lib.identifiers import find_identifier

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
WITHDRAWN_REASON = "withdrawn_reason"
_STEP = r"[a-z][a-z0-9_]*(\[[1-9][0-9]{0,3}\])?"
PATH_RE = re.compile(rf"^{_STEP}(\.{_STEP})*$")
_STEP_RE = re.compile(r"([a-z][a-z0-9_]*)(?:\[([0-9]+)\])?")


@dataclass
class Redaction:
    """What :func:`redact_case` changed."""

    case: Case
    element: str
    versions: list[int]
    answers: int  # questionnaire responses changed


def _steps(path: str) -> list[tuple[str, int | None]]:
    """``anatomic_parts[2].comment`` → [("anatomic_parts", 1), ("comment", None)] (0-based)."""
    steps = []
    for part in path.split("."):
        name, number = _STEP_RE.fullmatch(part).groups()
        steps.append((name, int(number) - 1 if number else None))
    return steps


def _container(data, steps) -> tuple[dict | None, str]:
    """The dict holding the path's last element in ``data`` and that element's name."""
    here = data
    for name, index in steps[:-1]:
        here = here.get(name) if isinstance(here, dict) else None
        if index is not None:
            here = here[index] if isinstance(here, list) and index < len(here) else None
    name, index = steps[-1]
    if index is not None or not isinstance(here, dict):
        return None, name  # a path ends at an element, not at an item of a group
    return here, name


def _path_name(steps) -> str:
    """The dictionary's dotted name of the path: ``anatomic_parts.comment``."""
    return ".".join(name for name, _ in steps)


def _refusal(path: str, value) -> str | None:
    """Why the value at ``path`` cannot be redacted, or None when it can."""
    if not isinstance(value, str):
        return (
            f"{path} holds a value that is not text; only text can be redacted "
            "(correct a number, code or checkbox by editing the case)"
        )
    element = registry.current().dictionary.all_elements.get(_path_name(_steps(path)))
    if element is None or element.screened or value == REDACTED:
        return None  # an element of an older dictionary, or text anyone may type
    if element.value_set is not None and element.value_set.get(value) is not None:
        return f"{path} holds a code of its value set; only free text can be redacted"
    return None


def _check_reason(reason: str, values: list[str]) -> str:
    reason = " ".join((reason or "").split())
    if not 3 <= len(reason) <= 500:
        raise RedactionRefused("Reason: say in 3 to 500 characters why the value is removed")
    found = find_identifier(reason)
    if found:
        raise RedactionRefused(
            f"Reason: this looks like {found}; say why the value is removed, "
            "without patient details"
        )
    folded = reason.casefold()
    for value in values:
        words = value.casefold().split()
        pairs = [" ".join(words[i : i + 2]) for i in range(len(words) - 1)]
        if value.casefold().strip() in folded or any(p in folded for p in pairs):
            raise RedactionRefused(
                "Reason: it repeats the value being removed; say why it is removed, "
                "not what it said"
            )
    return reason


def _found(case: Case, versions: list[CaseVersion], path: str) -> list:
    """Every value the path holds in the case and its versions (data and changes)."""
    if path == WITHDRAWN_REASON:
        notes = [v.note for v in versions if v.status == CaseStatus.WITHDRAWN and v.note]
        return [case.withdrawn_reason, *notes] if case.withdrawn_reason else notes
    steps = _steps(path)
    values = []
    for data in [case.data, *(v.data for v in versions)]:
        holder, name = _container(data, steps)
        if holder is not None and holder.get(name) is not None:
            values.append(holder[name])
    for version in versions:
        for value in version.changes.get(path) or []:
            if value is not None:
                values.append(value)
    return values


def _is_target(value, targets: set) -> bool:
    return isinstance(value, str) and value in targets


def _blank(data, steps, targets: set) -> bool:
    holder, name = _container(data, steps)
    if holder is None or not _is_target(holder.get(name), targets):
        return False
    holder[name] = REDACTED
    return True


def redact_case(
    case: Case, path: str, reason: str, *, actor=None, request: HttpRequest | None = None
) -> Redaction:
    """Replace the text at ``path`` with :data:`REDACTED` wherever the case holds it.

    Raises RedactionRefused for a path that is not an element path, holds no
    value, or holds something other than text, and for a missing reason or
    one that names a patient or repeats the value. A withdrawn case can be
    redacted; version numbers do not change.
    """
    path = (path or "").strip()
    if not PATH_RE.match(path):
        raise RedactionRefused(
            f"Element: {path!r} is not an element path; use a name like ua_comment "
            "or anatomic_parts[2].comment"
        )
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",)).order_by().get(pk=case.pk)
        versions = list(CaseVersion.objects.filter(case=case).order_by("version"))
        values = [v for v in _found(case, versions, path) if v != REDACTED]
        if not values:
            raise RedactionRefused(
                f"{path} holds no value in case {case.case_uid}; nothing to redact"
            )
        # A path may hold a code now and text from an older dictionary
        # (carried forward to the code): the text is redacted, the code kept.
        targets = {v for v in values if _refusal(path, v) is None}
        if not targets:
            raise RedactionRefused(_refusal(path, values[0]))
        reason = _check_reason(reason, sorted(targets))
        changed = _replace(case, versions, path, targets)
        answers = _replace_answers(case, path, targets)
        case.updated_at = timezone.now()  # the reports snapshot reads the case again
        case.save(update_fields=["data", "withdrawn_reason", "updated_at"])
        record(
            "case.redacted",
            actor=actor,
            request=request,
            site=case.site,
            object_type="case",
            object_id=case.case_uid,
            changes={
                "element": path,
                "reason": reason,
                "versions": changed,
                "version": case.version,
                **({"answers": answers} if answers else {}),
            },
        )
        transaction.on_commit(_empty_write_ahead_log)
    return Redaction(case, path, changed, answers)


def _empty_write_ahead_log() -> None:
    """Checkpoint SQLite's write-ahead log and cut it to nothing (PostgreSQL: nothing)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = cursor.fetchone()[0]
    if busy:
        # A reader in the middle of a transaction kept it; the next
        # checkpoint writes it, and the log is reused from its start.
        logger.warning("The redaction is committed; SQLite's log could not be emptied yet")


def _replace(case: Case, versions: list[CaseVersion], path: str, targets: set) -> list[int]:
    """Put the marker in the case and its versions; return the version numbers changed."""
    changed = []
    if path == WITHDRAWN_REASON:
        if case.withdrawn_reason:
            case.withdrawn_reason = REDACTED
        for version in versions:
            if version.status == CaseStatus.WITHDRAWN and version.note and version.note != REDACTED:
                version.note = REDACTED
                version.save(update_fields=["note"])
                changed.append(version.version)
        return changed
    steps = _steps(path)
    _blank(case.data, steps, targets)
    for version in versions:
        touched = _blank(version.data, steps, targets)
        pair = version.changes.get(path)
        if pair and any(_is_target(v, targets) for v in pair):
            version.changes[path] = [REDACTED if _is_target(v, targets) else v for v in pair]
            touched = True
        if touched:
            version.save(update_fields=["data", "changes"])
            changed.append(version.version)
    return changed


def _replace_answers(case: Case, path: str, targets: set) -> int:
    """Put the marker in the physician's stored answers to the case's questionnaires."""
    from registry3d.questionnaires.models import QuestionnaireResponse

    if path == WITHDRAWN_REASON:
        return 0
    steps, count = _steps(path), 0
    # The case's lock keeps them still: an answer to a locked case waits.
    for response in QuestionnaireResponse.objects.filter(request__case=case):
        if _blank(response.answers, steps, targets):
            response.save(update_fields=["answers"])
            count += 1
    return count
