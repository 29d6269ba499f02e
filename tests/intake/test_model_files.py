"""Kept 3D model files: only when the site keeps them, once by content, never across sites."""

import hashlib
import json
import re

import pytest
from django.test import Client

from registry3d.audit.models import AuditEvent
from registry3d.intake import model_files, names
from registry3d.intake.models import ModelFile
from registry3d.sites import services
from tests.conftest import client_for, csrf_post
from tests.intake import mesh_fixtures as files
from tests.intake.leaks import files_text, leaked, stored_text


@pytest.fixture(autouse=True)
def own_storage(settings, tmp_path):
    """Each test keeps its files in a folder of its own."""
    settings.VAR_DIR = tmp_path / "var"


def upload(token, path, **extra):
    with path.open("rb") as handle:
        return Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
            "/api/v1/intake/mesh", {"file": handle, **extra}
        )


def keep_files(world):
    response = csrf_post(
        client_for(world.mona),
        "/sites/SITEA/settings/",
        {"action": "model_files", "keep_model_files": "on"},
    )
    assert response.status_code == 302
    world.site_a.refresh_from_db()
    assert world.site_a.keep_model_files is True


def test_a_site_that_keeps_no_files_stores_nothing(world, tmp_path):
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    reply = upload(write, files.write_stl_binary(tmp_path / "cube.stl", files.cube(10)))
    assert reply.status_code == 200 and reply.json()["kept"] is None
    assert ModelFile.objects.count() == 0
    assert not model_files.folder(world.site_a).exists()


