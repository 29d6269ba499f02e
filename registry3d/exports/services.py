"""Exports of case data: who may ask for what, and the job that writes the files.

Every export is asked for through :func:`request_research_export` or
:func:`request_site_export` (pages and the command line alike), which check
the right to it, record the request in the audit trail with its filters and
queue the job; refusals are audited too. :func:`write_export` writes the
files of an export into a folder, streaming the cases, and returns its
manifest; :func:`run_export` is the job around it, which packs the folder
into one ZIP.
"""

import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest
from django.utils import timezone

from registry3d import __version__
from registry3d.audit.services import record
from registry3d.cases.models import Case, CaseStatus
from registry3d.dictionary import flat, registry
from registry3d.dictionary.spec import Dictionary
from registry3d.exports import tables as t
from registry3d.exports import writers
from registry3d.exports.errors import ExportRefused, InvalidOptions
from registry3d.exports.models import (
    Export,
    ExportCase,
    ExportFormat,
    ExportKind,
    ExportSiteLabel,
    ExportStatus,
)
from registry3d.lib.sql import quoted
from registry3d.lib.withhold import withheld
from registry3d.sites.models import Site, SiteRole
from registry3d.sites.services import get_site_for_user

PROGRESS_EVERY = 1000
LABEL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


@dataclass
class ResearchOptions:
    """What a research export holds; the defaults follow HIPAA Safe Harbor."""

    elements: list[str] | None = None  # top-level elements and groups; None: all
    from_year: int | None = None
    to_year: int | None = None
    organ_system: str = ""
    object_type: str = ""
    sites: list[str] = field(default_factory=list)  # site codes; empty: every site
    free_text: bool = False  # comments, each value screened (administrators)
    site_labels: bool = False  # stable random labels instead of site codes
    months: bool = False  # year and month instead of the year (administrators)
    identifiers: bool = False  # the site's case ID and patient key (administrators)

    # Options that leave Safe Harbor and make the export identifiable (a
    # limited data set): only registry administrators may ask. Free text is
    # among them, as no screen can promise a comment names nobody.
    IDENTIFIABLE = ("months", "identifiers", "free_text")
    WORDS = {
        "months": "dates with the month",
        "identifiers": "case IDs and patient keys",
        "free_text": "free text",
    }

    def rules(self) -> t.Rules:
        return t.Rules(
            year_only=not self.months,
            free_text="screen" if self.free_text else "drop",
            identifiers=self.identifiers,
            site_labels=self.site_labels,
        )

    def identifiable(self) -> list[str]:
        return [name for name in self.IDENTIFIABLE if getattr(self, name)]

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "ResearchOptions":
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})

    def check(self, dictionary: Dictionary) -> None:
        """Refuse elements, values and sites that do not exist, naming each."""
        problems = []
        for name in self.elements or []:
            if name not in dictionary.elements:
                problems.append(
                    f"elements: {name!r} is not an element of dictionary "
                    f"{dictionary.version}; see /dictionary/"
                )
        for name, value_set in (("organ_system", "organ_system"), ("object_type", "object_type")):
            value = getattr(self, name)
            codes = {c.code for c in dictionary.value_sets[value_set].codes}
            if value and value not in codes:
                problems.append(f"{name}: {value!r} is not one of {', '.join(sorted(codes))}")
        for name in ("from_year", "to_year"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and 1990 <= value <= 2100):
                problems.append(f"{name}: expected a year from 1990 to 2100, got {value!r}")
        if self.from_year and self.to_year and self.from_year > self.to_year:
            problems.append("from_year: the first year comes after the last")
        known = set(Site.objects.filter(code__in=self.sites).values_list("code", flat=True))
        for code in self.sites:
            if code not in known:
                problems.append(f"sites: {code!r} is not a site of this registry")
        if problems:
            raise InvalidOptions(problems)


# --- Asking for an export ---------------------------------------------------------------


NOT_STAFF = "Only registry analysts and administrators export research data"


def note_refusal(user, request, why: str, **details) -> None:
    """Record in the audit trail that an export was refused, and why."""
    record(
        "export.refused",
        actor=user if user is not None and user.is_authenticated else None,
        request=request,
        changes={"reason": why, **details},
    )


