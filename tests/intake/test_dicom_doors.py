"""The DICOM reader through its two doors: the command line and the API."""

import json
import logging

import pytest
from click.testing import CliRunner
from django.test import Client

from registry3d.cli import main
from registry3d.intake.dicom import DicomError, read_dicom
from registry3d.lib.identifiers import find_identifier
from registry3d.sites import services
from tests.intake.fixtures_dicom import planted_strings, write_ct_series, write_study, zip_folder
from tests.intake.leaks import leaked


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


# Identifiers typed into the text attributes the reader returns, and into
# the ones it never returns, in forms the identifier screen knows.
TYPED = {
    "SeriesDescription": "CTA Patient John Smith",
    "StudyDescription": "Cardiac CT for Mrs Jane Doe SSN 123-45-6789",
    "Manufacturer": "john.smith@example.org",
    "ManufacturerModelName": "Call (617) 555-0100",
    "BodyPartExamined": "MRN 1234567",
    "ProtocolName": "CorCTA DOB 03/03/1950",
}
TYPED_PARTS = [
    *TYPED.values(),
    *("John Smith", "Jane Doe", "123-45-6789", "1234567", "555-0100", "03/03/1950"),
]
NAMES = ["Smith_John_MRN1234567_DOB1950-03-03", "Doe, Jane 1950-03-03", "john.smith@example.org"]


def withheld_for(**values: str) -> list[str]:
    """The exact notes the answer gives, in the screen's words for each kind."""
    return [f"{key}: looks like {find_identifier(value)}" for key, value in values.items()]


def test_the_api_withholds_each_text_attribute_that_looks_like_an_identifier(world, tmp_path):
    write_ct_series(tmp_path / "study" / "S0003", **TYPED)
    archive = zip_folder(tmp_path / "study", tmp_path / "Smith_John_MRN1234567_DOB1950-03-03.zip")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with archive.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/dicom", {"file": handle}
        )
    assert reply.status_code == 200, reply.content
    (series,) = reply.json()["series"]
    assert (
        series["series_description"],
        series["manufacturer"],
        series["model"],
        series["body_part"],
    ) == (None, None, None, None)
    assert series["withheld"] == withheld_for(
        manufacturer=TYPED["Manufacturer"],
        model=TYPED["ManufacturerModelName"],
        body_part=TYPED["BodyPartExamined"],
        series_description=TYPED["SeriesDescription"],
    )
    assert series["withheld"][0] == "manufacturer: looks like an e-mail address"
    # What is not an identifier is kept, and the suggestion still reads the text.
    assert (series["modality"], series["slice_thickness_mm"], series["exam_year"]) == (
        "CT",
        0.75,
        2025,
    )
    assert series["suggested_modality"] == "cta"
    answer = reply.content.decode()
    assert leaked([*TYPED_PARTS, *NAMES, "Smith", "DOB1950"], answer) == []
    assert leaked(planted_strings(), answer) == []


def test_the_command_withholds_the_same_attributes_and_prints_no_identifier(tmp_path):
    write_ct_series(tmp_path / "Smith_John_MRN1234567" / "S0003", **TYPED)
    result = CliRunner().invoke(main, ["dicom", "read", str(tmp_path / "Smith_John_MRN1234567")])
    assert result.exit_code == 0, result.stderr
    (series,) = json.loads(result.stdout)["series"]
    assert series["withheld"] == withheld_for(
        manufacturer=TYPED["Manufacturer"],
        model=TYPED["ManufacturerModelName"],
        body_part=TYPED["BodyPartExamined"],
        series_description=TYPED["SeriesDescription"],
    )
    assert leaked([*TYPED_PARTS, "Smith", "MRN1234567"], result.stdout, result.stderr) == []


def test_a_series_with_plain_text_keeps_it_and_withholds_nothing(tmp_path):
    write_ct_series(tmp_path / "S0003")
    (series,) = read_dicom(tmp_path / "S0003")["series"]
    assert (series["series_description"], series["manufacturer"], series["withheld"]) == (
        "CorCTA 0.75 Bv40 75%",
        "SIEMENS",
        [],
    )


@pytest.mark.parametrize("name", NAMES)
def test_an_upload_named_like_an_identifier_is_not_named_in_the_error(world, tmp_path, name):
    path = tmp_path / f"{name}.dcm"
    path.write_text("not an image")
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/dicom", {"file": handle}
        )
    assert reply.status_code == 422
    assert reply.json()["detail"] == (
        "[file name withheld]: not a DICOM file (no DICM marker at byte 128) "
        "and not a ZIP of DICOM files"
    )


def test_files_and_zip_members_named_like_identifiers_are_not_named_anywhere(tmp_path, caplog):
    folder = tmp_path / "study"
    paths = write_ct_series(folder / "Smith_John_MRN1234567", count=2)
    (folder / "Doe, Jane 1950-03-03.txt").write_text("a note, not DICOM")
    with caplog.at_level(logging.DEBUG, logger="registry3d.intake.dicom"):
        read_dicom(folder)
        with open(paths[1], "r+b") as out:
            out.truncate(out.seek(0, 2) - 100)
        archive = zip_folder(folder, tmp_path / "series.zip")
        with pytest.raises(DicomError) as refused:
            read_dicom(archive, name="series.zip")
    result = CliRunner().invoke(main, ["dicom", "read", str(folder)])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: [file name withheld]: the DICOM file is truncated; copy it again from the source\n"
    )
    assert str(refused.value) == (
        "series.zip: [file name withheld]: the DICOM file is truncated; "
        "copy it again from the source"
    )
    assert "[file name withheld]: not DICOM, skipped" in caplog.text
    assert leaked(["Smith", "MRN1234567", "Doe, Jane", "1950-03-03"], caplog.text) == []
