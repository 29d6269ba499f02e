"""The mesh measurer through its two doors: the command line and the API."""

import json

from click.testing import CliRunner
from django.test import Client

from registry3d.cli import main
from registry3d.intake.mesh import measure
from registry3d.intake.names import find_identifier_in_file_name
from registry3d.sites import services
from tests.intake import mesh_fixtures as files


def test_the_command_prints_the_measurement_as_json(tmp_path):
    path = files.write_stl_binary(
        tmp_path / "two.stl", files.join(files.cube(10), files.cube(10, at=(20.0, 0.0, 0.0)))
    )
    result = CliRunner().invoke(main, ["mesh", "measure", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == json.loads(json.dumps(measure(path)))
    assert json.loads(result.stdout)["suggestions"]["cpt_lines"] == [
        {"code": "0559T", "units": 1},
        {"code": "0560T", "units": 1},
    ]


def test_the_command_suggests_guide_codes_for_a_guide(tmp_path):
    path = files.write_obj(tmp_path / "guide.obj", files.cube(10))
    result = CliRunner().invoke(
        main, ["mesh", "measure", str(path), "--object-type", "anatomic_guide"]
    )
    assert json.loads(result.stdout)["suggestions"]["cpt_lines"] == [{"code": "0561T", "units": 1}]


def test_the_command_refuses_a_truncated_stl_with_one_line(tmp_path):
    path = files.write_stl_binary(tmp_path / "cut.stl", files.cube(10))
    with open(path, "r+b") as out:
        out.truncate(600)
    result = CliRunner().invoke(main, ["mesh", "measure", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: cut.stl: the binary STL header declares 12 triangles (684 bytes) but the "
        "file has 600 bytes; it is truncated or not an STL file\n"
    )


def test_the_command_refuses_a_missing_file_with_one_line(tmp_path):
    result = CliRunner().invoke(main, ["mesh", "measure", str(tmp_path / "gone.stl")])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: gone.stl: the file cannot be read (No such file or directory)\n"
    )


def test_the_api_measures_an_upload_and_needs_a_write_token(world, tmp_path):
    path = files.write_3mf(tmp_path / "cube.3mf", files.cube(10))
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    _, read = services.create_token(world.site_a, world.bob, name="R", scope="read")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/mesh", {"file": handle}
        )
    assert reply.status_code == 200, reply.content
    # The site keeps no model files: measured, not kept.
    assert reply.json() == {**json.loads(json.dumps(measure(path))), "kept": None}
    assert reply.json()["volume_cm3"] == 1.0
    with path.open("rb") as handle:
        refused = Client(HTTP_AUTHORIZATION=f"Bearer {read}").post(
            "/api/v1/intake/mesh", {"file": handle}
        )
    assert refused.status_code == 403


def test_the_api_suggests_guide_codes_when_asked(world, tmp_path):
    path = files.write_ply(
        tmp_path / "guides.ply", files.join(files.cube(10), files.cube(10, at=(0.0, 0.0, 20.0)))
    )
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/mesh", {"file": handle, "object_type": "anatomic_guide"}
        )
    assert reply.json()["suggestions"]["cpt_lines"] == [
        {"code": "0561T", "units": 1},
        {"code": "0562T", "units": 1},
    ]


def test_the_api_answers_a_bad_mesh_with_422(world, tmp_path):
    path = tmp_path / "scan.ply"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/mesh", {"file": handle}
        )
    assert reply.status_code == 422
    assert reply["Content-Type"] == "application/problem+json"
    assert reply.json()["detail"] == "scan.ply: not a PLY file (it does not start with 'ply')"
    assert reply.json()["errors"] == [
        {
            "field": "file",
            "code": "bad_format",
            "message": "scan.ply: not a PLY file (it does not start with 'ply')",
        }
    ]


def test_the_command_never_prints_a_file_name_that_looks_like_an_identifier(tmp_path):
    path = files.write_stl_binary(
        tmp_path / "Smith_John_MRN1234567_DOB1950-03-03.stl", files.cube(10)
    )
    result = CliRunner().invoke(main, ["mesh", "measure", str(path)])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["file_name"], answer["withheld"]) == (
        "model.stl",
        ["file_name: looks like " + find_identifier_in_file_name(path.name)],
    )
    with open(path, "r+b") as out:
        out.truncate(600)
    refused = CliRunner().invoke(main, ["mesh", "measure", str(path)])
    assert refused.stderr == (
        "Error: model.stl: the binary STL header declares 12 triangles (684 bytes) but the "
        "file has 600 bytes; it is truncated or not an STL file\n"
    )
    for planted in ("Smith", "MRN1234567", "1950-03-03"):
        assert planted not in result.stdout + result.stderr + refused.stdout + refused.stderr


def test_the_api_answers_an_upload_named_like_an_identifier_as_model(world, tmp_path):
    path = files.write_obj(tmp_path / "john.smith@example.org.obj", files.cube(10))
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    with path.open("rb") as handle:
        reply = Client(HTTP_AUTHORIZATION=f"Bearer {write}").post(
            "/api/v1/intake/mesh", {"file": handle}
        )
    assert reply.status_code == 200, reply.content
    assert (reply.json()["file_name"], reply.json()["withheld"]) == (
        "model.obj",
        ["file_name: looks like an e-mail address"],
    )
    assert "john.smith" not in reply.content.decode()