def _refuse(user, request, why: str, **details) -> None:
    note_refusal(user, request, why, **details)
    raise ExportRefused(why)


def request_research_export(
    user,
    options: ResearchOptions,
    fmt: str = ExportFormat.CSV,
    *,
    request: HttpRequest | None = None,
    enqueue: bool = True,
) -> Export:
    """Queue a research export of every site's submitted cases (analysts and admins).

    ``user`` None is the command line, run by whoever runs the server.
    Options that leave Safe Harbor (months, identifiers, free text) make an
    identifiable export and need a registry administrator; anything refused
    is recorded as ``export.refused``.
    """
    if fmt not in (ExportFormat.CSV, ExportFormat.PARQUET):
        raise InvalidOptions([f"format: a research export is csv or parquet, not {fmt!r}"])
    if user is not None and not user.is_registry_staff:
        _refuse(user, request, NOT_STAFF, kind="research")
    identifiable = options.identifiable()
    if identifiable and user is not None and not user.is_registry_admin:
        _refuse(
            user,
            request,
            "Only registry administrators may export "
            + " or ".join(options.WORDS[n] for n in identifiable)
            + ": it leaves HIPAA Safe Harbor (an identifiable export)",
            kind="research",
            options=options.as_json(),
        )
    options.check(registry.current().dictionary)
    export = Export.objects.create(
        kind=ExportKind.RESEARCH,
        format=fmt,
        options=options.as_json(),
        identifiable=bool(identifiable),
        requested_by=user if user is not None and user.pk else None,
    )
    record(
        "export.requested",
        actor=user,
        request=request,
        target=export,
        changes={
            "kind": export.kind,
            "identifiable": export.identifiable,
            "format": fmt,
            "options": export.options,
        },
    )
    if enqueue:
        _enqueue(export)
    return export


def site_for_export(user, code: str, request: HttpRequest | None = None) -> Site:
    """The site whose own cases ``user`` may export: its managers (and admins).

    Another site's user gets a 404 and a member without the manager's role a
    403, as on every site page; a refused request for an export (a POST, or
    the command line) is recorded in the audit trail.
    """
    try:
        return get_site_for_user(user, code, SiteRole.MANAGER)
    except (Http404, PermissionDenied):
        if request is None or request.method == "POST":
            note_refusal(user, request, "not a manager of the site", kind="site", site=code)
        raise


def request_site_export(
    user,
    site: Site,
    fmt: str,
    *,
    request: HttpRequest | None = None,
    enqueue: bool = True,
) -> Export:
    """Queue an export of the site's own cases, as stored.

    ``site`` comes from :func:`site_for_export`, which checks the right to it.
    """
    if fmt not in ExportFormat.values:
        raise InvalidOptions([f"format: expected one of {', '.join(ExportFormat.values)}"])
    export = Export.objects.create(
        kind=ExportKind.SITE,
        site=site,
        format=fmt,
        requested_by=user if user is not None and user.pk else None,
    )
    record(
        "export.requested",
        actor=user,
        request=request,
        site=site,
        target=export,
        changes={"kind": export.kind, "format": fmt, "site": site.code},
    )
    if enqueue:
        _enqueue(export)
    return export


def _enqueue(export: Export) -> None:
    from registry3d.exports import tasks

    tasks.run_export.enqueue(export_id=export.pk)


def research_exports_for(user):
    """The research exports ``user`` may list: identifiable ones for admins alone."""
    if not user.is_registry_staff:
        return Export.objects.none()
    exports = Export.objects.filter(kind=ExportKind.RESEARCH)
    if not user.is_registry_admin:
        exports = exports.filter(identifiable=False)
    return exports


