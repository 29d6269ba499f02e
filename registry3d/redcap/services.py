"""REDCap records in and out of a site, and dictionary proposals from REDCap files.

Imports go through the one write path (:func:`registry3d.cases.services.save_case`):
every record is checked first, and only when none has a problem are they all
written, in one transaction.
"""

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from registry3d.audit.services import record
from registry3d.cases import services as cases
from registry3d.cases.errors import CaseError, StaleVersion
from registry3d.cases.models import Case, CaseStatus
from registry3d.dictionary import registry
from registry3d.dictionary.errors import DictionaryError
from registry3d.intake import names
from registry3d.redcap import proposals
from registry3d.redcap.datadict import RowProblem
from registry3d.redcap.errors import ImportRefused, ProposalRefused
from registry3d.redcap.models import DictionaryProposal, ProposalStatus
from registry3d.redcap.project import RECORD_ID, Project, project_of
from registry3d.redcap.records import (
    Converter,
    RecordProblem,
    apply,
    read_rows,
    status_of,
)
from registry3d.sites.models import ApiToken

IMPORT_NOTE = "imported through the REDCap API"


def site_cases(site, records: list[str] | None = None):
    """The site's cases a REDCap export holds: not withdrawn, in record order."""
    query = Case.objects.filter(site=site).exclude(status=CaseStatus.WITHDRAWN)
    if records:
        query = query.filter(case_uid__in=records)
    return query.only("case_uid", "status", "data").order_by("case_uid")


def _problem_of(project: Project, record_id: str, problem, cells: dict) -> RecordProblem:
    """A validation problem (path like ``prints[2].material``) as a record's field problem."""
    path = problem.path
    where = place = ""
    name = path
    if "[" in path:
        group, _, rest = path.partition("[")
        number, _, item = rest.partition("]")
        where, place = f"{group} instance {number}: ", f"{group}[{number}]"
        name = item.lstrip(".") or group
        value = cells.get((group, number, name), "")
    else:
        value = cells.get(name, "")
    if name == "case_uid":
        name, value = RECORD_ID, record_id
    return RecordProblem(record_id, name, value, where + problem.message, place)


def _cells(incoming) -> dict:
    """Cell text by field (and by (group, instance, field)), to quote in problems."""
    cells: dict = {}
    for column, text in incoming.main.items():
        cells[column.split("___")[0]] = text
    for group, numbered in incoming.instances.items():
        for number, columns in numbered.items():
            for column, text in columns.items():
                cells[(group, str(number), column.split("___")[0])] = text
    return cells


def import_records(
    token: ApiToken,
    rows: list[dict],
    *,
    overwrite: bool = False,
    request: HttpRequest | None = None,
) -> list[str]:
    """Import REDCap flat rows into the token's site; return the record IDs written.

    Steps:
    1. Sort the rows into records and check every column and cell.
    2. Merge each record into the site's case of that ID (``overwrite``:
       empty cells remove values; otherwise they leave them), work out its
       status (:func:`registry3d.redcap.records.status_of`) and validate it
       as :func:`save_case` would.
    3. If any record has a problem, raise ImportRefused with all of them.
    4. Otherwise save every record through :func:`save_case`, in one
       transaction: all are written or none.
    """
    site = token.site
    project = project_of(registry.current().dictionary)
    incoming, problems = read_rows(project, rows)
    ids = [r.record_id for r in incoming]
    existing = {c.case_uid: c for c in Case.objects.filter(site=site, case_uid__in=ids)}
    converter = Converter(project.dictionary)
    planned = []
    for each in incoming:
        case = existing.get(each.record_id)
        if case is not None and case.status == CaseStatus.WITHDRAWN:
            problems.append(
                RecordProblem(
                    each.record_id,
                    RECORD_ID,
                    each.record_id,
                    "the case was withdrawn and cannot change",
                )
            )
            continue
        data, found = apply(
            project,
            each,
            case.data if case is not None else None,
            overwrite=overwrite,
            converter=converter,
        )
        problems += found
        status = status_of(project, each, case.status if case is not None else None)
        cells = _cells(each)
        checks = cases.check_record(each.record_id, None, status)
        checks += cases.validate(site, cases.normalise(data), status)
        # A cell that could not be read is reported once, not again as missing.
        unread = {(p.field.split("___")[0], p.place) for p in found}
        for check in checks:
            if check.severity != "error":
                continue
            mapped = _problem_of(project, each.record_id, check, cells)
            if (mapped.field, mapped.place) not in unread:
                problems.append(mapped)
        planned.append((each.record_id, data, status, case.version if case is not None else None))
    if problems:
        raise ImportRefused(problems)
    written = []
    try:
        with transaction.atomic():
            for record_id, data, status, version in planned:
                cases.save_case(
                    site,
                    case_uid=record_id,
                    data=data,
                    status=status,
                    actor=token.user,
                    request=request,
                    expected_version=version,
                    create_only=version is None,
                    note=IMPORT_NOTE,
                )
                written.append(record_id)
    except StaleVersion as exc:
        raise ImportRefused(
            [
                RecordProblem(
                    exc.case.case_uid,
                    RECORD_ID,
                    exc.case.case_uid,
                    "the case changed while it was imported; nothing was written, send it again",
                )
            ]
        ) from None
    except CaseError as exc:
        failed = planned[len(written)][0]
        raise ImportRefused([RecordProblem(failed, RECORD_ID, failed, str(exc))]) from None
    return written


