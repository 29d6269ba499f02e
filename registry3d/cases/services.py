"""The one write path for cases: web form, API, command line and imports.

Every change goes through :func:`save_case` or :func:`withdraw_case`, which

1. check the record fields (case ID, patient key, status) and the data
   against the dictionary (drafts may be incomplete; submitted cases must
   be complete), refusing patient identifiers;
2. lock the case row, refuse a change made against an older version, and
   do nothing at all when nothing changed (so the same request twice is one
   version);
3. store the new version, its history row with what changed, and the audit
   event, in one transaction.
"""

import json
import re
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone

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
from registry3d.lib.identifiers import find_identifier
from registry3d.lib.pseudonym import looks_like_key
from registry3d.lib.sql import insert_parts, quoted
from registry3d.sites.models import Printer, Site, SiteRole
from registry3d.sites.services import get_site_for_user

CASE_UID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_DATA_BYTES = 256 * 1024


@dataclass
class SaveResult:
    case: Case
    changed: bool
    created: bool
    warnings: list[Problem] = field(default_factory=list)


# --- Access -------------------------------------------------------------------------------


def get_case_for_user(user, site_code: str, case_uid: str, write: bool = False) -> Case:
    """Return the site's case if the user may read it (or change it, with ``write``).

    Another site's case, or one that does not exist, is a 404 either way.
    """
    site = get_site_for_user(user, site_code, SiteRole.CONTRIBUTOR if write else SiteRole.VIEWER)
    case = Case.objects.filter(site=site, case_uid=case_uid).select_related("site").first()
    if case is None:
        raise Http404("No such case")
    return case


# --- Checks ---------------------------------------------------------------------------------


def check_record(case_uid: str, patient_key: str | None, status: str) -> list[Problem]:
    problems = []
    if not isinstance(case_uid, str) or not CASE_UID_RE.match(case_uid):
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
                    "Patient key: expected the pseudonymous key (16 to 128 letters and digits, "
                    "made with 'registry3d pseudonymize'), not a record number",
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
    dictionary = registry.current().dictionary
    out = dict(data)
    for element in dictionary.elements.values():
        value = out.get(element.name)
        if (
            element.top_code is not None
            and isinstance(value, int)
            and not isinstance(value, bool)
            and value > element.top_code
            and (element.max is None or value <= element.max)
        ):
            out[element.name] = element.top_code
    return out


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


def _columns(case: Case, data: dict) -> None:
    """Copy the values lists and reports filter on into their columns."""
    prints = [p for p in data.get("prints") or [] if isinstance(p, dict)]
    primary = next(
        (p for p in prints if p.get("print_role") == "primary"), prints[0] if prints else {}
    )
    case.case_month = data.get("case_year_month") or ""
    case.object_type = data.get("object_type") or ""
    case.organ_system = data.get("organ_system") or ""
    case.technology = primary.get("technology") or ""
    codes = sorted(
        {
            line.get("code")
            for line in data.get("cpt_lines") or []
            if isinstance(line, dict) and line.get("code")
        }
    )
    case.cpt_codes = ",".join(codes)


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
    changes = differences({}, data)
    version = CaseVersion(
        site=site,
        case=case,
        version=1,
        status=status,
        dictionary_version=dictionary_version,
        data=data,
        patient_key=case.patient_key,
        changes=changes,
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
            "elements": changes,
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
            "elements": changes,
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
                "reason": reason,
            },
        )
    return case


# --- Many cases at once (imports) ------------------------------------------------------------


@dataclass
class BulkRow:
    number: int  # the row's number in the file, for problems
    case_uid: str
    data: dict
    status: str
    patient_key: str | None = None


@dataclass
class BulkResult:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str, Problem]] = field(default_factory=list)


def classify(site: Site, rows: list[BulkRow]) -> dict[str, Case]:
    """Return the site's existing cases among ``rows``, by case ID."""
    uids = [row.case_uid for row in rows]
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
    and one audit event names every case of the batch, which keeps a large
    import fast. Validation happens before, in the caller, with
    :func:`validate`, so rows reach here only when they are valid.
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
        creates, updates, versions, summary = [], [], [], {}
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
                case = Case(
                    site=site,
                    case_uid=row.case_uid,
                    patient_key=row.patient_key or "",
                    status=row.status,
                    dictionary_version=dictionary_version,
                    data=row.data,
                    version=1,
                    created_by=actor,
                    updated_by=actor,
                    created_at=now,
                    updated_at=now,
                    submitted_at=now if row.status == CaseStatus.SUBMITTED else None,
                )
                _columns(case, row.data)
                creates.append(case)
                versions.append((case, differences({}, row.data)))
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
            changes = differences(case.data, row.data)
            if key != case.patient_key:
                changes["patient_key"] = ["(changed)", "(changed)"]
            if status != case.status:
                changes["status"] = [case.status, status]
            if not changes:
                result.unchanged += 1
                continue
            if status == CaseStatus.SUBMITTED and case.status != CaseStatus.SUBMITTED:
                case.submitted_at = now
            case.data, case.status, case.patient_key = row.data, status, key
            case.dictionary_version = dictionary_version
            case.version += 1
            case.updated_by, case.updated_at = actor, now
            _columns(case, row.data)
            updates.append(case)
            versions.append((case, changes))
            summary[row.case_uid] = case.version
            result.changed += 1
        Case.objects.bulk_create(creates, batch_size=500)
        if creates and creates[0].pk is None:
            # Backends that cannot return ids (none of ours today) are read back.
            ids = dict(
                Case.objects.filter(
                    site=site, case_uid__in=[c.case_uid for c in creates]
                ).values_list("case_uid", "id")
            )
            for case in creates:
                case.pk = case.id = ids[case.case_uid]
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
