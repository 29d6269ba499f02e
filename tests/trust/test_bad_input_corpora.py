"""The bad-input corpora (``tests/corpora/``) replayed at every door that takes them.

Each file is sent to each door that accepts its kind:

- JSON: the case API's POST /api/v1/cases, PUT and PATCH /api/v1/cases/{uid}
  (of an existing case), and FHIR's POST /fhir/QuestionnaireResponse;
- CSV: the import page (/sites/<code>/imports/) and POST /api/v1/imports;
- DICOM: POST /api/v1/intake/dicom;
- 3D models: POST /api/v1/intake/mesh (at a site that keeps model files).

Every answer must be a 4xx (never a 2xx, never a server error) that says
what is wrong: a problem+json whose ``errors`` name the field (or whose
``detail`` says what is wrong with the body or the file), an OperationOutcome
whose issues say it, a form error on the page; the word the corpus expects
(``EXPECTED.json``) must be in it. And nothing may be written: the counts of
cases, versions, audit events, import jobs and their problems, kept model
files, printers, and the files under the registry's storage are the same
before and after. A refusal never repeats a patient's name or MRN from the
file either.
"""

import json
from pathlib import Path

import pytest
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.cases.models import Case, CaseVersion
from registry3d.cases.services import save_case
from registry3d.intake.models import Import, ImportProblem, ModelFile
from registry3d.sites import services
from registry3d.sites.models import Printer
from tests.conftest import client_for, csrf_post

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
EXPECTED = json.loads((CORPORA / "EXPECTED.json").read_text())
EXISTING = "EXIST-1"
# What a refusal must never repeat from a file.
PLANTED = ["CORPUS^PLANTED^NAME", "PLANTED", "48213377", "123-45-6789", "John Q Smith"]


def corpus(kind: str) -> list[Path]:
    files = sorted(p for p in (CORPORA / kind).iterdir() if p.is_file())
    assert files, kind
    return files


def test_the_corpora_are_what_make_corpora_writes():
    """Every file is listed in EXPECTED.json, small, and none is missing."""
    on_disk = {
        f"{p.parent.name}/{p.name}"
        for kind in ("json", "csv", "dicom", "mesh")
        for p in corpus(kind)
    }
    assert on_disk == set(EXPECTED)
    sizes = [(CORPORA / name).stat().st_size for name in on_disk]
    assert max(sizes) < 50 * 1024 and sum(sizes) < 1024 * 1024


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


@pytest.fixture
def door_world(world):
    services.set_keep_model_files(world.site_a, True)
    save_case(world.site_a, case_uid=EXISTING, data={"age_years": 40}, actor=world.alice)
    _, world.write_token = services.create_token(world.site_a, world.alice, name="W", scope="write")
    try:
        from registry3d.lib.ratelimit import limiter
    except ImportError:
        from registry3d.api.middleware import buckets as limiter
    limiter.clear()
    return world


def written(var_dir: Path) -> dict:
    files = sorted(str(p.relative_to(var_dir)) for p in var_dir.rglob("*") if p.is_file())
    return {
        "cases": Case.objects.count(),
        "versions": CaseVersion.objects.count(),
        "case": list(Case.objects.filter(case_uid=EXISTING).values_list("version", "data")),
        "audit": AuditEvent.objects.count(),
        "imports": Import.objects.count(),
        "import_problems": ImportProblem.objects.count(),
        "model_files": ModelFile.objects.count(),
        "printers": Printer.objects.count(),
        "files": [f for f in files if not f.startswith(("logs/", "log/"))],
    }


