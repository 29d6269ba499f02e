"""Bulk import of case files (CSV or XLSX), in two streaming passes.

1. Check: read every row, turn it into case data (columns are matched to
   dictionary elements by name or label), validate it, and count what it
   would do — new, changed, unchanged or invalid — storing each problem.
   The valid rows, as the case data they became, are kept in a spool file
   next to the site's uploads (see :class:`_Spool`).
2. Write (unless it is only a preview): read the spool (or, without one,
   read and check the file again) and write the valid rows through the
   cases' bulk write path in batches. Each batch is one transaction that
   also moves the import's counters, so a crash leaves only whole batches,
   and running the import again finishes it (rows already written are
   unchanged the second time). The spool is removed when the import ends,
   and so is the kept copy of the file (:func:`remove_upload`): it may hold
   the identifiers the check refused.

Neither pass holds the file in memory: a million rows stream through.
"""

import csv
import gc
import hashlib
import io
import multiprocessing
import os
import pickle
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from queue import Queue
from threading import Thread

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from registry3d.audit.services import record
from registry3d.cases import services as cases
from registry3d.cases.models import CaseStatus
from registry3d.dictionary import registry
from registry3d.dictionary.flat import FlatReader
from registry3d.dictionary.validation import Problem
from registry3d.dictionary.versions import fingerprints
from registry3d.intake import names
from registry3d.intake.models import Import, ImportMode, ImportProblem, ImportStatus
from registry3d.lib import identifiers
from registry3d.sites.models import Printer

BATCH_SIZE = 1000
# Rows are checked CHECK_CHUNK_ROWS at a time; in files at least
# PARALLEL_CHECK_MIN_BYTES large, by forked processes (see _Rows.chunks).
CHECK_CHUNK_ROWS = 1000
PARALLEL_CHECK_MIN_BYTES = 2 << 20
PICKLE_PROTOCOL = 5
WRITE_CONNECTIONS = 2  # PostgreSQL: batches written at once (see write_connections)
MAX_PROBLEMS_STORED = 100_000
SPOOL_KEPT_SECONDS = 24 * 3600  # a checked import's valid rows wait this long
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


def shown_file_name(name: str) -> str:
    """The name an import is known by: the upload's, or ``upload.<ext>`` if it
    looks like an identifier (it is then stored nowhere, nor shown)."""
    shown, _kind = names.screened(Path(name).name, names.neutral_name("upload", name))
    return shown


def shown_column(number: int, header: str) -> str:
    """A column's header as it may be stored or shown: one that looks like an
    identifier is ``column <number> (name withheld)``."""
    if identifiers.find_identifier(header) is None:
        return header
    return f"column {number} (name withheld)"