def get_export_for_user(user, code) -> Export:
    """The export if ``user`` may see and download it, else a 404.

    De-identified research exports: registry analysts and admins;
    identifiable ones: admins alone. Site exports: the site's managers (and
    admins).
    """
    export = Export.objects.select_related("site").filter(code=code).first()
    if export is None:
        raise Http404("No such export")
    if export.kind == ExportKind.RESEARCH:
        if not research_exports_for(user).filter(pk=export.pk).exists():
            raise Http404("No such export")
        return export
    try:
        get_site_for_user(user, export.site.code, SiteRole.MANAGER)
    except PermissionDenied:
        raise Http404("No such export") from None
    return export


def note_download(user, export: Export, request: HttpRequest | None = None) -> None:
    record(
        "export.downloaded",
        actor=user,
        request=request,
        site=export.site,
        target=export,
        changes={"kind": export.kind, "sha256": export.manifest.get("zip_sha256", "")},
    )


# --- Writing -----------------------------------------------------------------------------


def site_label(site: Site) -> str:
    """The site's stable random label for research exports, made at its first use."""
    existing = ExportSiteLabel.objects.filter(site=site).values_list("label", flat=True).first()
    if existing:
        return existing
    while True:
        label = "SITE-" + "".join(secrets.choice(LABEL_ALPHABET) for _ in range(6))
        if not ExportSiteLabel.objects.filter(label=label).exists():
            break
    return ExportSiteLabel.objects.get_or_create(site=site, defaults={"label": label})[0].label


def _sites(labels: bool) -> dict[int, dict]:
    return {
        s.pk: {
            "code": s.code,
            "label": site_label(s) if labels else "",
            "region": s.region,
            "facility_type": s.facility_type,
        }
        for s in Site.objects.all()
    }


def research_cases(options: ResearchOptions):
    """The submitted cases a research export holds, oldest first."""
    cases = Case.objects.filter(status=CaseStatus.SUBMITTED).order_by("pk")
    if options.from_year:
        cases = cases.filter(case_month__gte=f"{options.from_year:04d}-01")
    if options.to_year:
        cases = cases.filter(case_month__lte=f"{options.to_year:04d}-12")
    if options.organ_system:
        cases = cases.filter(organ_system=options.organ_system)
    if options.object_type:
        cases = cases.filter(object_type=options.object_type)
    if options.sites:
        cases = cases.filter(site__code__in=options.sites)
    return cases


def _stream(cases) -> Iterator[Case]:
    fields = (
        "code",
        "site_id",
        "case_uid",
        "patient_key",
        "status",
        "dictionary_version",
        "data",
        "withdrawn_reason",
    )
    return cases.only(*fields).iterator(chunk_size=2000)


def group_sizes(cases, dictionary: Dictionary) -> dict[str, int]:
    """The most items any of ``cases`` holds in each repeating group (0 when none)."""
    table = quoted(Case._meta.db_table)
    sql, params = cases.order_by().values("pk").query.sql_with_params()
    sizes = {}
    for group in dictionary.groups():
        if connection.vendor == "postgresql":
            length = (
                "jsonb_array_length(CASE WHEN jsonb_typeof(data->%s) = 'array' "
                "THEN data->%s ELSE '[]'::jsonb END)"
            )
            args = [group.name, group.name]
        else:
            length = "json_array_length(data, %s)"
            args = [f"$.{group.name}"]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT MAX({length}) FROM {table} WHERE id IN ({sql})", [*args, *params]
            )
            sizes[group.name] = int(cursor.fetchone()[0] or 0)
    return sizes


def _screened_read(name: str, stats: t.Stats, token: bool = False):
    """Read column ``name`` of a wide row, withholding what looks like an identifier."""

    def read(row):
        value = row.get(name)
        shown = withheld(value, token=token)
        if shown is not value:
            stats.withheld_text += 1
        return shown

    return read


def wide_table(dictionary: Dictionary, sizes: dict[str, int], stats: t.Stats) -> t.Table:
    """The site's cases as one row each, in the import template's columns."""
    reader = flat.FlatReader(dictionary)
    columns = []
    for name in flat.columns(dictionary, sizes):
        plan = reader._column(name)
        element = plan[1] if plan[0] == "top" else plan[3] if plan[0] == "item" else None
        kind = t._kind(element, t.SITE_RULES) if element is not None else "text"
        if element is not None and element.screened:
            read = _screened_read(name, stats, element.token)
        else:
            read = lambda r, name=name: r.get(name)  # noqa: E731
        columns.append(t.Column(name, name, kind, read))
    return t.Table("cases", "Cases", columns)


