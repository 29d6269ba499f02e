"""The DICOM reader through its two doors: the command line and the API."""

import json

from click.testing import CliRunner
from django.test import Client

from registry3d.cli import main
from registry3d.intake.dicom import read_dicom
from registry3d.sites import services
from tests.intake.fixtures_dicom import planted_strings, write_study, zip_folder


def test_the_command_prints_json_without_any_planted_identifier(tmp_path):
    folder = write_study(tmp_path / "study")
    result = CliRunner().invoke(main, ["dicom", "read", str(folder)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == json.loads(json.dumps(read_dicom(folder)))
    for planted in planted_strings():
        assert planted not in result.stdout


def test_the_command_refuses_a_non_dicom_file_with_one_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    result = CliRunner().invoke(main, ["dicom", "read", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "notes.txt" in result.stderr


def test_the_api_reads_an_uploaded_zip_and_needs_a_write_token(world, tmp_path):
    archive = zip_folder(write_study(tmp_path / "study"), tmp_path / "series.zip")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    _, read = services.create_token(world.site_a, world.bob, name="R", scope="read")
    with archive.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/dicom", {"file": handle}
        )
    assert reply.status_code == 200, reply.content
    assert reply.json() == json.loads(json.dumps(read_dicom(archive)))
    for planted in planted_strings():
        assert planted not in reply.content.decode()
    with archive.open("rb") as handle:
        refused = Client(HTTP_AUTHORIZATION=f"Bearer {read}").post(
            "/api/v1/intake/dicom", {"file": handle}
        )
    assert refused.status_code == 403


def test_the_api_answers_a_non_dicom_upload_with_422(world, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text("case_uid\nA-1\n")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/dicom", {"file": handle}
        )
    assert reply.status_code == 422
    assert reply["Content-Type"] == "application/problem+json"
    assert "cases.csv" in reply.json()["detail"]