def store_upload(site_code: str, name: str, chunks) -> tuple[Path, str]:
    """Keep an uploaded file under var/imports; return its path and SHA-256.

    The file gets a random name with the upload's extension, never the
    upload's name: that is typed by a person and may name the patient.
    """
    folder = Path(settings.VAR_DIR) / "imports" / site_code
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    # The random name keeps two uploads at the same moment (two API
    # clients, two browser tabs) apart; "x" refuses to overwrite a file.
    path = folder / f"upload-{names.random_name(names.suffix_of(name))}"
    with path.open("xb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def store_readable_upload(site_code: str, name: str, chunks) -> tuple[Path, str]:
    """Keep an uploaded file, if it can be read as a table of cases at all.

    A file that is not a table (empty, not UTF-8, not a workbook) or has no
    case_uid column cannot give one case, so it is refused at once with
    ImportError_ naming what is wrong, and nothing is kept: no file, no
    import job. Files that are tables are checked row by row by the job.
    """
    path, digest = store_upload(site_code, name, chunks)
    name = shown_file_name(name)
    try:
        table = open_table(path, name)
        reader = FlatReader(registry.current().dictionary)
        if "case_uid" not in {reader.column_name(c) for c in table.columns if c}:
            shown = [shown_column(n, c)[:40] for n, c in enumerate(table.columns[:5], 1) if c]
            found = ", ".join(repr(c) for c in shown) or "none"
            raise ImportError_(
                f"{name}: the header row has no case_uid column (its columns: {found}); "
                "name the columns as the import template does"
            )
    except (ImportError_, csv.Error, StopIteration) as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, ImportError_):
            raise
        raise ImportError_(f"{name}: not a readable CSV file ({exc})") from None
    return path, digest


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
        file_name=shown_file_name(file_name or path.name)[:255],
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
    """Reads and validates a file's rows (see :meth:`chunks`)."""

    def __init__(self, batch: Import, table: Table):
        self.batch = batch
        self.table = table
        self.dictionary = registry.current().dictionary
        self.reader = FlatReader(self.dictionary)
        self.names = [self.reader.column_name(c) if c else "" for c in table.columns]
        self.unknown = [
            shown_column(number, c)
            for number, (c, n) in enumerate(zip(table.columns, self.names, strict=True), 1)
            if c and not self.reader.known(n)
        ]
        # Unknown columns are reported once, not for every row.
        self.known_names = [n if n and self.reader.known(n) else "" for n in self.names]
        self.row_reader = self.reader.row_reader(self.known_names)
        self.validator = registry.current().validator
        self.labels = list(batch.site.printers.values_list("label", flat=True))

    def check(self, number: int, values: list) -> tuple:
        """Read and validate one row: (case ID, (data, status, key) or None, errors)."""
        record_fields, data, problems = self.row_reader.read(values, text_only=self.text_only)
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
            return uid, None, errors
        return uid, (data, status, key), []

    def check_chunk(self, first: int, numbered: list[tuple[int, list]]) -> tuple[list, list]:
        """Check rows numbered in the file, the first being the ``first``-th row of data.

        Returns what became of each row, (ordinal, number, case ID, valid,
        errors), and the valid ones as the spool keeps them (see :class:`_Spool`).
        """
        results, valid = [], []
        check, dumps, columns = self.check, cases.json_text, cases.column_values
        for ordinal, (number, values) in enumerate(numbered, start=first):
            if values.__class__ is str:
                values = values.split(PACKED)  # see _packed
            uid, ok, errors = check(number, values)
            results.append((ordinal, number, uid, ok is not None, errors))
            if ok is not None:
                data, status, key = ok
                valid.append((ordinal, number, uid, status, key, dumps(data), columns(data)))
        return results, valid

    @property
    def text_only(self) -> bool:
        return self.table.file_format == "csv"  # every cell a string

    def _numbered(self) -> Iterator[list[tuple[int, list]]]:
        """The file's rows that hold anything, with their numbers, in lists of CHECK_CHUNK_ROWS."""
        chunk = []
        for number, values in enumerate(self.table.rows(), start=2):  # row 1 is the header
            if not any(values) and not any(v not in (None, "") for v in values):
                continue
            chunk.append((number, values))
            if len(chunk) >= CHECK_CHUNK_ROWS:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def chunks(self, processes: int = 1) -> Iterator["_Checked"]:
        """Check every row; yield the results chunk by chunk, in file order.

        With ``processes`` > 1 the chunks are checked by that many forked
        processes while this one reads the file and takes the results in
        order; a checking process sends the valid rows back already pickled
        for the spool, so this one need not look at their data. At most a
        few chunks are in flight, so memory stays flat whatever the size.
        """
        if processes <= 1:
            first = 1
            for numbered in self._numbered():
                yield _Checked(*self.check_chunk(first, numbered))
                first += len(numbered)
            return
        global _checking
        _checking = self  # what the forked processes work on
        try:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                waiting: deque = deque()
                first = 1
                for numbered in self._numbered():
                    packed = _packed(numbered) if self.text_only else numbered
                    waiting.append(pool.apply_async(_check_in_child, (first, packed)))
                    first += len(numbered)
                    if len(waiting) > 2 * processes:
                        yield _Checked(*waiting.popleft().get())
                while waiting:
                    yield _Checked(*waiting.popleft().get())
        finally:
            _checking = None


# Joins a CSV row's cells into one string for a checking process: a list of
# a thousand strings pickles in a fraction of the time of a thousand lists
# of 171 cells each. A row holding the separator itself is sent as a list.
PACKED = "\x1f"


def _packed(numbered: list[tuple[int, list]]) -> list[tuple[int, list | str]]:
    out = []
    for number, values in numbered:
        joined = PACKED.join(values)
        out.append((number, joined if joined.count(PACKED) == len(values) - 1 else values))
    return out


