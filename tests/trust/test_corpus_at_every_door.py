"""Every identifier of the corpus, at every door, in every text element (#15).

``tests/trust/test_no_echo.py`` sends one string per kind through every door
into one text element; ``test_planted_identifiers.py`` plants the corpus in
every text element but past the entry screen. This module joins the two.
Which rows: EVERY row of ``tests/corpora/identifiers/corpus.csv`` that is
not ``benign`` (300 rows) at every door but the two slow web pages (the case
form and the withdrawal form), which take the first three rows of each kind
and every row that is a model file name (``SOME``, 63 rows today); the same 300
rows reach the case form's validation through the other doors and the
withdrawal through the API. Each row is planted

- into every text element of the dictionary in force (``type: text``
  without a ``pattern``, top level and in every item of every group; an
  ``*_other`` element with its choice element set to ``other``), read from
  ``registry.current().dictionary`` so the test follows the dictionary, of
  a submitted case, through REST (POST /api/v1/cases), FHIR (POST
  /fhir/QuestionnaireResponse: every text element of the case's
  questionnaire; the physician's ``ua_comment`` is in a questionnaire of its
  own), the REDCap API record import (100 records a call: a request holds at
  most a megabyte; JSON and CSV), a CSV upload on the import page and an
  XLSX file through /api/v1/imports (one file each, a row per corpus row; in
  the XLSX an ISO date is a date cell and a number typed with dashes a
  number cell, as a spreadsheet keeps them), and the web case form;
- into the physician's questionnaire page (``ua_comment``) and a withdrawal
  reason (the API and the web form);
- into the text attributes the DICOM reader returns (SeriesDescription,
  Manufacturer, ManufacturerModelName, BodyPartExamined) through
  /api/v1/intake/dicom, one series per row in one ZIP;
- into the name of a mesh upload (/api/v1/intake/mesh, the site keeping its
  model files) and of an import upload (/api/v1/imports, a preview):
  ``text.replace(" ", "_")`` and the door's extension, with ``/`` (which no
  file name holds) made ``-``; a row that is a model file name already
  (``Martin_Jose_skull.ply``) gets the door's extension for its own.

At each door each planted value must be refused, naming the element (the
case doors; problems.csv and REDCap's error lines name every record and
element) or withheld (DICOM attributes and file names); nothing refused may
be stored (cases and versions unchanged; no planted string in a row of
Case, CaseVersion, AuditEvent, ImportProblem, ModelFile or Import); and no
answer may hold it (case-insensitively, and as its digits alone when it has
seven or more; the helpers of ``test_no_echo``). A row the screen misses at
a door fails the test with the list of misses, door by door: the detector
finds every row of the corpus today, and this pins that at every door,
where each reads its text its own way (CSV cells, XLSX numbers and dates,
FHIR valueString, REDCap CSV, file names).
"""

import copy
import csv
import datetime
import html
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from registry3d.cases import services as cases
from registry3d.dictionary import flat, registry
from registry3d.intake.models import Import, ModelFile
from registry3d.lib.pseudonym import patient_key
from registry3d.lib.ratelimit import limiter
from registry3d.redcap.project import project_of
from registry3d.redcap.records import record_rows
from tests.conftest import client_for, csrf_post
from tests.intake import mesh_fixtures
from tests.intake.fixtures_dicom import ct_slice
from tests.intake.import_files import write_csv
from tests.questionnaires.conftest import GOOD_ANSWERS
from tests.trust.test_no_echo import (
    assert_no_echo,
    assert_not_stored,
    case_data,
    door,  # noqa: F401 - a fixture
    open_questionnaire,
    redcap_import,
    stored,
    without_inputs,
)

# The planted DICOM files put long text in short attributes on purpose, as a
# careless scanner operator would; pydicom warns when it writes them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom.valuerep")

CORPUS = Path(__file__).resolve().parents[1] / "corpora" / "identifiers" / "corpus.csv"
MODEL_FILE = re.compile(r"\.(?:stl|obj|3mf|ply|amf)\Z", re.IGNORECASE)
HERE = "planted text goes here"  # the template's value of every text element


