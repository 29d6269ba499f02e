"""Identifiers stored past the entry screen never leave the registry (#15).

An identifier can be in the database although the entry screen refuses it
today: typed before the screen was better, or missed by it. This test plants
such values and follows them to every output.

1. A new registry (a subprocess, as an administrator runs it) with its entry
   screen turned off (``find_identifier`` of the dictionary's validator and
   of the case service returns None; the one exports use stays on) saves
   submitted cases at two sites through ``cases.services.save_case``. Each
   case holds one planted string in every text element of the dictionary in
   force (top level and in every item of every group); one case is withdrawn
   with a planted reason, and one case's physician answers the questionnaire
   with a planted comment.
2. Every output is made through the command line: research exports (CSV and
   Parquet, Safe Harbor; CSV and Parquet with free text, months and
   identifiers), each site's export in every format (CSV, XLSX, Parquet,
   FHIR, REDCap), the reports snapshot (``report --national``), a backup and
   an audit-trail dump (``manage dumpdata audit``); and, as the API answers
   them, every case's FHIR Bundle and each site's REDCap records and log.
3. Every file is searched for every planted string (case-insensitively, and
   as its digits alone when it has seven or more): CSV cell by cell, JSON
   decoded, XLSX by its XML, Parquet as Python values, the backup member by
   member, its database restored into a new registry and read table by
   table. The rule: a planted string is only in the cases' own rows (cases,
   their versions, the physician's stored answers).
4. Every planted value is redacted (``registry3d case redact``), and the
   snapshot, exports and a backup are made again: no planted string is
   anywhere, in the new outputs, in the database's tables or in the var
   folder. Export folders written before the redaction are not searched
   again: they are files an administrator deletes (see the README).

Which strings: from ``tests/corpora/identifiers/corpus.csv`` (up to three per
kind) when it exists, else the list below. A string the identifier screen in
force does not flag cannot be withheld from an output without dropping all
text; the screen's recall is measured on the corpus by its own test. So the
outputs are checked for the strings the screen flags (with the corpus, every
kind must have one), and after redaction for every planted string.
"""

import csv
import html
import io
import json
import re
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
from contextlib import closing
from pathlib import Path

import pytest

from registry3d.lib.identifiers import find_identifier

CORPUS = Path(__file__).resolve().parents[1] / "corpora" / "identifiers" / "corpus.csv"
BUILT_IN = [
    ("name", "Patient John Smith"),
    ("name", "Mimics run by John Smith"),
    ("name", "Smith, John"),
    ("date", "DOB 1950-03-03"),
    ("date", "04/05/1961"),
    ("date", "born 3 March 1950"),
    ("date", "March 3, 1950"),
    ("date", "born 3rd March 1950"),
    ("ssn", "SSN 219-09-9999"),
    ("ssn", "SSN 078 05 1120"),
    ("phone", "call (617) 555-0100"),
    ("phone", "312.555.0199"),
    ("address", "12 Elm Street, Springfield MA 01103"),
    ("zip", "Springfield MA 01103"),
    ("email", "john.smith@example.org"),
    ("url", "https://portal.example.org/patients/jsmith"),
    ("ip", "scanned from 10.20.30.40"),
    ("mrn", "MRN 24681357"),
    ("mrn", "chart 7654321"),
    ("mrn", "account 99887766"),
    ("serial", "device serial SN 55512349876"),
]
MAX_LENGTH = 100  # the shortest max_length of the dictionary's text elements
SITES = ("LEAKA", "LEAKB")
MONTH = "2025-06"
REASON = "typed by mistake at entry"
# The cases' own rows: where a planted value may be until it is redacted.
OWN_TABLES = {"cases_case", "cases_caseversion", "questionnaires_questionnaireresponse"}


