"""The one write path for cases: web form, API, command line and imports.

Every change goes through :func:`save_case` or :func:`withdraw_case`, which

1. check the record fields (case ID, patient key, status) and the data
   against the dictionary (drafts may be incomplete; submitted cases must
   be complete), refusing patient identifiers;
2. lock the case row, refuse a change made against an older version, and
   do nothing at all when nothing changed (so the same request twice is one
   version);
3. store the new version, its history row with what changed, and the audit
   event, in one transaction. The version keeps the values; the event names
   the changed elements with keyed digests of their values
   (:mod:`registry3d.audit.digests`), so nothing typed into a case is in the
   trail, which cannot be edited.
"""

import json
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field

import orjson
from django.db import IntegrityError, connection, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

from registry3d.audit.digests import digest, digest_changes
from registry3d.audit.services import (
    append,
    append_sql,
    appended,
    new_event,
    one_statement_appends,
    record,
    via_of,
)
from registry3d.cases.errors import CaseExists, InvalidCase, NotAllowed, StaleVersion
from registry3d.cases.models import Case, CaseStatus, CaseVersion
from registry3d.dictionary import registry
from registry3d.dictionary.validation import Problem
from registry3d.lib.pseudonym import looks_like_key
from registry3d.lib.sql import insert_parts, quoted
from registry3d.lib.text_screen import find_identifier, find_identifier_in_token
from registry3d.sites.models import Printer, Site, SiteRole
from registry3d.sites.services import get_site_for_user, reads_as_registry_staff

CASE_UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_DATA_BYTES = 256 * 1024


@dataclass
class SaveResult:
    case: Case
    changed: bool
    created: bool
    warnings: list[Problem] = field(default_factory=list)


# --- Access -------------------------------------------------------------------------------


def get_case_for_user(
    user,
    site_code: str,
    case_uid: str,
    write: bool = False,
    *,
    request: HttpRequest | None = None,
) -> Case:
    """Return the site's case if the user may read it (or change it, with ``write``).

    Another site's case, or one that does not exist, is a 404 either way; so
    is every case for a registry analyst, who sees aggregates only. A page
    read (``request`` given, GET or HEAD) by registry staff is recorded as
    ``case.viewed`` (:func:`note_staff_read`).
    """
    site = get_site_for_user(user, site_code, SiteRole.CONTRIBUTOR if write else SiteRole.VIEWER)
    case = Case.objects.filter(site=site, case_uid=case_uid).select_related("site").first()
    if case is None:
        raise Http404("No such case")
    if request is not None and request.method in ("GET", "HEAD"):
        note_staff_read(user, site, [case.case_uid], request)
    return case


def note_staff_read(
    user, site: Site, case_uids: list[str], request: HttpRequest | None = None, *, listed=False
) -> None:
    """Record a read of case pages by registry staff, for the accounting of disclosures.

    A case's page is ``case.viewed`` (its case ID the object); a page of the
    site's case list is ``case.listed`` with the case IDs it showed. Only
    who, when, the site and case IDs: never a value of a case.
    """
    if not reads_as_registry_staff(user, site):
        return
    if listed:
        record(
            "case.listed",
            actor=user,
            request=request,
            site=site,
            object_type="site",
            object_id=site.code,
            changes={"cases": case_uids},
        )
        return
    for case_uid in case_uids:
        record(
            "case.viewed",
            actor=user,
            request=request,
            site=site,
            object_type="case",
            object_id=case_uid,
        )


# --- Checks ---------------------------------------------------------------------------------


# A case ID's parts are separated by - or _ (or, in a refused ID, a space,
# dot or slash); a number must stand alone between separators or the ends.
_SEP = r"[-_ ./]"
_CASE_UID_SHAPES = [
    ("an e-mail address", re.compile(r"@")),
    (
        "a Social Security number",
        re.compile(rf"(?<!\d)\d{{3}}({_SEP}?)\d{{2}}\1\d{{4}}(?!\d)"),
    ),
    (
        "a phone number",
        re.compile(rf"(?<!\d)(?:\+?1{_SEP}?)?\(?\d{{3}}\)?{_SEP}?\d{{3}}{_SEP}?\d{{4}}(?!\d)"),
    ),
    (
        "a date",
        re.compile(
            # 1950-03-03, 1950_3_3, 19500303
            rf"(?<!\d)(?:19|20)\d\d(?:({_SEP})(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
            r"|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(?!\d)"
            # 03-03-1950, 3-3-50, 03031950 (day and month either way round)
            rf"|(?<!\d)(?:(?:0?[1-9]|[12]\d|3[01])({_SEP})(?:0?[1-9]|[12]\d|3[01])\2"
            r"(?:19|20)?\d\d"
            r"|(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|[12]\d|3[01])(?:19|20)\d\d)(?!\d)"
        ),
    ),
]