class _Checked:
    """A chunk of checked rows: what became of each, and the valid ones for the spool.

    ``valid`` comes pickled from a checking process; it is only unpickled
    when needed (to compare rows with cases that exist, or to drop a row).
    """

    def __init__(self, results: list[tuple], valid: list[tuple] | bytes):
        self.results = results
        self._valid = valid

    @property
    def valid(self) -> list[tuple]:
        if isinstance(self._valid, bytes):
            self._valid = pickle.loads(self._valid)
        return self._valid

    def drop(self, ordinals: set[int]) -> None:
        self._valid = [row for row in self.valid if row[0] not in ordinals]

    def pickled(self) -> bytes:
        if isinstance(self._valid, bytes):
            return self._valid
        return pickle.dumps(self._valid, PICKLE_PROTOCOL)


_checking: _Rows | None = None
MAX_CHECK_PROCESSES = 3  # more would wait for this process to read the file


def _check_in_child(first: int, numbered: list) -> tuple[list, bytes]:
    """In a forked process: check a chunk of the import being checked.

    The cyclic garbage collector waits until the chunk is done: what a
    check makes (cells, case data, problems) holds no cycles and is freed
    by reference counting, and collecting while a thousand rows' objects
    are alive took a third of the time of reading them.
    """
    gc.disable()
    try:
        results, valid = _checking.check_chunk(first, numbered)
        return results, pickle.dumps(valid, PICKLE_PROTOCOL)
    finally:
        gc.enable()


def check_processes(path: Path) -> int:
    """How many processes check a file: one for a small file, else one per CPU (up to 3).

    Only on Linux, where forking a process that has set Django up is safe
    and cheap; a forked process only reads and validates rows, it never
    uses the database. Only from a process with no other thread (the command
    line): a fork copies locks other threads may hold (the worker's sweeps,
    a threaded server) and the copy could wait on them for ever.
    """
    if sys.platform != "linux" or threading.active_count() > 1:
        return 1
    try:
        if path.stat().st_size < PARALLEL_CHECK_MIN_BYTES:
            return 1
    except OSError:
        return 1
    return max(1, min(MAX_CHECK_PROCESSES, len(os.sched_getaffinity(0))))


class _Spool:
    """The valid rows of a checked import, so writing it needs no second reading.

    A file in the site's import folder, ``import-<code>.rows``, of pickles
    written one after another: first what the rows were checked against
    (the dictionary's version and fingerprints, and the site's printers;
    when any changed, the write reads and checks the file again), then for
    each CHECK_CHUNK_ROWS rows of the file a list of its valid rows, each a
    tuple of its place among the file's rows, its number in the file, case
    ID, status, patient key, case data as JSON text and the values of the
    cases' filter columns (:func:`cases.column_values`). Only the import
    writes and reads it, in the registry's own folder, like the uploaded file
    beside it. It
    is written under a temporary name and renamed when the check finishes,
    so a spool that exists is whole.
    """

    VERSION = 2  # rows hold their data as JSON text and their filter columns

    def __init__(self, batch: Import):
        self.batch = batch
        self.path = spool_path(batch)

    def _stamp(self, labels) -> dict:
        dictionary = registry.current().dictionary
        return {
            "spool": self.VERSION,
            "import": str(self.batch.code),
            "dictionary": [dictionary.version, fingerprints(dictionary)],
            "printers": sorted(labels),
        }

    @contextmanager
    def writer(self, labels: list[str]):
        """Write the spool; yields ``write(checked)`` for each :class:`_Checked`.

        The spool is kept only if the block ends without an exception.
        """
        self.remove()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            with partial.open("wb", buffering=1 << 20) as out:
                out.write(pickle.dumps(self._stamp(labels), PICKLE_PROTOCOL))

                def write(checked: _Checked) -> None:
                    out.write(checked.pickled())

                yield write
            try:
                partial.replace(self.path)
            except FileNotFoundError:
                pass  # removed meanwhile: the write will read the file again
        finally:
            partial.unlink(missing_ok=True)

    def rows(self) -> Iterator[tuple[int, cases.BulkRow]] | None:
        """Return (ordinal, BulkRow) of every spooled row, or None when there is no
        usable spool (none, or checked against another dictionary or printers)."""
        try:
            handle = self.path.open("rb", buffering=1 << 20)
        except FileNotFoundError:
            return None
        try:
            stamp = pickle.load(handle)
        except (EOFError, pickle.UnpicklingError, ValueError):
            stamp = None
        labels = Printer.objects.filter(site=self.batch.site).values_list("label", flat=True)
        if stamp != self._stamp(labels):
            handle.close()
            return None
        return self._read(handle)

    @staticmethod
    def _read(handle) -> Iterator[tuple[int, cases.BulkRow]]:
        load, bulk_row = pickle.load, cases.BulkRow
        with handle:
            while True:
                try:
                    chunk = load(handle)
                except EOFError:
                    return
                for ordinal, number, uid, status, key, text, columns in chunk:
                    yield ordinal, bulk_row(number, uid, None, status, key, text, columns)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def spool_path(batch: Import) -> Path:
    """Where the valid rows of a checked import wait to be written (see :class:`_Spool`)."""
    return Path(settings.VAR_DIR) / "imports" / batch.site.code / f"import-{batch.code}.rows"