def _wide_row(case: Case) -> dict:
    row = {
        "case_uid": case.case_uid,
        "patient_key": case.patient_key,
        "status": case.status,
        "withdrawn_reason": case.withdrawn_reason,
    }
    for name, value in (case.data or {}).items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for number, item in enumerate(value, start=1):
                for key, item_value in item.items():
                    row[flat.item_column(name, number, key)] = item_value
        else:
            row[name] = value
    return row


DICTIONARY_FIELDS = ["table", "column", "label", "type", "unit", "codes", "element", "note"]


def _dictionary_rows(
    export: Export, table_list: list[t.Table], described: list[str], stats: t.Stats
) -> list[dict]:
    """The export's title, every exported column, then what the rules left out."""
    blank = dict.fromkeys(DICTIONARY_FIELDS, "")
    rows = [
        {
            **blank,
            "table": "export",
            "column": "title",
            "label": export.title,
            "note": " ".join(described),
        }
    ]
    for table in table_list:
        for column in table.columns:
            rows.append(
                {
                    "table": table.name,
                    "column": column.name,
                    "label": column.label,
                    "type": column.kind,
                    "unit": column.unit,
                    "codes": column.codes,
                    "element": column.element,
                    "note": column.note,
                }
            )
    for path, label, why in stats.left_out:
        rows.append(
            {
                **blank,
                "table": "left_out",
                "column": path,
                "label": label,
                "element": path,
                "note": why,
            }
        )
    return rows


def _write_dictionary(path: Path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, DICTIONARY_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: writers.neutralised(str(v)) for k, v in row.items()})