def _digits(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return digits if len(digits) >= 7 else ""


def _apart(text: str, chosen: list[str]) -> bool:
    """Whether ``text``'s digits are not inside another string's, nor theirs in its.

    A flagged string's digits inside an unflagged one's would be found in the
    outputs that rightly hold the unflagged one.
    """
    mine = _digits(text)
    return not mine or not any(
        theirs and (mine in theirs or theirs in mine) for theirs in map(_digits, chosen)
    )


def planted() -> list[tuple[str, str]]:
    """(kind, text) of every string to plant: corpus rows, else the built-in list."""
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8", newline="") as handle:
            rows = [
                (r["kind"], r["text"])
                for r in csv.DictReader(handle)
                if r["kind"] != "benign" and r["text"] and len(r["text"]) <= MAX_LENGTH
            ]
        chosen: dict[str, list[str]] = {}
        every: list[str] = []
        for kind, text in rows:
            picked = chosen.setdefault(kind, [])
            if len(picked) < 3 and find_identifier(text) and _apart(text, every):
                picked.append(text)
                every.append(text)
        # Kinds the screen flags nothing of still get one string, for redaction.
        for kind, text in rows:
            if not chosen[kind] and _apart(text, every):
                chosen[kind].append(text)
                every.append(text)
        return [(kind, text) for kind, texts in chosen.items() for text in texts]
    return BUILT_IN


PLANTED = planted()
FLAGGED = [(kind, text) for kind, text in PLANTED if find_identifier(text)]


# --- The registry ---------------------------------------------------------------------------


PLANT = """
import json
from registry3d.cases import services as cases
from registry3d.dictionary import registry, validation
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.pseudonym import patient_key
from registry3d.questionnaires import services as questionnaires
from registry3d.sites import services as sites
import random

# The entry screen of an older registry: it lets every planted string in.
validation.find_identifier = lambda text: None
cases.find_identifier = lambda text: None

planted = json.loads(PLANTED_JSON)
dictionary = registry.current().dictionary
owner = sites.add_user("owner@leaks.example.org", "correct-horse-battery-9")
labels_by_site = {}
for number, code in enumerate(SITES):
    site = sites.add_site(code, f"Leak Hospital {number}", region="Ohio", facility_type="academic")
    sites.set_membership(site, owner, "manager")
    labels = {}
    for technology in dictionary.value_sets["print_technology"].active_codes():
        labels[technology] = f"P{number}-{technology[:10]}"
        sites.add_printer(site, label=labels[technology], manufacturer="M", model="X",
                          technology=technology)
    labels_by_site[code] = (site, labels)

top = [e for e in dictionary.elements.values() if e.type == "text" and not e.pattern]
groups = {
    g.name: [e for e in g.elements if e.type == "text" and not e.pattern]
    for g in dictionary.groups()
}
values = dictionary.all_elements


def chosen_other(holder, name):
    # Choose 'other' in the value set an '<element>_other' text goes with.
    base = name.removesuffix("_other")
    element = next((e for p, e in values.items() if p.split(".")[-1] == base), None)
    if base != name and element is not None and element.value_set is not None:
        holder[base] = "other"


questionnaire = {e.name for s in dictionary.questionnaire_sections() for e in s.elements}
saved = []
for number, (kind, text) in enumerate(planted):
    for code in SITES:
        site, labels = labels_by_site[code]
        rng = random.Random(number)
        while True:  # a case with an item in every group that has text
            data = synthetic_case(dictionary, rng, printer_labels=labels,
                                  year_months=[MONTH], with_questionnaire=True)
            if all(data.get(group) for group, elements in groups.items() if elements):
                break
        paths = []
        for element in top:
            data[element.name] = text
            paths.append(element.name)
            chosen_other(data, element.name)
        for group, elements in groups.items():
            if not elements:
                continue
            for item_number, item in enumerate(data[group], start=1):
                for element in elements:
                    item[element.name] = text
                    chosen_other(item, element.name)
                    paths.append(f"{group}[{item_number}].{element.name}")
        case = cases.save_case(
            site, case_uid=f"LK-{number:03d}", data=data, status="submitted", actor=owner,
            patient_key=patient_key(code, f"MRN{number}"),
        ).case
        saved.append({"site": code, "case_uid": case.case_uid, "paths": paths, "text": text})

# A planted withdrawal reason.
first = saved[0]
case = cases.Case.objects.get(site__code=first["site"], case_uid=first["case_uid"])
cases.withdraw_case(case, planted[1][1], actor=owner)
first["paths"].append("withdrawn_reason")

# A physician's planted comment, stored with the answers and written into the case.
answered = saved[2]
case = cases.Case.objects.get(site__code=answered["site"], case_uid=answered["case_uid"])
request = questionnaires.send(case, email="dr.kim@hospital.example.org", specialty="urology")
answers = {k: v for k, v in case.data.items() if k in questionnaire}
text_answers = [e.name for e in top if e.name in questionnaire]
assert text_answers, "the questionnaire has no text element"
for name in text_answers:
    answers[name] = planted[3][1]
assert questionnaires.answer(request, answers) == "answered"
for name in text_answers:
    if name not in answered["paths"]:
        answered["paths"].append(name)
print(json.dumps(saved))
"""


OUTPUTS = """
import json, sys
from pathlib import Path

from registry3d.cli import main

out, year = Path(sys.argv[1]), sys.argv[2]
sites = json.loads(sys.argv[3])


def cli(*args):
    main(list(args), standalone_mode=False)


out.mkdir(parents=True)
cli("export", "--format", "csv", "--out", str(out / "research-csv"))
cli("export", "--format", "parquet", "--out", str(out / "research-parquet"))
cli("export", "--format", "csv", "--free-text", "--months", "--identifiers",
    "--out", str(out / "identifiable-csv"))
cli("export", "--format", "parquet", "--free-text", "--out", str(out / "identifiable-parquet"))
for code in sites:
    for fmt in ("csv", "xlsx", "parquet", "fhir", "redcap"):
        cli("export", "--site", code, "--format", fmt, "--out", str(out / f"site-{code}-{fmt}"))
cli("report", "--national", "--period", year, "--out", str(out / "national.csv"))
cli("backup", "--out", str(out / "backup.tar"))
cli("manage", "dumpdata", "audit", "--output", str(out / "audit.json"))

# A site export as the pages' job makes it: one ZIP under var/exports.
from registry3d.exports import services as exports
from registry3d.sites.models import Site

job = exports.request_site_export(None, Site.objects.get(code=sites[0]), "csv", enqueue=False)
exports.run_export(job)

# What the APIs answer: every case's FHIR Bundle, each site's REDCap records and log.
from registry3d.cases.models import Case
from registry3d.fhir.resources import bundle
from registry3d.redcap import records
from registry3d.redcap.project import project_of
from registry3d.dictionary import registry

project = project_of(registry.current().dictionary)
with open(out / "fhir-bundles.json", "w", encoding="utf-8") as handle:
    json.dump([bundle(case) for case in Case.objects.order_by("pk")], handle)
with open(out / "redcap-api-records.json", "w", encoding="utf-8") as handle:
    json.dump([row for case in Case.objects.order_by("pk")
               for row in records.case_rows(project, case)], handle)

from types import SimpleNamespace
from registry3d.redcap.api import log

for code in sites:
    token = SimpleNamespace(site=Site.objects.get(code=code))
    answer = log(None, token, {"format": "json"})
    (out / f"redcap-api-log-{code}.json").write_bytes(answer.content)
"""


def _run(registry, script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**registry.env, "DJANGO_SETTINGS_MODULE": "registry3d.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _setup() -> str:
    return "import django; django.setup()\n"


def make_outputs(registry, out: Path) -> None:
    _run(registry, _setup() + OUTPUTS, str(out), MONTH[:4], json.dumps(SITES))


# --- Searching ------------------------------------------------------------------------------


def _forms(text: str) -> list[str]:
    """The planted string, and its digits alone when they are many enough to identify."""
    forms = [text.casefold()]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 7:
        forms.append(digits)
    return forms


def _digits_view(text: str) -> str:
    """``text`` with separators inside numbers dropped, to find ``123 45 6789`` as well."""
    return re.sub(r"(?<=\d)[\s().\-/]+(?=\d)", "", text)


def _walk(value):
    """Every string in a decoded JSON or Parquet value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif value is not None:
        text = str(value)
        yield text
        if text[:1] in "{[":
            try:
                yield from _walk(json.loads(text))
            except ValueError:
                pass


def _texts(name: str, data: bytes, raw_databases: bool):
    """(where, text) of everything a file holds, read as its format reads it."""
    lower = name.lower()
    if lower.endswith((".zip", ".xlsx")):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _texts(f"{name}:{member}", archive.read(member), raw_databases)
        return
    if lower.endswith(".tar"):
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    content = tar.extractfile(member).read()
                    yield from _texts(f"{name}:{member.name}", content, raw_databases)
        return
    if lower.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        yield name, "\n".join(_walk(table.to_pylist()))
        yield f"{name} (schema)", str(table.schema)
        return
    if lower.endswith((".sqlite3", ".sqlite3-wal", ".pgdump")):
        # A database is read table by table (see database_texts); a SQLite
        # file is also read byte by byte, for what its free pages keep.
        if raw_databases and not lower.endswith(".pgdump"):
            yield f"{name} (bytes)", data.decode("utf-8", "replace")
        return
    text = data.decode("utf-8", "replace")
    yield name, text
    if lower.endswith(".xml"):
        yield name, html.unescape(text)
    if lower.endswith(".csv"):
        yield name, "\n".join(_walk(list(csv.reader(io.StringIO(text)))))
    if lower.endswith((".json", ".ndjson")):
        lines = text.splitlines() if lower.endswith(".ndjson") else [text]
        for line in lines:
            if line.strip():
                yield name, "\n".join(_walk(json.loads(line)))


def file_texts(root: Path, skip=(), raw_databases: bool = False):
    """(where, text) of every file under ``root``, but those in or named ``skip``."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(part in skip for part in path.relative_to(root.parent).parts):
            continue
        yield from _texts(str(path.relative_to(root.parent)), path.read_bytes(), raw_databases)


def database_texts(registry):
    """(table, text) of every table of the registry's database, all columns."""
    if registry.url:
        import psycopg

        with psycopg.connect(registry.url, autocommit=True) as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            ]
            for table in tables:
                rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
                yield table, "\n".join(_walk([list(r) for r in rows]))
        return
    with closing(sqlite3.connect(registry.var / "registry3d.sqlite3")) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
            yield table, "\n".join(_walk([list(r) for r in rows]))


def found(texts, strings) -> list[tuple[str, str, str]]:
    """(where, kind, string) of every planted string in ``texts``."""
    hits = set()
    for where, text in texts:
        folded = text.casefold()
        digits = _digits_view(folded)
        for kind, string in strings:
            for form in _forms(string):
                if form in (digits if form.isdigit() else folded):
                    hits.add((where, kind, string))
    return sorted(hits)


def _report(hits) -> str:
    return "\n".join(f"  {where}: {kind} {string!r}" for where, kind, string in hits)


# --- The test -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_registry(new_registry, tmp_path_factory):
    """A registry holding the planted cases, its outputs, and where each string is."""
    registry = new_registry("planted", migrated=True)
    script = PLANT.replace("PLANTED_JSON", repr(json.dumps(PLANTED))).replace("SITES", repr(SITES))
    script = script.replace("MONTH", repr(MONTH))
    saved = json.loads(_run(registry, _setup() + script).strip().splitlines()[-1])
    out = tmp_path_factory.mktemp("outputs") / "before"
    make_outputs(registry, out)
    old_zips = [p.name for p in (registry.var / "exports").glob("*.zip")]
    return registry, saved, out, old_zips


def test_the_planted_strings_cover_every_kind_the_screen_flags():
    kinds = {kind for kind, _ in PLANTED}
    flagged = {kind for kind, _ in FLAGGED}
    assert len(PLANTED) >= 11
    if CORPUS.exists():
        # Every kind of the corpus is planted, and the screen flags one of each.
        assert flagged == kinds, sorted(kinds - flagged)
    else:
        assert {"name", "date", "ssn", "phone", "email", "mrn"} <= flagged


def test_the_cases_hold_every_planted_string_in_every_text_element(planted_registry):
    registry, saved, _, _ = planted_registry
    # One case a string at each site, the string in every text element.
    assert len(saved) == 2 * len(PLANTED)
    for case in saved:
        assert "ua_comment" in case["paths"]
        assert any(p.startswith("anatomic_parts[") for p in case["paths"])
        assert any(p.startswith("prints[") for p in case["paths"])
    assert "withdrawn_reason" in saved[0]["paths"]
    # The search finds them where they are: in the cases' own rows.
    hits = found(database_texts(registry), PLANTED)
    assert {where for where, _, _ in hits} == OWN_TABLES
    assert {string for _, _, string in hits} == {text for _, text in PLANTED}
    for table in OWN_TABLES:
        assert {s for w, _, s in hits if w == table} >= {PLANTED[3][1]}, table


def test_no_output_holds_a_flagged_string(planted_registry):
    registry, _, out, _ = planted_registry
    made = sorted(p.name for p in out.iterdir())
    assert made == sorted(
        [
            "audit.json",
            "backup.tar",
            "fhir-bundles.json",
            "identifiable-csv",
            "identifiable-parquet",
            "national.csv",
            "redcap-api-records.json",
            *(f"redcap-api-log-{code}.json" for code in SITES),
            "research-csv",
            "research-parquet",
            *(
                f"site-{code}-{fmt}"
                for code in SITES
                for fmt in ("csv", "fhir", "parquet", "redcap", "xlsx")
            ),
        ]
    )
    hits = found(file_texts(out), FLAGGED)
    assert not hits, "planted strings left the registry:\n" + _report(hits)


def test_the_reports_snapshot_and_the_var_folder_hold_no_planted_string(planted_registry):
    registry, _, _, _ = planted_registry
    snapshots = list(registry.var.rglob("*.parquet"))
    assert snapshots, "no reports snapshot was built"
    skip = {"registry3d.sqlite3", "registry3d.sqlite3-wal", "registry3d.sqlite3-shm"}
    hits = found(file_texts(registry.var, skip=skip), FLAGGED)
    assert not hits, "planted strings in the var folder:\n" + _report(hits)


def test_the_backup_restores_them_only_into_the_cases_own_rows(planted_registry, new_registry):
    _, _, out, _ = planted_registry
    restored = new_registry("planted-restored")
    result = restored.cli("restore", str(out / "backup.tar"))
    assert result.returncode == 0, result.stderr
    hits = found(database_texts(restored), PLANTED)
    assert {where for where, _, _ in hits} == OWN_TABLES, _report(hits)


def test_after_redaction_no_planted_string_is_anywhere(planted_registry, new_registry):
    registry, saved, out, old_zips = planted_registry
    commands = [
        ["case", "redact", case["site"], case["case_uid"], "--element", path, "--reason", REASON]
        for case in saved
        for path in case["paths"]
    ]
    # A server keeps connections open: SQLite's write-ahead log then stays,
    # with the pages a redaction changed, unless the redaction empties it.
    reader = None if registry.url else sqlite3.connect(registry.var / "registry3d.sqlite3")
    if reader is not None:
        assert reader.execute("SELECT COUNT(*) FROM cases_case").fetchone() == (len(saved),)
    _run(registry, REDACT, json.dumps(commands))
    after = out.parent / "after"
    make_outputs(registry, after)
    hits = found(file_texts(after, raw_databases=True), PLANTED)
    assert not hits, "planted strings in the outputs after redaction:\n" + _report(hits)
    hits = found(database_texts(registry), PLANTED)
    assert not hits, "planted strings in the database after redaction:\n" + _report(hits)
    restored = new_registry("redacted-restored")
    result = restored.cli("restore", str(after / "backup.tar"))
    assert result.returncode == 0, result.stderr
    hits = found(database_texts(restored), PLANTED)
    assert not hits, "planted strings in the backup after redaction:\n" + _report(hits)
    # The var folder, its SQLite database and log byte by byte included.
    hits = found(file_texts(registry.var, skip={"exports"}, raw_databases=True), PLANTED)
    if reader is not None:
        reader.close()
    assert not hits, "planted strings in the var folder after redaction:\n" + _report(hits)
    # A ZIP exported before the redaction holds what the screen missed then
    # (an administrator deletes it); the one exported after holds nothing.
    zips = sorted((registry.var / "exports").glob("*.zip"))
    assert len(zips) == 2
    hits = found(file_texts(registry.var / "exports"), PLANTED)
    assert {where.split(":")[0] for where, _, _ in hits} <= {f"exports/{old}" for old in old_zips}
    assert {(kind, string) for _, kind, string in hits} == set(PLANTED) - set(FLAGGED)


REDACT = """
import django; django.setup()
import json, sys
from registry3d.cli import main

for args in json.loads(sys.argv[1]):
    main(args, standalone_mode=False)
"""