def remove_stale_spools(site) -> int:
    """Remove the spools of the site's imports that will not be written; return how many.

    A running import keeps its spool, and so does a checked one waiting to
    be written (the web preview) for a day; an import written after that
    reads its file again.
    """
    folder = Path(settings.VAR_DIR) / "imports" / site.code
    if not folder.is_dir():
        return 0
    running = [ImportStatus.PENDING, ImportStatus.CHECKING, ImportStatus.IMPORTING]
    statuses = dict(
        Import.objects.filter(site=site, status__in=[*running, ImportStatus.CHECKED]).values_list(
            "code", "status"
        )
    )
    statuses = {str(code): status for code, status in statuses.items()}
    day_ago = time.time() - SPOOL_KEPT_SECONDS
    removed = 0
    for path in folder.glob("import-*.rows*"):
        status = statuses.get(path.name.removeprefix("import-").split(".", 1)[0])
        try:
            fresh = path.stat().st_mtime > day_ago
        except FileNotFoundError:
            continue
        if status in running or (status == ImportStatus.CHECKED and fresh):
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def remove_upload(batch: Import) -> None:
    """Remove the kept copy of an import's file, which may hold refused identifiers.

    Called once the import is written or refused, or was a command-line
    preview: nothing reads the file again. Running an import again (the
    command line, or an upload) keeps a new copy (#15).
    """
    if not batch.file_path:
        return
    path = Path(batch.file_path).resolve()
    folder = (Path(settings.VAR_DIR) / "imports").resolve()
    if path.name.startswith("upload-") and path.is_relative_to(folder):
        path.unlink(missing_ok=True)


def remove_stale_uploads(site) -> int:
    """Remove the kept files of the site's imports that will not be read again; return how many.

    As with the spools (:func:`remove_stale_spools`), a running import keeps
    its file, and so does a checked one waiting to be written (the web
    preview) for a day, and a file not yet registered as an import (it is
    being uploaded) for a day.
    """
    folder = Path(settings.VAR_DIR) / "imports" / site.code
    if not folder.is_dir():
        return 0
    uploads = {str(path): path for path in folder.glob("upload-*")}
    statuses = dict(
        Import.objects.filter(site=site, file_path__in=list(uploads)).values_list(
            "file_path", "status"
        )
    )
    running = [ImportStatus.PENDING, ImportStatus.CHECKING, ImportStatus.IMPORTING]
    day_ago = time.time() - SPOOL_KEPT_SECONDS
    removed = 0
    for name, path in uploads.items():
        status = statuses.get(name)
        try:
            fresh = path.stat().st_mtime > day_ago
        except FileNotFoundError:
            continue
        if status in running or (status in (ImportStatus.CHECKED, None) and fresh):
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