def record_export(token: ApiToken, filters: dict, request: HttpRequest | None = None) -> None:
    """Note in the audit trail that the token's site's records left through the REDCap API."""
    record(
        "redcap.records_exported",
        actor=token.user,
        request=request,
        site=token.site,
        changes={key: value for key, value in filters.items() if value},
    )


# --- Dictionary proposals ---------------------------------------------------------------------

MAX_DICTIONARY_BYTES = 2 * 1024 * 1024


def store_proposal(
    content: bytes, file_name: str, *, actor, request: HttpRequest | None = None
) -> DictionaryProposal:
    """Check a REDCap data dictionary and store the dictionary version it proposes.

    Raises ProposalRefused with one problem per bad row; nothing is stored then.
    """
    if len(content) > MAX_DICTIONARY_BYTES:
        raise ProposalRefused(
            [RowProblem(0, "", f"the file is over {MAX_DICTIONARY_BYTES // 1024 // 1024} MB")]
        )
    dictionary = registry.current().dictionary
    proposal = proposals.propose(content, dictionary)
    # The name is typed by a person: one that looks like an identifier is
    # neither stored nor written to the audit trail.
    file_name, _kind = names.screened(file_name, names.neutral_name("data-dictionary", file_name))
    with transaction.atomic():
        stored = DictionaryProposal.objects.create(
            file_name=file_name[:200],
            base_version=proposal.base_version,
            version=proposal.version,
            csv_text=content.decode("utf-8-sig") if isinstance(content, bytes) else content,
            yaml_text=proposal.yaml_text,
            changes=proposal.changes,
            differences=proposal.differences,
            notes=proposal.notes,
            created_by=actor,
        )
        record(
            "dictionary.proposed",
            actor=actor,
            request=request,
            target=stored,
            changes={
                "file": stored.file_name,
                "from": stored.base_version,
                "to": stored.version,
                "changes": len(stored.changes),
            },
        )
    return stored


def proposal_folder(proposal: DictionaryProposal) -> Path:
    """Where an accepted proposal's dictionary file is written, under the registry's folder."""
    return Path(settings.VAR_DIR) / "dictionaries" / f"{proposal.version}-{str(proposal.code)[:8]}"


def accept_proposal(
    proposal: DictionaryProposal, *, actor, request: HttpRequest | None = None
) -> Path:
    """Accept a proposal: write its dictionary file and note who accepted it.

    The running registry keeps its dictionary: an administrator puts the
    file in force by pointing ``REGISTRY3D_DICTIONARY`` at it and restarting.
    """
    dictionary = registry.current().dictionary
    with transaction.atomic():
        locked = DictionaryProposal.objects.select_for_update().get(pk=proposal.pk)
        if locked.status == ProposalStatus.ACCEPTED:
            raise ProposalRefused(
                [RowProblem(0, "", f"this proposal was already accepted ({locked.accepted_path})")]
            )
        if locked.base_version != dictionary.version:
            raise ProposalRefused(
                [
                    RowProblem(
                        0,
                        "",
                        f"the proposal is based on dictionary {locked.base_version} but the "
                        f"registry now uses {dictionary.version}; upload the file again",
                    )
                ]
            )
        try:
            proposals.load_text(locked.yaml_text, dictionary)
        except DictionaryError as exc:
            raise ProposalRefused([RowProblem(0, "", f"the file is refused: {exc}")]) from None
        path = proposal_folder(locked) / "case.yaml"
        proposals.write_files(locked.yaml_text, dictionary, path)
        locked.status = ProposalStatus.ACCEPTED
        locked.accepted_at = timezone.now()
        locked.accepted_by = actor
        locked.accepted_path = str(path)
        locked.save(update_fields=["status", "accepted_at", "accepted_by", "accepted_path"])
        record(
            "dictionary.proposal_accepted",
            actor=actor,
            request=request,
            target=locked,
            changes={"to": locked.version, "file": str(path)},
        )
    proposal.refresh_from_db()
    return path
