"""Bulk import of case files (CSV or XLSX), in two streaming passes.

1. Check: read every row, turn it into case data (columns are matched to
   dictionary elements by name or label), validate it, and count what it
   would do — new, changed, unchanged or invalid — storing each problem.
2. Write (unless it is only a preview): read the file again and write the
   valid rows through the cases' bulk write path in batches. Each batch is
   one transaction that also moves the import's counters, so a crash leaves
   only whole batches, and running the import again finishes it (rows
   already written are unchanged the second time).

Neither pass holds the file in memory: a million rows stream through.
"""

import csv
import hashlib
import io
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry3d.audit.services import record
from registry3d.cases import services as cases
from registry3d.cases.models import CaseStatus
from registry3d.dictionary import registry
from registry3d.dictionary.flat import FlatReader
from registry3d.dictionary.validation import Problem
from registry3d.intake.models import Import, ImportMode, ImportProblem, ImportStatus

BATCH_SIZE = 1000
MAX_PROBLEMS_STORED = 100_000
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


class ImportError_(Exception):
    """Raised when a file cannot be read as a table of cases at all."""


@dataclass
class Table:
    """A readable file: its header, and a fresh iterator of its data rows."""

    columns: list[str]
    rows: Callable[[], Iterator[list]]
    file_format: str
    delimiter: str = ""


def open_table(path: Path, name: str = "") -> Table:
    """Open a CSV (UTF-8, with or without BOM; comma, semicolon or tab) or XLSX file.

    ``name`` is the file's name as the user knows it, for messages.
    """
    name = name or path.name
    suffix = Path(name).suffix.lower() or path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path, name)
    if suffix in (".csv", ".txt", ".tsv"):
        return _open_csv(path, name)
    raise ImportError_(f"{name}: expected a .csv or .xlsx file")


def _open_csv(path: Path, name: str) -> Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            sample = handle.read(64 * 1024)
    except UnicodeDecodeError:
        raise ImportError_(f"{name}: the file is not UTF-8 text; save it as CSV UTF-8") from None
    if not sample.strip():
        raise ImportError_(f"{name}: the file is empty")
    first_line = sample.splitlines()[0]
    delimiter = max(DELIMITERS, key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","

    def rows():
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            next(reader, None)
            yield from reader

    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle, delimiter=delimiter))
    return Table([h.strip() for h in header], rows, "csv", DELIMITERS[delimiter])


def _open_xlsx(path: Path, name: str) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    def sheet(workbook):
        return workbook["cases"] if "cases" in workbook.sheetnames else workbook.worksheets[0]

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise ImportError_(f"{name}: not a readable XLSX workbook ({exc})") from None
    header_row = next(sheet(workbook).iter_rows(max_row=1, values_only=True), None)
    workbook.close()
    if not header_row:
        raise ImportError_(f"{name}: the first sheet is empty")
    header = ["" if h is None else str(h).strip() for h in header_row]

    def rows():
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            for values in sheet(book).iter_rows(min_row=2, values_only=True):
                yield list(values)
        finally:
            book.close()

    return Table(header, rows, "xlsx")