@contextmanager
def _fewer_collections():
    """Run the cyclic garbage collector less often while rows stream through.

    An import makes millions of small dictionaries and lists that are freed
    by reference counting; the collector, run every 700 of them, walks every
    young object each time and, now and then, all of the process's objects.
    Raising the first threshold makes those walks rarer, not longer.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _save_problems(batch: Import, number: int, uid: str, problems: list[Problem]):
    return [
        ImportProblem(
            site=batch.site,
            batch=batch,
            row=number,
            case_uid=cases.shown_case_uid(uid)[:64],
            element=p.path[:120],
            code=p.code[:40],
            message=p.message[:500],
        )
        for p in problems
    ]


def check_import(batch: Import, progress: Callable[[int], None] | None = None) -> Import:
    """Pass 1: count new, changed, unchanged and invalid rows; store every problem.

    The valid rows are kept in the import's spool for :func:`write_import`.
    """
    table = open_table(Path(batch.file_path), batch.file_name)
    rows = _Rows(batch, table)
    remove_stale_spools(batch.site)
    remove_stale_uploads(batch.site)
    batch.problems.all().delete()
    batch.file_format, batch.delimiter = table.file_format, table.delimiter
    batch.unknown_columns = rows.unknown
    batch.status = ImportStatus.CHECKING
    batch.host, batch.pid = socket.gethostname(), os.getpid()
    batch.heartbeat_at = timezone.now()
    batch.rows = batch.new = batch.changed = batch.unchanged = batch.invalid = 0
    batch.save()
    pending, stored, seen = [], 0, set()

    def count(checked: _Checked, uids: list[str]) -> None:
        """Count the chunk's valid rows as new, changed or unchanged."""
        existing = cases.classify(batch.site, uids)
        if existing:
            for _o, _n, uid, status, _key, text, _columns in checked.valid:
                case = existing.get(uid)
                if case is None:
                    batch.new += 1
                elif case.status == status and case.data == orjson.loads(text):
                    batch.unchanged += 1
                else:
                    batch.changed += 1
        else:
            batch.new += len(uids)

    processes = check_processes(Path(batch.file_path))
    with _fewer_collections(), _Spool(batch).writer(rows.labels) as spool:
        for checked in rows.chunks(processes):
            uids, dropped = [], set()
            for ordinal, number, uid, ok, problems in checked.results:
                batch.rows += 1
                if ok and uid in seen:
                    problems = [
                        Problem(
                            "case_uid",
                            "duplicate_row",
                            f"Case {uid} appears more than once in the file; keep one row",
                        )
                    ]
                    ok = False
                    dropped.add(ordinal)
                if not ok:
                    batch.invalid += 1
                    if stored < MAX_PROBLEMS_STORED:
                        pending += _save_problems(batch, number, uid, problems)
                        stored += len(problems)
                else:
                    seen.add(uid)
                    uids.append(uid)
                if progress is not None and batch.rows % 500 == 0:
                    progress(batch.rows)
            if dropped:
                checked.drop(dropped)
            if uids:
                count(checked, uids)
                spool(checked)
            if len(pending) >= BATCH_SIZE:
                ImportProblem.objects.bulk_create(pending)
                pending = []
    ImportProblem.objects.bulk_create(pending)
    batch.status = ImportStatus.CHECKED
    batch.save()
    return batch


def _reread(batch: Import) -> Iterator[tuple[int, cases.BulkRow]]:
    """(ordinal, BulkRow) of every valid row, read and checked from the file again."""
    rows = _Rows(batch, open_table(Path(batch.file_path), batch.file_name))

    def valid():
        seen: set[str] = set()
        for checked in rows.chunks():
            for ordinal, number, uid, status, key, text, columns in checked.valid:
                if uid not in seen:
                    seen.add(uid)
                    yield ordinal, cases.BulkRow(number, uid, None, status, key, text, columns)

    return valid()


def write_import(
    batch: Import, progress: Callable[[int], None] | None = None, actor=None
) -> Import:
    """Pass 2: write the valid rows in batches; all-or-nothing writes none if any is invalid."""
    spool = _Spool(batch)
    if batch.mode == ImportMode.ALL_OR_NOTHING and batch.invalid:
        spool.remove()
        batch.status = ImportStatus.REFUSED
        batch.message = (
            f"{batch.invalid} invalid row{'s' if batch.invalid != 1 else ''}: "
            "nothing was written (fix them, or import the valid rows only)"
        )
        batch.finished_at = timezone.now()
        batch.save()
        remove_upload(batch)
        return batch
    valid_rows = spool.rows()
    if valid_rows is None:
        if not Path(batch.file_path).exists():
            # A preview left unconfirmed past a day: its file was removed.
            batch.status = ImportStatus.FAILED
            batch.message = "The file was removed after a day unconfirmed; upload it again"
            batch.finished_at = timezone.now()
            batch.save()
            return batch
        valid_rows = _reread(batch)
    batch.status = ImportStatus.IMPORTING
    batch.written = batch.batches_committed = batch.rows_done = 0
    batch.heartbeat_at = timezone.now()
    batch.save()
    actor = actor or batch.created_by
    site, note = batch.site, f"import {batch.code}"

    statistics = _Statistics()

    def write(rows: list, done: int) -> None:
        """One batch and the import's counters, in one transaction."""
        with transaction.atomic():
            result = cases.save_cases_bulk(site, rows, actor=actor, note=note)
            Import.objects.filter(pk=batch.pk).update(
                written=F("written") + result.new + result.changed,
                batches_committed=F("batches_committed") + 1,
                rows_done=Greatest(F("rows_done"), done),
                heartbeat_at=timezone.now(),
            )
            if result.refused:
                ImportProblem.objects.bulk_create(
                    [
                        problem
                        for number, uid, p in result.refused
                        for problem in _save_problems(batch, number, uid, [p])
                    ]
                )
        statistics.written(len(rows))

    def batches() -> Iterator[tuple[list, int]]:
        pending: list = []
        sent = 0
        for ordinal, bulk_row in valid_rows:
            pending.append(bulk_row)
            if len(pending) >= BATCH_SIZE:
                yield pending, ordinal
                pending, sent = [], sent + 1
        if pending or not sent:
            yield pending, batch.rows

    with _fewer_collections():
        if write_connections() > 1:
            _write_in_threads(batches(), write, progress, write_connections())
        else:
            for rows, done in batches():
                write(rows, done)
                if progress is not None:
                    progress(done)
    batch.refresh_from_db(fields=["written", "batches_committed", "rows_done", "heartbeat_at"])
    spool.remove()
    remove_upload(batch)
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