def case_uid_kind(case_uid: str) -> str | None:
    """Say what identifier a case ID is shaped like (a date, a phone number...), or None.

    A case ID is the site's own label; one that is a patient's birth date,
    phone number, SSN or e-mail would carry an identifier into every export.
    Lab IDs such as ``CASE-7``, ``3DP-2026-0042``, ``2026-017``, ``A12`` and
    ``42`` are not refused: a year alone, or a year and a sequence number,
    is not a date. A name or a record number glued by ``_`` or ``-``
    (``Smith_John_MRN1234567``) is found by the screen of tokens, which
    reads a case ID as a file name (#15).
    """
    for kind, pattern in _CASE_UID_SHAPES:
        if pattern.search(case_uid):
            return kind
    return find_identifier_in_token(case_uid)


def shown_case_uid(case_uid) -> str:
    """The case ID if it may be quoted back (a well-formed site label), else "".

    A refused case ID is never echoed, in a message or a problem's case
    column (#15).
    """
    if isinstance(case_uid, str) and CASE_UID_RE.match(case_uid) and not case_uid_kind(case_uid):
        return case_uid
    return ""


def check_record(case_uid: str, patient_key: str | None, status: str) -> list[Problem]:
    problems = []
    kind = case_uid_kind(case_uid) if isinstance(case_uid, str) else None
    if kind:
        problems.append(
            Problem(
                "case_uid",
                "identifier_suspected",
                f"Case ID: looks like {kind}; use your site's own case identifier, never a "
                "name, record number, date, phone number, SSN or e-mail",
            )
        )
    elif not isinstance(case_uid, str) or not CASE_UID_RE.match(case_uid):
        problems.append(
            Problem(
                "case_uid",
                "bad_format",
                "Case ID: use 1 to 64 letters, digits, - or _ (your site's own identifier, "
                "never a medical record or accession number)",
            )
        )
    if patient_key:
        if not looks_like_key(patient_key):
            problems.append(
                Problem(
                    "patient_key",
                    "bad_format",
                    "Patient key: expected the pseudonymous key, 64 characters 0-9 and a-f made "
                    "with 'registry3d pseudonymize', never a name, date or record number",
                )
            )
    if status not in CaseStatus.values or status == CaseStatus.WITHDRAWN:
        problems.append(
            Problem("status", "not_in_value_set", "Status: expected draft or submitted")
        )
    return problems


def _encodable(data) -> list[Problem]:
    """Refuse text the database cannot store: unpaired surrogates, too much data."""
    try:
        size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        return [
            Problem(
                "data",
                "bad_text",
                "Case data hold text that is not valid Unicode (an unpaired surrogate)",
            )
        ]
    except (TypeError, ValueError):
        return [Problem("data", "wrong_type", "Case data must be plain JSON values")]
    if size > MAX_DATA_BYTES:
        return [
            Problem(
                "data",
                "too_long",
                f"Case data are {size} bytes; at most {MAX_DATA_BYTES} are accepted",
            )
        ]
    return []


def normalise(data: dict) -> dict:
    """Apply the dictionary's storage rules: ages above the top code become the top code.

    Values above the element's maximum are left for validation to refuse.
    """
    out = dict(data)
    for element in _top_coded(registry.current().dictionary):
        value = out.get(element.name)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value > element.top_code
            and (element.max is None or value <= element.max)
        ):
            out[element.name] = element.top_code
    return out


_TOP_CODED: tuple = (None, ())