def store_upload(site_code: str, name: str, chunks) -> tuple[Path, str]:
    """Keep an uploaded file under var/imports; return its path and SHA-256."""
    folder = Path(settings.VAR_DIR) / "imports" / site_code
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    safe = "".join(c for c in Path(name).name if c.isalnum() or c in "._-")[-100:] or "upload"
    path = folder / f"{timezone.now():%Y%m%d%H%M%S%f}-{safe}"
    with path.open("wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def create_import(
    site,
    path: Path,
    *,
    actor=None,
    mode=ImportMode.ALL_OR_NOTHING,
    default_status=CaseStatus.SUBMITTED,
    file_name: str = "",
) -> Import:
    """Register a file for import (it is checked and written by :func:`run_import`)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    batch = Import.objects.create(
        site=site,
        created_by=actor,
        file_name=(file_name or path.name)[:255],
        file_path=str(path),
        file_sha256=digest.hexdigest(),
        mode=mode,
        default_status=default_status,
    )
    record(
        "import.created",
        actor=actor,
        site=site,
        target=batch,
        changes={"file": batch.file_name, "sha256": batch.file_sha256, "mode": mode},
    )
    return batch


class _Rows:
    """Turns table rows into (number, BulkRow | None, problems)."""

    def __init__(self, batch: Import, table: Table):
        self.batch = batch
        self.table = table
        self.dictionary = registry.current().dictionary
        self.reader = FlatReader(self.dictionary)
        self.names = [self.reader.column_name(c) if c else "" for c in table.columns]
        self.unknown = [
            c
            for c, n in zip(table.columns, self.names, strict=True)
            if c and not self.reader.known(n)
        ]
        # Unknown columns are reported once, not for every row.
        self.known_names = [n if n and self.reader.known(n) else "" for n in self.names]
        self.validator = registry.current().validator
        self.labels = list(batch.site.printers.values_list("label", flat=True))

    def __iter__(self):
        for number, values in enumerate(self.table.rows(), start=2):  # row 1 is the header
            if not any(v not in (None, "") for v in values):
                continue
            row = {
                name: value for name, value in zip(self.known_names, values, strict=False) if name
            }
            record_fields, data, problems = self.reader.read(row)
            uid = str(record_fields.get("case_uid", "")).strip()
            status = str(record_fields.get("status", "") or self.batch.default_status).lower()
            key = record_fields.get("patient_key") or None
            problems += cases.check_record(uid, key, status)
            if not problems:
                data = cases.normalise(data)
                problems += self.validator.validate(
                    data,
                    complete=status == CaseStatus.SUBMITTED,
                    site_printer_labels=self.labels,
                )
            errors = [p for p in problems if p.severity == "error"]
            if errors:
                yield number, uid, None, errors
            else:
                yield number, uid, cases.BulkRow(number, uid, data, status, key), []


def _save_problems(batch: Import, number: int, uid: str, problems: list[Problem]):
    return [
        ImportProblem(
            site=batch.site,
            batch=batch,
            row=number,
            case_uid=uid[:64],
            element=p.path[:120],
            code=p.code[:40],
            message=p.message[:500],
        )
        for p in problems
    ]


def check_import(batch: Import, progress: Callable[[int], None] | None = None) -> Import:
    """Pass 1: count new, changed, unchanged and invalid rows; store every problem."""
    table = open_table(Path(batch.file_path), batch.file_name)
    rows = _Rows(batch, table)
    batch.problems.all().delete()
    batch.file_format, batch.delimiter = table.file_format, table.delimiter
    batch.unknown_columns = rows.unknown
    batch.status = ImportStatus.CHECKING
    batch.host, batch.pid = socket.gethostname(), os.getpid()
    batch.heartbeat_at = timezone.now()
    batch.rows = batch.new = batch.changed = batch.unchanged = batch.invalid = 0
    batch.save()
    pending, stored, seen = [], 0, set()
    chunk: list = []

    def flush_chunk():
        nonlocal chunk
        existing = cases.classify(batch.site, [r for r in chunk])
        for row in chunk:
            case = existing.get(row.case_uid)
            if case is None:
                batch.new += 1
            elif case.data == row.data and case.status == row.status:
                batch.unchanged += 1
            else:
                batch.changed += 1
        chunk = []

    for number, uid, bulk_row, problems in rows:
        batch.rows += 1
        if bulk_row is not None and uid in seen:
            problems = [
                Problem(
                    "case_uid",
                    "duplicate_row",
                    f"Case {uid} appears more than once in the file; keep one row",
                )
            ]
            bulk_row = None
        if bulk_row is None:
            batch.invalid += 1
            if stored < MAX_PROBLEMS_STORED:
                pending += _save_problems(batch, number, uid, problems)
                stored += len(problems)
        else:
            seen.add(uid)
            chunk.append(bulk_row)
            if len(chunk) >= BATCH_SIZE:
                flush_chunk()
        if len(pending) >= BATCH_SIZE:
            ImportProblem.objects.bulk_create(pending)
            pending = []
        if progress is not None and batch.rows % 500 == 0:
            progress(batch.rows)
    if chunk:
        flush_chunk()
    ImportProblem.objects.bulk_create(pending)
    batch.status = ImportStatus.CHECKED
    batch.save()
    return batch


def write_import(
    batch: Import, progress: Callable[[int], None] | None = None, actor=None
) -> Import:
    """Pass 2: write the valid rows in batches; all-or-nothing writes none if any is invalid."""
    if batch.mode == ImportMode.ALL_OR_NOTHING and batch.invalid:
        batch.status = ImportStatus.REFUSED
        batch.message = (
            f"{batch.invalid} invalid row{'s' if batch.invalid != 1 else ''}: "
            "nothing was written (fix them, or import the valid rows only)"
        )
        batch.finished_at = timezone.now()
        batch.save()
        return batch
    table = open_table(Path(batch.file_path), batch.file_name)
    batch.status = ImportStatus.IMPORTING
    batch.written = batch.batches_committed = batch.rows_done = 0
    batch.heartbeat_at = timezone.now()
    batch.save()
    note = f"import {batch.code}"
    pending: list = []
    seen: set[str] = set()
    done = 0

    def commit():
        nonlocal pending
        with transaction.atomic():
            result = cases.save_cases_bulk(
                batch.site, pending, actor=actor or batch.created_by, note=note
            )
            batch.written += result.new + result.changed
            batch.batches_committed += 1
            batch.rows_done = done
            batch.heartbeat_at = timezone.now()
            batch.save(update_fields=["written", "batches_committed", "rows_done", "heartbeat_at"])
            if result.refused:
                ImportProblem.objects.bulk_create(
                    [
                        problem
                        for number, uid, p in result.refused
                        for problem in _save_problems(batch, number, uid, [p])
                    ]
                )
        pending = []
        if progress is not None:
            progress(done)

    for _number, uid, bulk_row, _problems in _Rows(batch, table):
        done += 1
        if bulk_row is None or uid in seen:
            continue
        seen.add(uid)
        pending.append(bulk_row)
        if len(pending) >= BATCH_SIZE:
            commit()
    if pending or not batch.batches_committed:
        commit()
    batch.status = ImportStatus.DONE
    batch.finished_at = timezone.now()
    batch.save()
    record(
        "import.finished",
        actor=actor or batch.created_by,
        site=batch.site,
        target=batch,
        changes={"rows": batch.rows, "written": batch.written, "invalid": batch.invalid},
    )
    return batch


def run_import(batch: Import, *, preview: bool = False, progress=None, actor=None) -> Import:
    """Check the file and, unless it is a preview, write it."""
    try:
        check_import(batch, progress)
        if not preview:
            write_import(batch, progress, actor=actor)
    except ImportError_ as exc:
        batch.status = ImportStatus.FAILED
        batch.message = str(exc)[:500]
        batch.finished_at = timezone.now()
        batch.save()
        raise
    return batch


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_interrupted(stale_after_seconds: int = 600) -> int:
    """Mark imports whose process is gone as interrupted; return how many.

    On this machine a dead process tells; elsewhere an import whose last
    batch is older than ``stale_after_seconds`` counts as stopped.
    """
    host = socket.gethostname()
    limit = timezone.now() - timedelta(seconds=stale_after_seconds)
    stopped = []
    running = Import.objects.filter(status__in=[ImportStatus.IMPORTING, ImportStatus.CHECKING])
    for batch in running:
        dead_here = batch.host == host and not _alive(batch.pid)
        silent = batch.heartbeat_at is not None and batch.heartbeat_at < limit
        if dead_here or silent:
            stopped.append(batch.pk)
    return Import.objects.filter(pk__in=stopped).update(
        status=ImportStatus.INTERRUPTED,
        message="The import stopped before it finished; run it again to finish it",
    )


def problems_csv(batch: Import) -> Iterator[str]:
    """The full problem list as CSV text, row by row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "case_uid", "element", "code", "message"])
    yield out.getvalue()
    for problem in batch.problems.order_by("row", "id").iterator(chunk_size=2000):
        out.seek(0)
        out.truncate()
        writer.writerow(
            [problem.row, problem.case_uid, problem.element, problem.code, problem.message]
        )
        yield out.getvalue()


def copy_to_imports(site_code: str, path: Path) -> Path:
    """Copy a file given on the command line next to uploaded ones."""
    with path.open("rb") as handle:
        stored, _digest = store_upload(
            site_code, path.name, iter(lambda: handle.read(1 << 20), b"")
        )
    return stored