def corpus() -> list[tuple[str, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        return [
            (row["kind"], row["text"])
            for row in csv.DictReader(handle)
            if row["kind"] != "benign" and row["text"]
        ]


ROWS = corpus()
TEXTS = [text for _kind, text in ROWS]


def some() -> list[int]:
    """For the slow web pages: the first three rows of each kind, and every model file name."""
    chosen: dict[str, list[int]] = {}
    for number, (kind, text) in enumerate(ROWS):
        if len(chosen.setdefault(kind, [])) < 3 or MODEL_FILE.search(text):
            chosen[kind].append(number)
    return sorted(n for numbers in chosen.values() for n in numbers)


SOME = some()


class Misses:
    """The corpus rows a door let through, reported together at the end."""

    def __init__(self, door_name: str):
        self.door = door_name
        self.found: list[str] = []

    def add(self, number: int, what: str) -> None:
        if number < 0:
            self.found.append(f"  {what}")
            return
        kind, text = ROWS[number]
        self.found.append(f"  row {number + 2} ({kind}) {text!r}: {what}")

    def check(self) -> None:
        assert not self.found, (
            f"{self.door} let {len(self.found)} corpus identifier(s) through:\n"
            + "\n".join(self.found)
        )


# --- The dictionary's text elements --------------------------------------------------------------


def text_elements():
    """(top-level names, {group: names}) of the text elements without a pattern."""
    dictionary = registry.current().dictionary
    top = [e.name for e in dictionary.elements.values() if e.type == "text" and not e.pattern]
    groups = {
        g.name: [e.name for e in g.elements if e.type == "text" and not e.pattern]
        for g in dictionary.groups()
    }
    return top, {g: names for g, names in groups.items() if names}


def _choose_other(holder: dict, name: str, choices: set[str]) -> None:
    base = name.removesuffix("_other")
    if base != name and base in choices:
        holder[base] = "other"


def template(labels) -> tuple[dict, list[str]]:
    """A valid case with ``HERE`` in every text element, and the paths of those elements."""
    dictionary = registry.current().dictionary
    data = case_data(labels)
    top, groups = text_elements()
    choices = {p.split(".")[-1] for p, e in dictionary.all_elements.items() if e.value_set}
    paths = []
    for name in top:
        data[name] = HERE
        _choose_other(data, name, choices)
        paths.append(name)
    for group, names in groups.items():
        assert data.get(group), f"the template case has no {group} item"
        for number, item in enumerate(data[group], start=1):
            for name in names:
                item[name] = HERE
                _choose_other(item, name, choices)
                paths.append(f"{group}[{number}].{name}")
    return data, paths


def planted(data, text: str):
    """``data`` with every ``HERE`` made ``text``."""
    if isinstance(data, dict):
        return {k: planted(v, text) for k, v in data.items()}
    if isinstance(data, list):
        return [planted(v, text) for v in data]
    return text if data == HERE else data


@pytest.fixture
def doors(door, settings, tmp_path):  # noqa: F811 - the fixture of test_no_echo
    settings.VAR_DIR = tmp_path / "var"
    door.template, door.paths = template(door.labels)
    assert len(door.paths) >= 4, door.paths
    # The template saves as it is: a door refuses only what is planted in it.
    cases.save_case(
        door.site_a,
        case_uid="TPL-1",
        data=door.template,
        status="submitted",
        patient_key=patient_key("SITEA", "MRN-0002"),
        actor=door.alice,
    )
    return door


def nothing_kept(before, where: str, strings=TEXTS) -> None:
    assert_not_stored(before, strings, where)
    kept = json.dumps(
        [list(ModelFile.objects.values()), list(Import.objects.values())],
        default=str,
        ensure_ascii=False,
    )
    assert_no_echo(kept, strings, f"{where} (stored files)")


def refused_as_identifiers(messages: str) -> bool:
    return "looks like" in html.unescape(messages)


# --- REST ----------------------------------------------------------------------------------------


def test_rest_refuses_every_corpus_identifier_in_every_text_element(doors):
    misses = Misses("REST POST /api/v1/cases")
    before = stored()
    expected = {f"data.{p}" for p in doors.paths}
    for number, text in enumerate(TEXTS):
        limiter.clear()
        body = {"case_uid": f"CD-{number:03d}", "status": "submitted"}
        body["data"] = planted(doors.template, text)
        reply = doors.api.post("/api/v1/cases", json.dumps(body), content_type="application/json")
        assert_no_echo(reply.content, [text], "REST")
        if reply.status_code != 422:
            misses.add(number, f"answered {reply.status_code}")
            continue
        named = {e["field"] for e in reply.json()["errors"] if e["code"] == "identifier_suspected"}
        if expected - named:
            misses.add(number, f"not refused in {sorted(expected - named)}")
    nothing_kept(before, "REST")
    misses.check()


# --- FHIR ----------------------------------------------------------------------------------------


def _fill(items: list, text: str) -> int:
    count = 0
    for item in items:
        for answer in item.get("answer") or []:
            if answer.get("valueString") == HERE:
                answer["valueString"] = text
                count += 1
            count += _fill(answer.get("item") or [], text)
        count += _fill(item.get("item") or [], text)
    return count


def test_fhir_refuses_every_corpus_identifier_in_every_text_element(doors):
    bundle = doors.api.get("/api/v1/cases/TPL-1/fhir").json()
    response = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
        and e["resource"]["questionnaire"].split("|")[0].endswith("registry3d-case")
    )
    response.pop("id", None)
    response["subject"].pop("reference", None)
    # The physician's answers (ua_comment) are a questionnaire of their own.
    dictionary = registry.current().dictionary
    asked = {e.name for section in dictionary.questionnaire_sections() for e in section.elements}
    in_case = [p for p in doors.paths if p.split(".")[-1] not in asked]
    misses = Misses("FHIR POST /fhir/QuestionnaireResponse")
    before = stored()
    for number, text in enumerate(TEXTS):
        limiter.clear()
        resource = copy.deepcopy(response)
        filled = _fill(resource["item"], text)
        assert filled == len(in_case), (filled, in_case)
        resource["identifier"]["value"] = f"CD-{number:03d}"
        reply = doors.api.post(
            "/fhir/QuestionnaireResponse",
            json.dumps(resource),
            content_type="application/fhir+json",
        )
        assert_no_echo(reply.content, [text], "FHIR")
        if reply.status_code != 422:
            misses.add(number, f"answered {reply.status_code}")
            continue
        issues = reply.json()["issue"]
        flagged = [i for i in issues if refused_as_identifiers(json.dumps(i))]
        if len(flagged) < filled:
            misses.add(number, f"{len(flagged)} of {filled} answers refused")
    nothing_kept(before, "FHIR")
    misses.check()


# --- REDCap --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_redcap_import_refuses_every_corpus_identifier_naming_record_and_field(doors, fmt):
    project = project_of(registry.current().dictionary)
    # The rows of the template, planted after: record_rows withholds identifiers.
    rows = []
    for number, text in enumerate(TEXTS):
        for row in record_rows(project, f"CD-{number:03d}", doors.template, "submitted"):
            rows.append({k: text if v == HERE else v for k, v in row.items()})
    before = stored()
    refused: dict[str, set[str]] = {}
    # A request holds at most a megabyte: 100 records a call.
    for start in range(0, len(TEXTS), 100):
        chunk = [r for r in rows if int(r["record_id"][3:]) in range(start, start + 100)]
        reply = redcap_import(doors.redcap, fmt, chunk)
        assert reply.status_code == 400, reply.content[:2000]
        assert_no_echo(reply.content, TEXTS, f"REDCap {fmt}")
        lines = list(csv.reader(io.StringIO(json.loads(reply.content)["error"])))
        for line in lines:
            assert len(line) == 4 and line[2] == "", line
            if refused_as_identifiers(line[3]):
                refused.setdefault(line[0], set()).add(line[1])
    names = {p.split(".")[-1] for p in doors.paths}
    misses = Misses(f"REDCap import ({fmt})")
    for number in range(len(TEXTS)):
        missing = names - refused.get(f"CD-{number:03d}", set())
        if missing:
            misses.add(number, f"no refusal for {sorted(missing)}")
    nothing_kept(before, f"REDCap {fmt}")
    misses.check()


# --- CSV and XLSX imports ------------------------------------------------------------------------


def import_rows(doors) -> list[dict]:
    dictionary = registry.current().dictionary
    rows = []
    for number, text in enumerate(TEXTS):
        row = flat.write_row(dictionary, {}, planted(doors.template, text))
        rows.append({"case_uid": f"CD-{number:03d}", "status": "submitted", **row})
    return rows


def planted_columns(doors) -> list[str]:
    dictionary = registry.current().dictionary
    row = flat.write_row(dictionary, {}, doors.template)
    return [column for column, value in row.items() if value == HERE]


def check_problems(doors, text: str, misses: Misses) -> None:
    """problems.csv names every planted cell (row and element) and holds no planted string."""
    assert_no_echo(text, TEXTS, "problems.csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table, text[:500]
    refused: dict[str, set[str]] = {}
    for problem in table:
        if refused_as_identifiers(problem.get("message", "")):
            refused.setdefault(problem["case_uid"], set()).add(problem["element"])
    expected = set(doors.paths)
    for number in range(len(TEXTS)):
        missing = expected - refused.get(f"CD-{number:03d}", set())
        if missing:
            misses.add(number, f"no problem for {sorted(missing)}")


def test_a_csv_upload_refuses_every_planted_cell_and_problems_csv_names_each(doors, tmp_path):
    path = write_csv(tmp_path / "lab.csv", import_rows(doors))
    before = stored()
    client = client_for(doors.alice)
    with path.open("rb") as handle:
        response = csrf_post(
            client,
            "/sites/SITEA/imports/",
            {"file": handle, "mode": "all-or-nothing", "default_status": "submitted"},
        )
    assert response.status_code == 302, response.content[:2000]
    page = client.get(response["Location"])
    assert_no_echo(page.content, TEXTS, "CSV import page")
    problems = client.get(response["Location"].rstrip("/") + "/problems.csv")
    misses = Misses("CSV upload")
    check_problems(doors, b"".join(problems.streaming_content).decode(), misses)
    nothing_kept(before, "CSV import")
    misses.check()


def as_spreadsheet_cell(text: str):
    """The cell a spreadsheet keeps: a date as a date, a number typed with dashes as a number."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.datetime.fromisoformat(text)
    digits = re.sub(r"\D", "", text)
    if re.fullmatch(r"[\d\s()+-]+", text) and len(digits) >= 7:
        return int(digits)
    return text


def write_typed_xlsx(path: Path, rows: list[dict]) -> Path:
    from openpyxl import Workbook

    columns = list(dict.fromkeys(c for row in rows for c in row))
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(columns)
    for row, text in zip(rows, TEXTS, strict=True):
        cell = as_spreadsheet_cell(text)
        sheet.append([cell if row.get(c) == text else row.get(c, "") for c in columns])
    workbook.save(path)
    return path


def test_an_xlsx_import_refuses_every_planted_cell_and_problems_csv_names_each(doors, tmp_path):
    path = write_typed_xlsx(tmp_path / "lab.xlsx", import_rows(doors))
    before = stored()
    limiter.clear()
    with path.open("rb") as handle:
        reply = doors.api.post("/api/v1/imports", {"file": handle, "mode": "all-or-nothing"})
    assert reply.status_code == 202, reply.content[:2000]
    job = reply.json()
    assert (job["invalid"], job["written"]) == (len(TEXTS), 0)
    followed = doors.api.get(f"/api/v1/imports/{job['id']}")
    for body in (reply.content, followed.content):
        assert_no_echo(body, TEXTS, "XLSX import job")
    client = client_for(doors.alice)
    problems = client.get(f"/sites/SITEA/imports/{Import.objects.get().code}/problems.csv")
    assert problems.status_code == 200
    misses = Misses("XLSX import")
    check_problems(doors, b"".join(problems.streaming_content).decode(), misses)
    nothing_kept(before, "XLSX import")
    misses.check()


# --- Web pages -----------------------------------------------------------------------------------


def test_the_case_form_refuses_corpus_identifiers_in_every_text_element(doors):
    dictionary = registry.current().dictionary
    client = client_for(doors.alice)
    columns = planted_columns(doors)
    misses = Misses("web case form")
    before = stored()
    for number in SOME:
        text = TEXTS[number]
        row = flat.write_row(dictionary, {}, planted(doors.template, text))
        response = csrf_post(
            client,
            "/sites/SITEA/cases/new/",
            {**row, "case_uid": f"CD-{number:03d}", "action": "submit"},
        )
        page = response.content.decode()
        assert_no_echo(without_inputs(page), [text], "case form")
        if response.status_code != 400:
            misses.add(number, f"answered {response.status_code}")
            continue
        # The list of problems at the top links each to its field.
        listed = re.findall(r'<li><a href="#f-([^"]+)">[^<]*</a>: ([^<]*)</li>', page)
        refused = {field for field, message in listed if refused_as_identifiers(message)}
        if set(columns) - refused:
            misses.add(number, f"not refused in {sorted(set(columns) - refused)}")
    nothing_kept(before, "case form")
    misses.check()


def test_the_questionnaire_page_refuses_every_corpus_identifier_in_its_comment(
    doors, django_capture_on_commit_callbacks
):
    physician, path = open_questionnaire(doors.base, django_capture_on_commit_callbacks)
    token = physician.cookies["csrftoken"].value
    misses = Misses("questionnaire page")
    before = stored()
    for number, text in enumerate(TEXTS):
        limiter.clear()
        page = physician.post(path, {**GOOD_ANSWERS, "ua_comment": text}, HTTP_X_CSRFTOKEN=token)
        content = page.content.decode()
        assert_no_echo(without_inputs(content), [text], "questionnaire page")
        if page.status_code != 422 or not refused_as_identifiers(content):
            misses.add(number, f"answered {page.status_code} without refusing the comment")
    nothing_kept(before, "questionnaire page")
    misses.check()


def test_withdrawal_through_the_api_refuses_every_corpus_identifier_as_a_reason(doors):
    misses = Misses("REST withdrawal")
    before = stored()
    for number, text in enumerate(TEXTS):
        limiter.clear()
        reply = doors.api.post(
            "/api/v1/cases/BASE-1/withdraw",
            json.dumps({"reason": text}),
            content_type="application/json",
        )
        assert_no_echo(reply.content, [text], "REST withdrawal")
        if reply.status_code != 422 or not refused_as_identifiers(reply.content.decode()):
            misses.add(number, f"answered {reply.status_code}")
            if stored() != before:
                break  # withdrawn: the rest would be refused for that
    nothing_kept(before, "REST withdrawal")
    misses.check()


def test_the_withdrawal_form_refuses_corpus_identifiers_as_a_reason(doors):
    client = client_for(doors.alice)
    misses = Misses("withdrawal form")
    before = stored()
    for number in SOME:
        text = TEXTS[number]
        response = csrf_post(
            client, "/sites/SITEA/cases/BASE-1/withdraw/", {"reason": text, "version": "1"}
        )
        page = (
            client.get(response["Location"]).content.decode() if response.status_code == 302 else ""
        )
        assert_no_echo(without_inputs(page), [text], "withdrawal")
        if "Reason: this looks like" not in html.unescape(page):
            misses.add(number, "not refused")
            if stored() != before:
                break  # withdrawn: the rest would be refused for that
    nothing_kept(before, "withdrawal")
    misses.check()


# --- DICOM ---------------------------------------------------------------------------------------

DICOM_TEXT = {
    "SeriesDescription": "series_description",
    "Manufacturer": "manufacturer",
    "ManufacturerModelName": "model",
    "BodyPartExamined": "body_part",
}


def test_the_dicom_reader_withholds_every_corpus_identifier_in_its_text_attributes(doors):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for number, text in enumerate(TEXTS):
            uid = f"2.25.{9_000_000 + number}"
            ds = ct_slice(1, series_uid=uid, **dict.fromkeys(DICOM_TEXT, text))
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            out.writestr(f"S{number:04d}/IM0001.dcm", buffer.getvalue())
    before = stored()
    upload = SimpleUploadedFile("series.zip", archive.getvalue(), "application/zip")
    reply = doors.api.post("/api/v1/intake/dicom", {"file": upload})
    assert reply.status_code == 200, reply.content[:2000]
    assert_no_echo(reply.content, TEXTS, "DICOM")
    series = reply.json()["series"]
    assert len(series) == len(TEXTS)
    misses = Misses("DICOM API")
    for one in series:
        kept = {key: one[key] for key in DICOM_TEXT.values() if one[key] is not None}
        if kept:
            number = TEXTS.index(next(iter(kept.values())))
            misses.add(number, f"returned in {sorted(kept)}")
        elif len(one["withheld"]) != len(DICOM_TEXT):
            misses.add(-1, f"a series withholds only {one['withheld']}")
    nothing_kept(before, "DICOM")
    misses.check()


# --- File names ----------------------------------------------------------------------------------


def file_name(text: str, extension: str) -> str:
    return MODEL_FILE.sub("", text).replace(" ", "_").replace("/", "-") + extension


def test_a_mesh_upload_named_after_any_corpus_identifier_is_kept_without_the_name(doors, tmp_path):
    doors.site_a.keep_model_files = True
    doors.site_a.save()
    misses = Misses("mesh upload name")
    before = stored()
    for number, text in enumerate(TEXTS):
        limiter.clear()
        name = file_name(text, ".stl")
        # A cube of its own each time: the same content is kept once.
        cube = mesh_fixtures.cube(10, at=(float(number), 0.0, 0.0))
        path = mesh_fixtures.write_stl_binary(tmp_path / "cube.stl", cube)
        upload = SimpleUploadedFile(name, path.read_bytes())
        reply = doors.api.post("/api/v1/intake/mesh", {"file": upload})
        assert reply.status_code == 200, reply.content[:2000]
        assert_no_echo(reply.content, [text, name], "mesh answer")
        if not reply.json()["withheld"]:
            misses.add(number, f"{name!r} not withheld")
    listing = doors.api.get("/api/v1/intake/models")
    assert_no_echo(listing.content, TEXTS, "model list")
    names = [file_name(t, ".stl") for t in TEXTS]
    nothing_kept(before, "mesh upload", TEXTS + names)
    misses.check()


def test_an_import_upload_named_after_any_corpus_identifier_is_shown_as_upload_csv(doors):
    content = b"case_uid,status\nNAMED-1,draft\n"
    misses = Misses("import upload name")
    before = stored()
    for number, text in enumerate(TEXTS):
        limiter.clear()
        name = file_name(text, ".csv")
        upload = SimpleUploadedFile(name, content, "text/csv")
        reply = doors.api.post("/api/v1/imports", {"file": upload, "preview": "true"})
        assert reply.status_code == 202, reply.content[:2000]
        assert_no_echo(reply.content, [text, name], "import answer")
        if reply.json()["file_name"] != "upload.csv":
            misses.add(number, f"{name!r} shown as it is")
    names = [file_name(t, ".csv") for t in TEXTS]
    listing = client_for(doors.alice).get("/sites/SITEA/imports/")
    assert_no_echo(listing.content, TEXTS + names, "import list")
    nothing_kept(before, "import upload", TEXTS + names)
    misses.check()