def write_export(
    export: Export, out_dir: Path, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Write the export's files into ``out_dir`` (created); return the manifest.

    Steps:
    1. Choose the cases and the tables (by kind and options).
    2. Stream the cases once, each into its rows of every table, with a
       writer per table (a sheet per table in XLSX).
    3. Write the dictionary of the exported columns, then the manifest with
       the row count, size and SHA-256 of every file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    dictionary = registry.current().dictionary
    if export.format == ExportFormat.FHIR:
        return _write_fhir(export, out_dir, dictionary, progress)
    if export.format == ExportFormat.REDCAP:
        return _write_redcap(export, out_dir, dictionary, progress)
    if export.kind == ExportKind.RESEARCH:
        options = ResearchOptions.from_json(export.options)
        rules = options.rules()
        cases = research_cases(options)
        table_list, stats = t.tables(dictionary, rules, options.elements)
        wide = False
        held = _HeldCases(export) if export.identifiable else None
    else:
        rules = t.SITE_RULES
        held = None  # a site's own cases: not a disclosure
        cases = Case.objects.filter(site=export.site).order_by("pk")
        wide = export.format in (ExportFormat.CSV, ExportFormat.XLSX)
        if wide:
            # Withdrawn cases apart: the cases file imports again as it is,
            # and an import takes no withdrawn case.
            stats = t.Stats()
            cases_table = wide_table(dictionary, group_sizes(cases, dictionary), stats)
            withdrawn = t.Table(
                "withdrawn",
                "Withdrawn cases",
                [
                    *cases_table.columns,
                    t.Column(
                        "withdrawn_reason",
                        "Why it was withdrawn",
                        "text",
                        _screened_read("withdrawn_reason", stats),
                    ),
                ],
            )
            table_list = [cases_table, withdrawn]
        else:
            table_list, stats = t.tables(dictionary, rules)
    total = cases.count()
    sites = _sites(rules.site_labels)
    book = None
    if export.format == ExportFormat.XLSX:
        book = writers.XlsxBook(out_dir / "cases.xlsx")
        open_table = {table.name: book.sheet(table) for table in table_list}
    else:
        writer_class = (
            writers.ParquetWriter if export.format == ExportFormat.PARQUET else writers.CsvWriter
        )
        open_table = {
            table.name: writer_class(out_dir / f"{table.name}.{export.format}", table)
            for table in table_list
        }
    by_name = {table.name: table for table in table_list}
    done = 0
    try:
        for case in _stream(cases):
            if wide:
                table = by_name["withdrawn" if case.status == CaseStatus.WITHDRAWN else "cases"]
                row = _wide_row(case)
                open_table[table.name].write([column.read(row) for column in table.columns])
            else:
                site = sites[case.site_id]
                for name, values in t.case_rows(case, site, table_list, dictionary, rules):
                    open_table[name].write(values)
                if held is not None:
                    held.add(case.pk)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
    finally:
        for handle in open_table.values():
            handle.close()
        if book is not None:
            book.close()
    if held is not None:
        held.flush()
    if progress is not None:
        progress(done, total)
    rows: dict[str, object] = {}
    if book is not None:
        rows["cases.xlsx"] = {name: sheet.rows for name, sheet in open_table.items()}
    else:
        rows.update({f"{name}.{export.format}": w.rows for name, w in open_table.items()})
    if wide:
        described = [
            "The site's own cases as stored, one row per case in the columns of the import "
            "template, so the file can be edited and imported again; withdrawn cases are apart "
            "(withdrawn.csv, or their own sheet), since an import takes none.",
            f"Text values that look like a patient identifier are replaced by {t.WITHHELD}; "
            "redact them in the case (registry3d case redact).",
            "Text a spreadsheet could run as a formula starts with ' in CSV (an import removes "
            "it) and is stored as text in XLSX.",
        ]
    else:
        described = rules.described()
    dictionary_rows = _dictionary_rows(export, table_list, described, stats)
    _write_dictionary(out_dir / "dictionary.csv", dictionary_rows)
    rows["dictionary.csv"] = len(dictionary_rows)
    return _manifest(
        export,
        out_dir,
        dictionary,
        described,
        done,
        rows,
        withheld=stats.withheld_text,
        left_out=stats.left_out,
    )


class _HeldCases:
    """The cases an identifiable export holds, written as ExportCase rows in bulk.

    A job that runs again starts over, so each case is held once.
    """

    BATCH = 2000

    def __init__(self, export: Export):
        self.export = export
        self.batch: list[int] = []
        ExportCase.objects.filter(export=export).delete()

    def add(self, case_id: int) -> None:
        self.batch.append(case_id)
        if len(self.batch) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        ExportCase.objects.bulk_create(
            [ExportCase(export=self.export, case_id=pk) for pk in self.batch]
        )
        self.batch = []


class _Counted:
    """The site's cases one at a time, counted for the progress bar."""

    def __init__(self, site: Site, progress):
        self.cases = Case.objects.filter(site=site).order_by("pk")
        self.total = self.cases.count()
        self.done = 0
        self.progress = progress

    def __iter__(self):
        for case in self.cases.iterator(chunk_size=2000):
            yield case
            self.done += 1
            if self.progress is not None and self.done % PROGRESS_EVERY == 0:
                self.progress(self.done, self.total)
        if self.progress is not None:
            self.progress(self.done, self.total)


def _write_fhir(export: Export, out_dir: Path, dictionary: Dictionary, progress) -> dict:
    """The site's cases as FHIR NDJSON, one file per resource type, with the Questionnaires."""
    from registry3d.fhir import bulk, questionnaire

    cases = _Counted(export.site, progress)
    rows = bulk.write_ndjson(cases, out_dir)
    for name in (questionnaire.CASE_QUESTIONNAIRE, questionnaire.PHYSICIAN_QUESTIONNAIRE):
        path = out_dir / f"Questionnaire-{name}.json"
        path.write_text(json.dumps(questionnaire.build(dictionary, name), indent=2) + "\n")
        rows[path.name] = 1
    rules = [
        "The site's own cases as stored, as FHIR R4B (4.3.0) resources: one NDJSON file per "
        "resource type (FHIR Bulk Data style), with the Questionnaires their answers follow."
    ]
    return _manifest(export, out_dir, dictionary, rules, cases.done, rows, withheld=0)


def _write_redcap(export: Export, out_dir: Path, dictionary: Dictionary, progress) -> dict:
    """The site's cases as a REDCap project: its data dictionary and its flat records."""
    from registry3d.redcap import records

    with open(out_dir / "data-dictionary.csv", "w", newline="", encoding="utf-8") as out:
        records.write_dictionary_csv(dictionary, out)
    cases = _Counted(export.site, progress)
    with open(out_dir / "records.csv", "w", newline="", encoding="utf-8") as out:
        written = records.write_records_csv(cases, out, dictionary)
    rules = [
        "The site's cases in REDCap's flat format, for REDCap's Data Import Tool, with the "
        "data dictionary to create the project from (its repeating groups are repeating "
        "instruments). Withdrawn cases and patient keys are left out.",
    ]
    rows = {name: _csv_rows(out_dir / name) for name in ("data-dictionary.csv", "records.csv")}
    return _manifest(export, out_dir, dictionary, rules, written, rows, withheld=0)


def _csv_rows(path: Path) -> int:
    """Rows of a CSV file below its header (quoted line breaks count once)."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def _shown_options(options: dict) -> dict:
    """The options as the manifest shows them: with site labels asked, no site's code."""
    if not options.get("site_labels") or not options.get("sites"):
        return options
    chosen = Site.objects.filter(code__in=options["sites"]).order_by("code")
    return {**options, "sites": sorted(site_label(s) for s in chosen)}


def _manifest(export, out_dir, dictionary, rules, cases, rows, *, withheld, left_out=()) -> dict:
    """Describe every file of ``out_dir`` (rows, bytes, SHA-256) and write manifest.json."""
    files = []
    for path in sorted(out_dir.iterdir()):
        if path.name == "manifest.json":
            continue
        files.append(
            {
                "name": path.name,
                "rows": rows.get(path.name),
                "bytes": path.stat().st_size,
                "sha256": writers.sha256_of(path),
            }
        )
    manifest = {
        "registry": "registry3d",
        "registry_version": __version__,
        "export": str(export.code),
        "title": export.title,
        "kind": export.kind,
        "identifiable": export.identifiable,
        "format": export.format,
        "site": export.site.code if export.site_id else None,
        "created_at": timezone.now().isoformat(),
        "requested_by": export.requested_by.email if export.requested_by else "command line",
        "dictionary_version": dictionary.version,
        "options": _shown_options(export.options),
        "rules": rules,
        "cases": cases,
        "withheld_free_text": withheld,
        "left_out": [
            {"element": path, "label": label, "why": why} for path, label, why in left_out
        ],
        "files": files,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def exports_folder() -> Path:
    return Path(settings.VAR_DIR) / "exports"


def run_export(export: Export) -> Export:
    """Write the export's files and pack them into one ZIP; safe to run again.

    A finished export is left alone. One that was interrupted starts over in
    a fresh folder; the ZIP appears under its final name only when whole.
    """
    if export.status == ExportStatus.DONE:
        return export
    folder = exports_folder()
    folder.mkdir(parents=True, exist_ok=True)
    Export.objects.filter(pk=export.pk).update(
        status=ExportStatus.RUNNING, started_at=timezone.now(), message=""
    )
    work = Path(tempfile.mkdtemp(prefix=f"export-{export.code}-", dir=folder))

    def progress(done: int, total: int) -> None:
        Export.objects.filter(pk=export.pk).update(cases_done=done, cases_total=total)

    try:
        manifest = write_export(export, work / "files", progress)
        target = folder / f"{export.code}.zip"
        partial = work / "export.zip"
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((work / "files").iterdir()):
                archive.write(path, path.name)
        os.replace(partial, target)
        manifest["zip_sha256"] = writers.sha256_of(target)
    except Exception as exc:
        Export.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, message=str(exc)[:500], finished_at=timezone.now()
        )
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Export.objects.filter(pk=export.pk).update(
        status=ExportStatus.DONE,
        manifest=manifest,
        file_path=str(target),
        file_size=target.stat().st_size,
        cases_done=manifest["cases"],
        cases_total=manifest["cases"],
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    return export