class _Statistics:
    """Bring the database's statistics of the case tables up to date as an import grows them.

    The database plans the queries of each batch (finding the existing cases
    of its rows, joining the cases with the versions just copied) from
    statistics that its background analysis refreshes only now and then.
    An import that grows the tables many times over would meanwhile be
    planned for the small tables they were: scanning them whole, once a
    batch, which made a 100,000-row import spend most of its time there
    (1 ms a batch at first, 200 ms at the end). So the tables are analysed
    when this import's rows reach 1,000, 4,000, 16,000... (PostgreSQL).
    """

    FIRST, GROWTH = 1000, 4

    def __init__(self):
        self.rows = 0
        self.next = self.FIRST
        self.lock = threading.Lock()
        self.enabled = connection.vendor == "postgresql"

    def written(self, rows: int) -> None:
        if not self.enabled:
            return
        with self.lock:
            self.rows += rows
            if self.rows < self.next:
                return
            while self.next <= self.rows:
                self.next *= self.GROWTH
            cases.analyse_tables()


def write_connections() -> int:
    """How many batches are written at once, each on its own database connection.

    Two on PostgreSQL, whose work on a batch (parsing and compressing the
    JSON, the indexes) is then spread over two server processes while this
    one prepares the next batch; one on SQLite, which writes one transaction
    at a time anyway, and one inside a caller's transaction (a test's), which
    other connections could not see.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return WRITE_CONNECTIONS


def _write_in_threads(batches, write, progress, threads: int) -> None:
    """Hand batches to ``threads`` threads that each write with ``write``, on their own
    connection; stop at the first error and raise it. Batches may commit out of order,
    each whole with its counters, so a crash still leaves only whole batches."""
    waiting: Queue = Queue(maxsize=threads)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while (item := waiting.get()) is not None:
                if not errors:
                    try:
                        write(*item)
                    except BaseException as exc:  # noqa: BLE001 - raised again below
                        errors.append(exc)
        finally:
            connection.close()  # this thread's own

    workers = [Thread(target=work, name=f"import-writer-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    try:
        for item in batches:
            if errors:
                break
            waiting.put(item)
            if progress is not None:
                progress(item[1])
    finally:
        for _worker in workers:
            waiting.put(None)
        for worker in workers:
            worker.join()
    if errors:
        raise errors[0]


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


def mark_interrupted(stale_after_seconds: int = 600, starting: bool = False) -> int:
    """Mark imports whose process is gone as interrupted; return how many.

    On this machine a dead process tells; elsewhere an import whose last
    batch is older than ``stale_after_seconds`` counts as stopped. A process
    that is ``starting`` runs no import yet, so one recorded with its own
    process id is a dead predecessor's (in a container, a restarted worker
    often gets the same id).
    """
    host = socket.gethostname()
    limit = timezone.now() - timedelta(seconds=stale_after_seconds)
    stopped = []
    running = Import.objects.filter(status__in=[ImportStatus.IMPORTING, ImportStatus.CHECKING])
    for batch in running:
        dead_here = batch.host == host and (
            not _alive(batch.pid) or (starting and batch.pid == os.getpid())
        )
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