def call(send, *args, **kwargs):
    """The answer; an exception the view raised fails the test as a server error."""
    try:
        return send(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a server error is what the test reports
        raise AssertionError(f"server error: {exc!r}") from exc


def check_refusal(response, name: str, door: str) -> str:
    """A 4xx that says what is wrong; return its text."""
    status = response.status_code
    text = response.content.decode("utf-8", "replace")
    assert 400 <= status < 500, f"{door} answered {status} to {name}: {text[:500]}"
    for planted in PLANTED:
        assert planted not in text, f"{door} repeated {planted!r} from {name}"
    return text


def check_problem(response, name: str, door: str) -> str:
    text = check_refusal(response, name, door)
    assert response["Content-Type"].startswith("application/problem+json"), (door, name)
    body = json.loads(text)
    assert body["status"] == response.status_code and body["detail"], (door, name, body)
    if response.status_code == 422:
        assert body["errors"], (door, name, body)
        for error in body["errors"]:
            assert error["field"] and error["message"], (door, name, error)
    return text


def answer(kind: str, file: Path) -> str:
    return EXPECTED[f"{kind}/{file.name}"]["answer"]


def check_accepted(response, name: str, door: str) -> None:
    """A file the door reads by design: no server error, nothing planted repeated."""
    text = response.content.decode("utf-8", "replace")
    assert response.status_code == 200, f"{door} answered {response.status_code} to {name}"
    for planted in PLANTED:
        assert planted not in text, f"{door} repeated {planted!r} from {name}"


def check_job_refused(code: str, before: dict, var_dir: Path, name: str, door: str) -> None:
    """A table whose rows are bad: its job names them, and no case is written.

    The job itself (its row, its problems, its audit event and the kept
    upload) is the answer, as for any import; nothing else changes.
    """
    job = Import.objects.get(code=code)
    assert job.invalid and job.written == 0, (name, job.status, job.invalid)
    problems = list(job.problems.all())
    assert problems and all(p.row >= 2 and p.element and p.message for p in problems), name
    after = written(var_dir)
    assert after["imports"] == before["imports"] + 1
    assert after["import_problems"] == before["import_problems"] + len(problems)
    assert AuditEvent.objects.filter(action__startswith="import.").count() >= 1
    assert set(after["files"]) - set(before["files"]) <= {
        f for f in after["files"] if f.startswith("imports/")
    }
    for key in ("cases", "versions", "case", "model_files", "printers"):
        assert after[key] == before[key], f"{door} wrote {key} for {name}"
    audit_after = AuditEvent.objects.exclude(action__startswith="import.").count()
    audit_before = before["audit"] - (
        AuditEvent.objects.filter(action__startswith="import.").count() - 1
    )
    assert audit_after <= audit_before, f"{door} wrote audit events beyond the job for {name}"


def check_named(text: str, name: str, door: str, kind: str) -> None:
    word = EXPECTED[f"{kind}/{name}"]["names"]
    if word:
        assert word.lower() in text.lower(), f"{door}: the refusal of {name} does not name {word!r}"


# --- JSON ------------------------------------------------------------------------------


JSON_DOORS = {
    "POST /api/v1/cases": ("post", "/api/v1/cases"),
    "PUT /api/v1/cases/{uid}": ("put", f"/api/v1/cases/{EXISTING}"),
    "PATCH /api/v1/cases/{uid}": ("patch", f"/api/v1/cases/{EXISTING}"),
}


@pytest.mark.parametrize("door", sorted(JSON_DOORS))
def test_json_corpus_at_the_case_api(door_world, own_storage, door, subtests):
    method, path = JSON_DOORS[door]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {door_world.write_token}")
    for file in corpus("json"):
        with subtests.test(file=file.name):
            before = written(own_storage)
            response = call(
                getattr(client, method), path, file.read_bytes(), content_type="application/json"
            )
            text = check_problem(response, file.name, door)
            # The files are POST bodies: PUT and PATCH refuse their case_uid first
            # (the address names the case), and FHIR resources are named at FHIR's door.
            if door.startswith("POST") and not file.name.startswith("fhir-"):
                check_named(text, file.name, door, "json")
            assert written(own_storage) == before, f"{door} wrote something for {file.name}"


def test_json_corpus_at_fhir_questionnaire_response(door_world, own_storage, subtests):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {door_world.write_token}")
    door = "POST /fhir/QuestionnaireResponse"
    for file in corpus("json"):
        with subtests.test(file=file.name):
            before = written(own_storage)
            response = call(
                client.post,
                "/fhir/QuestionnaireResponse",
                file.read_bytes(),
                content_type="application/fhir+json",
            )
            text = check_refusal(response, file.name, door)
            if response["Content-Type"].startswith("application/fhir+json"):
                outcome = json.loads(text)
                assert outcome["resourceType"] == "OperationOutcome", outcome
                assert outcome["issue"] and all(i["details"]["text"] for i in outcome["issue"]), (
                    outcome
                )
                if file.name.startswith("fhir-"):
                    check_named(text, file.name, door, "json")
            else:  # refused before the view: the NUL check
                assert "NUL" in text, text
            assert written(own_storage) == before, f"{door} wrote something for {file.name}"


# --- CSV -------------------------------------------------------------------------------


def test_csv_corpus_at_the_import_api(door_world, own_storage, subtests):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {door_world.write_token}")
    door = "POST /api/v1/imports"
    for file in corpus("csv"):
        with subtests.test(file=file.name):
            before = written(own_storage)
            with file.open("rb") as handle:
                response = call(client.post, "/api/v1/imports", {"file": handle})
            if answer("csv", file) == "job":
                job = response.json()
                assert response.status_code == 202 and job["status"] == "refused", job
                check_job_refused(job["id"], before, own_storage, file.name, door)
                continue
            text = check_problem(response, file.name, door)
            check_named(text, file.name, door, "csv")
            assert written(own_storage) == before, f"{door} wrote something for {file.name}"


def test_csv_corpus_at_the_import_page(door_world, own_storage, subtests):
    alice = client_for(door_world.alice)
    door = "POST /sites/SITEA/imports/"
    for file in corpus("csv"):
        with subtests.test(file=file.name):
            before = written(own_storage)
            with file.open("rb") as handle:
                response = call(
                    csrf_post,
                    alice,
                    "/sites/SITEA/imports/",
                    {"file": handle, "mode": "all-or-nothing", "default_status": "submitted"},
                )
            if answer("csv", file) == "job":
                # The page always previews: the job checks the rows and waits.
                assert response.status_code == 302, response.status_code
                code = response["Location"].rstrip("/").rsplit("/", 1)[-1]
                check_job_refused(code, before, own_storage, file.name, door)
                page = alice.get(response["Location"]).content.decode()
                assert "row" in page.lower(), page[:300]
                continue
            text = check_refusal(response, file.name, door)
            assert "errorlist" in text or 'class="error' in text, text[:500]
            check_named(text, file.name, door, "csv")
            assert written(own_storage) == before, f"{door} wrote something for {file.name}"


# --- DICOM and 3D models ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dicom", "mesh"])
def test_file_corpora_at_intake(door_world, own_storage, kind, subtests):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {door_world.write_token}")
    door = f"POST /api/v1/intake/{kind}"
    for file in corpus(kind):
        with subtests.test(file=file.name):
            before = written(own_storage)
            with file.open("rb") as handle:
                response = call(client.post, f"/api/v1/intake/{kind}", {"file": handle})
            if answer(kind, file) == "accepted":
                check_accepted(response, file.name, door)
                assert written(own_storage) == before, f"{door} wrote something for {file.name}"
                continue
            text = check_problem(response, file.name, door)
            body = json.loads(text)
            assert [e["field"] for e in body["errors"]] == ["file"], body
            check_named(text, file.name, door, kind)
            assert written(own_storage) == before, f"{door} wrote something for {file.name}"