def _top_coded(dictionary) -> tuple:
    """The dictionary's top-coded elements, found once per loaded dictionary."""
    global _TOP_CODED
    if _TOP_CODED[0] is not dictionary:
        elements = tuple(e for e in dictionary.elements.values() if e.top_code is not None)
        _TOP_CODED = (dictionary, elements)
    return _TOP_CODED[1]


def validate(site: Site, data, status: str) -> list[Problem]:
    """Check case data for a site as a draft or as a submitted case."""
    if not isinstance(data, dict):
        return [Problem("data", "wrong_type", "Case data must be an object of elements")]
    problems = _encodable(data)
    if problems:
        return problems
    return registry.current().validator.validate(
        data, complete=status == CaseStatus.SUBMITTED, site_printer_labels=printer_labels(site)
    )


def printer_labels(site: Site) -> list[str]:
    """Return the labels of the site's printers.

    An API request has them already, read with its token. Otherwise plain
    SQL: every case write asks, and the ORM would spend more time building
    this query than the database spends answering it.
    """
    known = site.__dict__.get("printer_labels")
    if known is not None:
        return known
    table = connection.ops.quote_name(Printer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT label FROM {table} WHERE site_id = %s", [site.pk])
        return [label for (label,) in cursor.fetchall()]


# --- Differences ---------------------------------------------------------------------------


def flatten(data: dict, prefix: str = "") -> dict:
    """Return {path: value} with paths like ``prints[2].material``."""
    out = {}
    for key, value in (data or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for number, item in enumerate(value, start=1):
                out.update(flatten(item, f"{path}[{number}]."))
        else:
            out[path] = value
    return out


def differences(before: dict, after: dict) -> dict:
    """Return {path: [old, new]} for every value that differs."""
    old, new = flatten(before), flatten(after)
    return {
        path: [old.get(path), new.get(path)]
        for path in sorted(set(old) | set(new))
        if old.get(path) != new.get(path)
    }


# --- Writes ----------------------------------------------------------------------------------


def save_case(
    site: Site,
    *,
    case_uid: str,
    data: dict,
    status: str = CaseStatus.DRAFT,
    patient_key: str | None = None,
    actor=None,
    request: HttpRequest | None = None,
    expected_version: int | None = None,
    create_only: bool = False,
    must_exist: bool = False,
    note: str = "",
) -> SaveResult:
    """Create or replace a case; the only way case data are written.

    ``expected_version`` refuses the change if the case moved on since;
    ``create_only`` refuses an existing case ID; ``must_exist`` refuses a
    new one. Raises InvalidCase with every problem, StaleVersion, CaseExists,
    NotAllowed, or Http404 (``must_exist`` and no such case).
    """
    problems = check_record(case_uid, patient_key, status)
    if isinstance(data, dict):
        data = normalise(data)
    problems += validate(site, data, status)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise InvalidCase(errors)
    warnings = [p for p in problems if p.severity == "warning"]
    dictionary_version = registry.current().dictionary.version
    new_case = (site, case_uid, data, status, patient_key, dictionary_version, actor, request, note)
    try:
        if create_only and one_statement_appends():
            # The case, its first version and its audit event are one
            # statement (see _create), atomic by itself: no transaction to
            # open and commit, unless the caller has one.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                case = _create(*new_case)
            return SaveResult(case, changed=True, created=True, warnings=warnings)
        with transaction.atomic():
            # A new case needs no lock: the unique constraint refuses a
            # second one, which the IntegrityError handler below reports.
            case = (
                None
                if create_only
                else Case.objects.select_for_update(of=("self",))
                .filter(site=site, case_uid=case_uid)
                .order_by()
                .first()
            )
            if case is None:
                if must_exist:
                    raise Http404("No such case")
                case = _create(*new_case)
                return SaveResult(case, changed=True, created=True, warnings=warnings)
            if create_only:
                raise CaseExists(f"{site.code} already has a case {case_uid}")
            changed = _update(
                case,
                data,
                status,
                patient_key,
                dictionary_version,
                actor,
                request,
                expected_version,
                note,
            )
            return SaveResult(case, changed=changed, created=False, warnings=warnings)
    except IntegrityError:
        # Two requests created the same case at once; the other one won.
        raise CaseExists(f"{site.code} already has a case {case_uid}") from None


COLUMNS = ("case_month", "object_type", "organ_system", "technology", "cpt_codes")


def column_values(data: dict) -> tuple[str, str, str, str, str]:
    """The values lists and reports filter on, in the order of :data:`COLUMNS`."""
    prints = [p for p in data.get("prints") or [] if isinstance(p, dict)]
    primary = next(
        (p for p in prints if p.get("print_role") == "primary"), prints[0] if prints else {}
    )
    codes = sorted(
        {
            line.get("code")
            for line in data.get("cpt_lines") or []
            if isinstance(line, dict) and line.get("code")
        }
    )
    return (
        data.get("case_year_month") or "",
        data.get("object_type") or "",
        data.get("organ_system") or "",
        primary.get("technology") or "",
        ",".join(codes),
    )


def _columns(case: Case, data: dict) -> None:
    """Copy the values lists and reports filter on into their columns."""
    for name, value in zip(COLUMNS, column_values(data), strict=True):
        setattr(case, name, value)


def _create(site, case_uid, data, status, patient_key, dictionary_version, actor, request, note):
    now = timezone.now()
    case = Case(
        site=site,
        case_uid=case_uid,
        patient_key=patient_key or "",
        status=status,
        dictionary_version=dictionary_version,
        data=data,
        version=1,
        created_by=actor,
        updated_by=actor,
        submitted_at=now if status == CaseStatus.SUBMITTED else None,
    )
    _columns(case, data)
    version = CaseVersion(
        site=site,
        case=case,
        version=1,
        status=status,
        dictionary_version=dictionary_version,
        data=data,
        patient_key=case.patient_key,
        note=note,
        via=via_of(request),
        changed_by=actor,
    )
    event = new_event(
        "case.created" if status == CaseStatus.DRAFT else "case.submitted",
        actor=actor,
        request=request,
        site=site,
        object_type="case",
        object_id=case_uid,
        changes={
            "version": 1,
            "status": status,
            "elements": digest_changes(first_changes(data)),
            **({"note": note} if note else {}),
        },
    )
    if one_statement_appends():
        _insert_together(case, version, event)
    else:
        case.save(force_insert=True)
        version.case = case
        version.save(force_insert=True)
        append(event)
    return case


def _insert_together(case: Case, version: CaseVersion, event) -> None:
    """Insert a new case, its first version and its audit event in one statement.

    One round trip instead of five (BEGIN, three inserts, COMMIT): the API's
    case submissions are bound by round trips to the database, not by work.
    """
    case_columns, case_values, case_params = insert_parts(case)
    version_columns, version_values, version_params = insert_parts(version, skip=("case",))
    audit_ctes, audit_params = append_sql(event)
    sql = f"""
        WITH new_case AS (
            INSERT INTO {quoted(Case._meta.db_table)} ({case_columns})
            VALUES ({case_values})
            RETURNING id
        ),
        new_version AS (
            INSERT INTO {quoted(CaseVersion._meta.db_table)} (case_id, {version_columns})
            SELECT new_case.id, {version_values} FROM new_case
            RETURNING id
        ),
        {audit_ctes}
        SELECT new_case.id, new_version.id, audit_event.*
        FROM new_case, new_version, audit_event
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, case_params + version_params + audit_params)
        row = cursor.fetchone()
    case.pk, version.pk = row[0], row[1]
    for obj in (case, version):
        obj._state.adding = False
        obj._state.db = connection.alias
    version.case = case
    appended(event, row[2:])


def _update(
    case, data, status, patient_key, dictionary_version, actor, request, expected_version, note
) -> bool:
    if case.status == CaseStatus.WITHDRAWN:
        raise NotAllowed(f"Case {case.case_uid} was withdrawn and cannot be changed")
    if case.status == CaseStatus.SUBMITTED and status == CaseStatus.DRAFT:
        raise NotAllowed(
            f"Case {case.case_uid} is submitted; it stays submitted (correct it, or withdraw it)"
        )
    if expected_version is not None and expected_version != case.version:
        raise StaleVersion(case, expected_version, changes_since(case, expected_version))
    new_key = case.patient_key if patient_key is None else patient_key
    changes = differences(case.data, data)
    if new_key != case.patient_key:
        changes["patient_key"] = ["(changed)", "(changed)"]
    if status != case.status:
        changes["status"] = [case.status, status]
    if not changes:
        return False  # the same content again: no new version
    became_submitted = status == CaseStatus.SUBMITTED and case.status != CaseStatus.SUBMITTED
    case.data = data
    case.status = status
    case.patient_key = new_key
    case.dictionary_version = dictionary_version
    case.version += 1
    case.updated_by = actor
    if became_submitted:
        case.submitted_at = timezone.now()
    _columns(case, data)
    case.save()
    CaseVersion.objects.create(
        site=case.site,
        case=case,
        version=case.version,
        status=status,
        dictionary_version=dictionary_version,
        data=data,
        patient_key=new_key,
        changes=changes,
        note=note,
        via=via_of(request),
        changed_by=actor,
    )
    record(
        "case.submitted" if became_submitted else "case.updated",
        actor=actor,
        request=request,
        site=case.site,
        object_type="case",
        object_id=case.case_uid,
        changes={
            "version": case.version,
            "status": status,
            "elements": digest_changes(changes),
            **({"note": note} if note else {}),
        },
    )
    return True


def changes_since(case: Case, version: int) -> dict:
    """What changed in the case between ``version`` and now: {path: [then, now]}."""
    then = CaseVersion.objects.filter(case=case, version=version).first()
    if then is None:
        return {}
    return differences(then.data, case.data)


def patch_case(case: Case, changes: dict, **options) -> SaveResult:
    """Change some elements: a value replaces, None removes; groups are replaced whole."""
    if case.status == CaseStatus.WITHDRAWN:
        raise NotAllowed(f"Case {case.case_uid} was withdrawn and cannot be changed")
    data = dict(case.data)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    options.setdefault("status", case.status)
    options.setdefault("patient_key", None)
    return save_case(case.site, case_uid=case.case_uid, data=data, must_exist=True, **options)


def withdraw_case(
    case: Case,
    reason: str,
    *,
    actor=None,
    request: HttpRequest | None = None,
    expected_version: int | None = None,
) -> Case:
    """Withdraw a case from the registry, keeping it and its history, with a reason."""
    reason = (reason or "").strip()
    if not 3 <= len(reason) <= 500:
        raise InvalidCase(
            [
                Problem(
                    "reason",
                    "required",
                    "Reason: say in 3 to 500 characters why the case is withdrawn",
                )
            ]
        )
    found = find_identifier(reason)
    if found:
        raise InvalidCase(
            [
                Problem(
                    "reason",
                    "identifier_suspected",
                    f"Reason: this looks like {found}; the registry never stores "
                    "patient identifiers, so remove it",
                )
            ]
        )
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",)).order_by().get(pk=case.pk)
        if case.status == CaseStatus.WITHDRAWN:
            raise NotAllowed(f"Case {case.case_uid} is already withdrawn")
        if expected_version is not None and expected_version != case.version:
            raise StaleVersion(case, expected_version, changes_since(case, expected_version))
        old_status = case.status
        case.status = CaseStatus.WITHDRAWN
        case.withdrawn_reason = reason
        case.version += 1
        case.updated_by = actor
        case.save()
        CaseVersion.objects.create(
            site=case.site,
            case=case,
            version=case.version,
            status=case.status,
            dictionary_version=case.dictionary_version,
            data=case.data,
            patient_key=case.patient_key,
            changes={"status": [old_status, "withdrawn"]},
            note=reason,
            via=via_of(request),
            changed_by=actor,
        )
        record(
            "case.withdrawn",
            actor=actor,
            request=request,
            site=case.site,
            object_type="case",
            object_id=case.case_uid,
            changes={
                "version": case.version,
                "status": [old_status, "withdrawn"],
                "reason": digest(reason),
            },
        )
    return case


# --- Many cases at once (imports) ------------------------------------------------------------


@dataclass
class BulkRow:
    """One valid row of an import.

    A row checked in another process arrives with its data as JSON text and
    its :func:`column_values` already made (``json``, ``columns``), so a new
    case is written without decoding and encoding its data again; ``data``
    is then None until :meth:`values` needs it (an existing case to compare).
    """

    number: int  # the row's number in the file, for problems
    case_uid: str
    data: dict | None
    status: str
    patient_key: str | None = None
    json: str | None = None
    columns: tuple | None = None

    def values(self) -> dict:
        if self.data is None:
            self.data = orjson.loads(self.json)
        return self.data

    def text(self) -> str:
        """The data as JSON text (see :func:`json_text`)."""
        if self.json is None:
            self.json = json_text(self.data)
        return self.json

    def column_values(self) -> tuple:
        if self.columns is None:
            self.columns = column_values(self.values())
        return self.columns


def json_text(data: dict) -> str:
    """Case data as compact JSON text, for the bulk write path.

    orjson encodes a case about ten times faster than the standard library,
    which an import of a million rows feels; case data hold only what the
    dictionary validated (no NaN, no numbers past 64 bits).
    """
    return orjson.dumps(data).decode()


@dataclass
class BulkResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str, Problem]] = field(default_factory=list)


def analyse_tables() -> None:
    """Refresh the database's statistics of the cases and their versions (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"ANALYZE {quoted(Case._meta.db_table)}, {quoted(CaseVersion._meta.db_table)}"
        )


def classify(site: Site, rows: list[BulkRow] | list[str]) -> dict[str, Case]:
    """Return the site's existing cases among ``rows`` (or case IDs), by case ID."""
    uids = [row if isinstance(row, str) else row.case_uid for row in rows]
    return {c.case_uid: c for c in Case.objects.filter(site=site, case_uid__in=uids)}


def save_cases_bulk(
    site: Site,
    rows: list[BulkRow],
    *,
    actor=None,
    request: HttpRequest | None = None,
    note: str = "",
    lock: bool = True,
) -> BulkResult:
    """Write many already-validated rows in one transaction: the import's path.

    The same rules as :func:`save_case` apply row by row (a withdrawn case
    is not changed, a submitted one stays submitted, the same content makes
    no new version), but the rows are written with a few multi-row inserts
    (on PostgreSQL, new cases and their first versions with COPY) and one
    audit event names every case of the batch and its version (never a
    value), which keeps a large import fast. Validation happens before, in
    the caller, with :func:`validate`, so rows reach here only when they are
    valid.
    """
    result = BulkResult()
    now = timezone.now()
    dictionary_version = registry.current().dictionary.version
    via = via_of(request) or note
    with transaction.atomic():
        existing_qs = Case.objects.filter(site=site, case_uid__in=[r.case_uid for r in rows])
        if lock:
            existing_qs = existing_qs.select_for_update(of=("self",)).order_by()
        existing = {c.case_uid: c for c in existing_qs}
        creates: list[BulkRow] = []
        updates, versions, summary = [], [], {}
        seen: set[str] = set()
        for row in rows:
            if row.case_uid in seen:
                result.refused.append(
                    (
                        row.number,
                        row.case_uid,
                        Problem(
                            "case_uid",
                            "duplicate_row",
                            f"Case {row.case_uid} appears more than once in the file; keep one row",
                        ),
                    )
                )
                continue
            seen.add(row.case_uid)
            case = existing.get(row.case_uid)
            if case is None:
                creates.append(row)
                summary[row.case_uid] = 1
                result.new += 1
                continue
            if case.status == CaseStatus.WITHDRAWN:
                result.refused.append(
                    (
                        row.number,
                        row.case_uid,
                        Problem(
                            "status",
                            "withdrawn",
                            f"Case {row.case_uid} was withdrawn and cannot be changed",
                        ),
                    )
                )
                continue
            status = row.status
            if case.status == CaseStatus.SUBMITTED and status == CaseStatus.DRAFT:
                status = CaseStatus.SUBMITTED  # a submitted case stays submitted
            key = case.patient_key if row.patient_key is None else row.patient_key
            data = row.values()
            changes = differences(case.data, data)
            if key != case.patient_key:
                changes["patient_key"] = ["(changed)", "(changed)"]
            if status != case.status:
                changes["status"] = [case.status, status]
            if not changes:
                result.unchanged += 1
                continue
            if status == CaseStatus.SUBMITTED and case.status != CaseStatus.SUBMITTED:
                case.submitted_at = now
            case.data, case.status, case.patient_key = data, status, key
            case.dictionary_version = dictionary_version
            case.version += 1
            case.updated_by, case.updated_at = actor, now
            _columns(case, data)
            updates.append(case)
            versions.append((case, changes))
            summary[row.case_uid] = case.version
            result.changed += 1
        if creates:
            new_cases = _BulkCreate(site, actor, now, dictionary_version, note, via)
            if connection.vendor == "postgresql":
                new_cases.copy(creates)
            else:
                new_cases.insert(creates)
        if updates:
            Case.objects.bulk_update(
                updates,
                [
                    "data",
                    "status",
                    "patient_key",
                    "dictionary_version",
                    "version",
                    "updated_by",
                    "updated_at",
                    "submitted_at",
                    "case_month",
                    "object_type",
                    "organ_system",
                    "technology",
                    "cpt_codes",
                ],
                batch_size=500,
            )
            CaseVersion.objects.bulk_create(
                [
                    CaseVersion(
                        site=site,
                        case=case,
                        version=case.version,
                        status=case.status,
                        dictionary_version=dictionary_version,
                        data=case.data,
                        patient_key=case.patient_key,
                        changes=changes,
                        note=note,
                        via=via,
                        changed_by=actor,
                        changed_at=now,
                    )
                    for case, changes in versions
                ],
                batch_size=500,
            )
        if summary:
            record(
                "cases.imported",
                actor=actor,
                request=request,
                site=site,
                object_type="import",
                object_id=note[:254],
                changes={"cases": summary, "new": result.new, "changed": result.changed},
            )
    return result


def first_changes(data: dict) -> dict:
    """``differences({}, data)``, the changes of a new case, without the general walk."""
    out: dict = {}
    for key, value in data.items():
        if value is None:
            continue  # None is no change from nothing
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for number, item in enumerate(value, start=1):
                _flatten_new(item, f"{key}[{number}].", out)
        else:
            out[key] = [None, value]
    return dict(sorted(out.items()))


def _flatten_new(data: dict, prefix: str, out: dict) -> None:
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for number, item in enumerate(value, start=1):
                _flatten_new(item, f"{prefix}{key}[{number}].", out)
        else:
            out[prefix + key] = [None, value]


class _BulkCreate:
    """New cases of a bulk write, each with its first version (see :func:`save_cases_bulk`)."""

    def __init__(self, site, actor, now, dictionary_version, note, via):
        self.site, self.actor, self.now = site, actor, now
        self.dictionary_version, self.note, self.via = dictionary_version, note, via

    def insert(self, rows: list[BulkRow]) -> None:
        """Any database: the cases, then their first versions, each with one executemany.

        Values are prepared as the ORM prepares them (its fields' own
        conversions), once a batch where they are the same for every row;
        the ORM's bulk_create spent more time on building model objects and
        preparing each value than the database spent storing them.
        """
        case_fields = {f.name: f for f in Case._meta.concrete_fields}
        version_fields = {f.name: f for f in CaseVersion._meta.concrete_fields}

        def prep(fields, name, value):
            return fields[name].get_db_prep_save(value, connection)

        site_id, actor_id = self.site.pk, self.actor.pk if self.actor else None
        now = prep(case_fields, "created_at", self.now)
        version = prep(case_fields, "dictionary_version", self.dictionary_version)
        code = case_fields["code"]
        case_rows, datas = [], []
        for row in rows:
            data = row.text()  # what the JSON field would store
            datas.append(data)
            case_rows.append(
                (
                    code.get_db_prep_save(uuid.uuid4(), connection),
                    site_id,
                    row.case_uid,
                    row.patient_key or "",
                    row.status,
                    version,
                    data,
                    1,
                    "",
                    *row.column_values(),
                    now,
                    actor_id,
                    now,
                    actor_id,
                    now if row.status == CaseStatus.SUBMITTED else None,
                )
            )
        case_table, version_table = Case._meta.db_table, CaseVersion._meta.db_table
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {quoted(case_table)} (code, site_id, case_uid, patient_key, "
                "status, dictionary_version, data, version, withdrawn_reason, case_month, "
                "object_type, organ_system, technology, cpt_codes, created_at, created_by_id, "
                "updated_at, updated_by_id, submitted_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                case_rows,
            )
            ids = dict(
                Case.objects.filter(
                    site_id=site_id, case_uid__in=[row.case_uid for row in rows]
                ).values_list("case_uid", "id")
            )
            no_changes = prep(version_fields, "changes", {})
            note = prep(version_fields, "note", self.note)
            via = prep(version_fields, "via", self.via)
            cursor.executemany(
                f"INSERT INTO {quoted(version_table)} (site_id, case_id, version, status, "
                "dictionary_version, data, patient_key, changes, note, via, changed_at, "
                "changed_by_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        site_id,
                        ids[row.case_uid],
                        1,
                        row.status,
                        version,
                        data,
                        row.patient_key or "",
                        no_changes,
                        note,
                        via,
                        now,
                        actor_id,
                    )
                    for row, data in zip(rows, datas, strict=True)
                ],
            )

    def copy(self, rows: list[BulkRow]) -> None:
        """PostgreSQL: the first versions with COPY, then the cases from them.

        COPY sends JSON as plain text, where Django's multi-row inserts (made
        with arrays) have psycopg escape it inside an array, and the database
        reads the rows while they are still being sent. The case ids are
        taken from the sequence beforehand; the cases then take their data
        from their versions in one INSERT … SELECT, so the database reads
        each case's JSON once. (The versions' foreign key to the cases is
        checked at commit, as Django makes it deferred.)
        """
        site_id, actor_id, now = self.site.pk, self.actor.pk if self.actor else None, self.now
        version, note, via = self.dictionary_version, self.note, self.via
        with connection.cursor() as cursor:
            # Compress the JSON with LZ4 rather than the slower default (pglz),
            # where the server has it, for this transaction's writes only:
            # compressing the cases' data was a third of the database's work.
            cursor.execute(
                "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
                "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals) "
                "AND setting <> 'lz4'"
            )
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Case._meta.db_table, len(rows)],
            )
            ids = [case_id for (case_id,) in cursor.fetchall()]
            fields = {
                name: []
                for name in (
                    "uid",
                    "key",
                    "status",
                    "case_month",
                    "object_type",
                    "organ_system",
                    "technology",
                    "cpt_codes",
                )
            }
            with cursor.copy(
                f"COPY {quoted(CaseVersion._meta.db_table)} (site_id, case_id, version, status, "
                "dictionary_version, data, patient_key, changes, note, via, changed_at, "
                "changed_by_id) FROM STDIN"
            ) as copy:
                for case_id, row in zip(ids, rows, strict=True):
                    key = row.patient_key or ""
                    copy.write_row(
                        (
                            site_id,
                            case_id,
                            1,
                            row.status,
                            version,
                            row.text(),
                            key,
                            "{}",
                            note,
                            via,
                            now,
                            actor_id,
                        )
                    )
                    fields["uid"].append(row.case_uid)
                    fields["key"].append(key)
                    fields["status"].append(row.status)
                    for name, value in zip(COLUMNS, row.column_values(), strict=True):
                        fields[name].append(value)
            cursor.execute(
                f"""
                INSERT INTO {quoted(Case._meta.db_table)} (
                    id, code, site_id, case_uid, patient_key, status, dictionary_version, data,
                    version, withdrawn_reason, case_month, object_type, organ_system,
                    technology, cpt_codes, created_at, created_by_id, updated_at,
                    updated_by_id, submitted_at
                )
                SELECT new.id, new.code, %s, new.uid, new.key, new.status, %s, v.data,
                       1, '', new.case_month, new.object_type, new.organ_system,
                       new.technology, new.cpt_codes, %s, %s, %s,
                       %s, CASE WHEN new.status = %s THEN %s::timestamptz END
                FROM unnest(
                    %s::bigint[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[],
                    %s::text[], %s::text[], %s::text[], %s::text[]
                ) AS new (
                    id, code, uid, key, status, case_month, object_type, organ_system,
                    technology, cpt_codes
                )
                JOIN {quoted(CaseVersion._meta.db_table)} v
                  ON v.case_id = new.id AND v.version = 1
                """,
                [
                    site_id,
                    version,
                    now,
                    actor_id,
                    now,
                    actor_id,
                    CaseStatus.SUBMITTED,
                    now,
                    ids,
                    [uuid.uuid4() for _ in ids],
                    *fields.values(),
                ],
            )