def test_a_kept_file_is_stored_once_by_content_and_comes_back_whole(world, tmp_path):
    keep_files(world)
    assert AuditEvent.objects.filter(
        action="site.settings_changed", changes_json__contains="keep_model_files"
    ).exists()
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    _, read = services.create_token(world.site_a, world.bob, name="R", scope="read")
    path = files.write_stl_binary(tmp_path / "heart.stl", files.cube(10))
    content = path.read_bytes()
    first = upload(write, path).json()
    again = upload(write, path).json()
    assert (
        first["kept"]
        == again["kept"]
        == {
            "code": first["kept"]["code"],
            "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content),
        }
    )
    kept = ModelFile.objects.get()
    assert (kept.file_name, kept.format, kept.measurement["volume_cm3"]) == (
        "heart.stl",
        "stl",
        1.0,
    )
    assert model_files.path_of(kept).read_bytes() == content
    assert AuditEvent.objects.filter(action="model_file.kept").count() == 1
    listed = Client(HTTP_AUTHORIZATION=f"Bearer {read}").get("/api/v1/intake/models").json()
    assert [f["sha256"] for f in listed] == [kept.sha256]
    download = Client(HTTP_AUTHORIZATION=f"Bearer {read}").get(f"/api/v1/intake/models/{kept.code}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == content
    assert download["Content-Disposition"] == f'attachment; filename="{kept.code}.stl"'


def test_a_file_over_the_limit_is_measured_not_kept(world, tmp_path, settings):
    keep_files(world)
    settings.REGISTRY3D_MODEL_FILE_MAX_BYTES = 100
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    reply = upload(write, files.write_stl_binary(tmp_path / "big.stl", files.cube(10))).json()
    assert reply["kept"] is None and reply["volume_cm3"] == 1.0
    assert reply["notes"][-1] == (
        "Not kept: the file is 684 bytes, over the 100 bytes a kept file may be"
    )
    assert ModelFile.objects.count() == 0


def test_a_bad_file_is_refused_and_nothing_is_kept(world, tmp_path):
    keep_files(world)
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    path = files.write_stl_binary(tmp_path / "cut.stl", files.cube(10))
    with open(path, "r+b") as out:
        out.truncate(600)
    assert upload(write, path).status_code == 422
    assert ModelFile.objects.count() == 0
    folder = model_files.folder(world.site_a)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_another_site_never_sees_a_kept_file(world, tmp_path):
    keep_files(world)
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    upload(write, files.write_obj(tmp_path / "guide.obj", files.cube(10)))
    kept = ModelFile.objects.get()
    _, theirs = services.create_token(world.site_b, world.carol, name="C", scope="write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {theirs}")
    assert client.get("/api/v1/intake/models").json() == []
    assert client.get(f"/api/v1/intake/models/{kept.code}").status_code == 404
    # A code that is no UUID is as unknown as another site's.
    mine = Client(HTTP_AUTHORIZATION=f"Bearer {write}")
    assert mine.get("/api/v1/intake/models/null,null").status_code == 404
    # Only the site's managers turn keeping on.
    for person, status in ((world.carol, 404), (world.alice, 403)):
        response = csrf_post(
            client_for(person),
            "/sites/SITEA/settings/",
            {"action": "model_files", "keep_model_files": ""},
        )
        assert response.status_code == status
    world.site_a.refresh_from_db()
    assert world.site_a.keep_model_files is True


IDENTIFYING_NAMES = [
    "Smith_John_MRN1234567_DOB1950-03-03.stl",
    "john.smith@example.org.stl",
    "Doe, Jane 1950-03-03.stl",
]
PLANTED = ["Smith", "MRN1234567", "DOB1950", "1950-03-03", "john.smith@", "Doe, Jane"]


@pytest.mark.parametrize("name", IDENTIFYING_NAMES)
def test_a_file_named_like_an_identifier_is_kept_under_no_name_at_all(
    world, tmp_path, settings, name
):
    keep_files(world)
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    _, read = services.create_token(world.site_a, world.bob, name="R", scope="read")
    path = files.write_stl_binary(tmp_path / name, files.cube(10))
    reply = upload(write, path)
    assert reply.status_code == 200, reply.content
    answer = reply.json()
    kind = names.find_identifier_in_file_name(name)
    assert (answer["file_name"], answer["withheld"]) == (
        "model.stl",
        [f"file_name: looks like {kind}"],
    )
    kept = ModelFile.objects.get()
    assert kept.file_name == ""
    assert re.fullmatch(r"[0-9a-f]{32}\.stl", kept.storage_name)
    assert model_files.path_of(kept).read_bytes() == path.read_bytes()
    listed = Client(HTTP_AUTHORIZATION=f"Bearer {read}").get("/api/v1/intake/models")
    assert [f["file_name"] for f in listed.json()] == [f"model-{str(kept.code)[:8]}.stl"]
    download = Client(HTTP_AUTHORIZATION=f"Bearer {read}").get(f"/api/v1/intake/models/{kept.code}")
    assert download["Content-Disposition"] == f'attachment; filename="{kept.code}.stl"'
    event = AuditEvent.objects.get(action="model_file.kept")
    assert json.loads(event.changes_json) == {
        "code": str(kept.code),
        "sha256": kept.sha256,
        "bytes": kept.size,
    }
    found = leaked(
        PLANTED,
        reply.content.decode(),
        listed.content.decode(),
        str(download.headers),
        stored_text(),
        files_text(settings.VAR_DIR),
    )
    assert found == []


def test_a_plain_name_is_shown_to_its_own_site_alone_and_never_audited(world, tmp_path, settings):
    keep_files(world)
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    _, read = services.create_token(world.site_a, world.bob, name="R", scope="read")
    path = files.write_stl_binary(tmp_path / "left-femur-guide.stl", files.cube(10))
    answer = upload(write, path).json()
    assert (answer["file_name"], answer["withheld"]) == ("left-femur-guide.stl", [])
    kept = ModelFile.objects.get()
    assert kept.file_name == "left-femur-guide.stl"
    assert "file_name" not in kept.measurement
    assert [p.name for p in model_files.folder(world.site_a).iterdir()] == [kept.storage_name]
    mine = Client(HTTP_AUTHORIZATION=f"Bearer {read}")
    assert [f["file_name"] for f in mine.get("/api/v1/intake/models").json()] == [
        "left-femur-guide.stl"
    ]
    _, theirs = services.create_token(world.site_b, world.carol, name="C", scope="read")
    other = Client(HTTP_AUTHORIZATION=f"Bearer {theirs}")
    assert other.get("/api/v1/intake/models").json() == []
    refused = other.get(f"/api/v1/intake/models/{kept.code}")
    assert refused.status_code == 404
    assert refused.json()["detail"] == "No model file with this code at this site"
    audit = "\n".join(e.changes_json for e in AuditEvent.objects.all())
    assert "left-femur-guide" not in audit
    assert "left-femur-guide" not in files_text(settings.VAR_DIR)


def test_a_file_kept_twice_by_racing_requests_leaves_one_file_on_disk(world, tmp_path, monkeypatch):
    keep_files(world)
    _, write = services.create_token(world.site_a, world.alice, name="W", scope="write")
    path = files.write_stl_binary(tmp_path / "heart.stl", files.cube(10))
    first = upload(write, path).json()["kept"]
    # The second request looked before the first one's row existed.
    real_filter = ModelFile.objects.filter
    monkeypatch.setattr(
        ModelFile.objects,
        "filter",
        lambda **kw: real_filter(pk=None) if "sha256" in kw else real_filter(**kw),
    )
    again = upload(write, path).json()["kept"]
    assert again == first
    assert len(list(model_files.folder(world.site_a).iterdir())) == 1
