"""An import's file name: screened before it is stored or shown, never the name on disk."""

import csv
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.cli import main
from registry3d.intake.models import Import
from registry3d.sites import services
from tests.cases.conftest import printers_for
from tests.conftest import client_for, csrf_post
from tests.intake.import_files import case_rows, write_csv
from tests.intake.leaks import files_text, leaked, stored_text

PLANTED = ["Smith", "MRN1234567", "DOB1950", "1950-03-03", "Doe, Jane", "john.smith@"]


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    """Each test keeps its files in a folder of its own."""
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


@pytest.fixture
def cases_file(world, tmp_path):
    labels = printers_for(world.site_a)

    def write(name: str):
        (tmp_path / "upload").mkdir(exist_ok=True)
        return write_csv(tmp_path / "upload" / name, case_rows(3, labels))

    return write


def assert_nothing_kept_names_it(own_storage):
    batch = Import.objects.get()
    assert batch.file_name == "upload.csv"
    # A preview's upload and its spool of checked rows beside it; nothing
    # once the import is written.
    stored = sorted(p.name for p in (own_storage / "imports" / "SITEA").iterdir())
    upload = Path(batch.file_path).name
    assert stored in ([], [upload], [f"import-{batch.code}.rows", upload])
    assert re.fullmatch(r"upload-[0-9a-f]{32}\.csv", upload)
    created = AuditEvent.objects.get(action="import.created")
    assert json.loads(created.changes_json)["file"] == "upload.csv"
    assert leaked(PLANTED, stored_text(), files_text(own_storage)) == []


def test_the_command_imports_a_file_named_like_an_identifier_as_upload_csv(
    world, cases_file, own_storage
):
    path = cases_file("Smith_John_MRN1234567_DOB1950-03-03.csv")
    result = CliRunner().invoke(main, ["import", str(path), "--site", "SITEA"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "upload.csv (csv, comma-separated): 3 rows — 3 new, 0 changed, 0 unchanged, 0 invalid"
    )
    assert leaked(PLANTED, result.stdout, result.stderr) == []
    assert_nothing_kept_names_it(own_storage)


def test_the_api_stores_and_answers_a_neutral_name(world, cases_file, own_storage):
    path = cases_file("Doe, Jane 1950-03-03.csv")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {write}")
    with path.open("rb") as handle:
        reply = client.post("/api/v1/imports", {"file": handle, "preview": "true"})
    assert reply.status_code == 202, reply.content
    assert reply.json()["file_name"] == "upload.csv"
    followed = client.get(f"/api/v1/imports/{reply.json()['id']}")
    assert leaked(PLANTED, reply.content.decode(), followed.content.decode()) == []
    assert_nothing_kept_names_it(own_storage)


def test_the_import_page_shows_a_neutral_name_and_a_plain_one_as_it_is(
    world, cases_file, own_storage
):
    client = client_for(world.alice)
    with cases_file("john.smith@example.org.csv").open("rb") as handle:
        response = csrf_post(
            client,
            "/sites/SITEA/imports/",
            {"file": handle, "mode": "all-or-nothing", "default_status": "submitted"},
        )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "<h1>Import of upload.csv</h1>" in page
    assert_nothing_kept_names_it(own_storage)
    with cases_file("lab-export-week-12.csv").open("rb") as handle:
        csrf_post(
            client,
            "/sites/SITEA/imports/",
            {"file": handle, "mode": "all-or-nothing", "default_status": "submitted"},
        )
    listing = client.get("/sites/SITEA/imports/").content.decode()
    assert "lab-export-week-12.csv" in listing
    assert "lab-export-week-12" not in files_text(own_storage)


def test_a_refused_upload_named_like_an_identifier_is_not_named_in_the_error(
    world, tmp_path, own_storage
):
    path = tmp_path / "Smith_John_MRN1234567_DOB1950-03-03.csv"
    path.write_text("")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/imports", {"file": handle}
        )
    assert reply.status_code == 422
    assert reply.json()["detail"] == "upload.csv: the file is empty"
    assert Import.objects.exists() is False
    assert leaked(PLANTED, files_text(own_storage)) == []


def test_a_column_header_that_looks_like_an_identifier_is_neither_stored_nor_shown(
    world, cases_file, tmp_path, own_storage
):
    source = cases_file("cases.csv")
    lines = source.read_text().splitlines()
    path = tmp_path / "with-extra.csv"
    path.write_text(
        "\n".join(
            [lines[0] + ",Patient John Smith,bench note"] + [line + ",x,y" for line in lines[1:]]
        )
        + "\n"
    )
    result = CliRunner().invoke(main, ["import", str(path), "--site", "SITEA", "--preview"])
    assert result.exit_code == 0, result.stderr
    withheld = f"column {len(next(csv.reader(lines))) + 1} (name withheld)"
    assert Import.objects.get().unknown_columns == [withheld, "bench note"]
    assert f"Unknown columns, ignored: {withheld}, bench note" in result.stderr
    assert leaked(["John Smith"], result.stdout, result.stderr, stored_text()) == []


def test_a_file_without_case_ids_names_its_columns_but_no_identifier(world, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text("MRN 1234567,age_years\n1,40\n")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/imports", {"file": handle}
        )
    assert reply.status_code == 422
    assert reply.json()["detail"] == (
        "cases.csv: the header row has no case_uid column (its columns: "
        "'column 1 (name withheld)', 'age_years'); name the columns as the import template does"
    )
