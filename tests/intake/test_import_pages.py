"""The web upload: preview with problems, the problem list, writing, and who may do it."""

import pytest

from registry3d.cases.models import Case
from registry3d.intake.models import Import
from tests.cases.conftest import printers_for
from tests.conftest import client_for, csrf_post
from tests.intake.import_files import case_rows, write_csv


@pytest.fixture
def upload(world, tmp_path):
    labels = printers_for(world.site_a)
    rows = case_rows(5, labels)
    rows[1]["age_years"] = "forty"
    rows[3]["laterality"] = ""
    rows[3]["anatomic_parts_1_region"] = "upper_extremity"
    rows[3]["anatomic_parts_1_laterality"] = ""
    path = write_csv(tmp_path / "lab.csv", rows)
    return path, rows


def post_file(client, path, **fields):
    with path.open("rb") as handle:
        return csrf_post(client, "/sites/SITEA/imports/", {"file": handle, **fields})


def test_an_upload_is_checked_and_previewed_with_its_problems(world, upload):
    path, rows = upload
    client = client_for(world.alice)
    response = post_file(client, path, mode="all-or-nothing", default_status="submitted")
    assert response.status_code == 302
    batch = Import.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="checked"' in page
    assert '<strong data-count="rows">5</strong> rows (csv, comma-separated)' in page
    assert (
        '<strong data-count="invalid">1</strong> invalid' in page
        or '<strong data-count="invalid">2</strong> invalid' in page
    )
    assert (
        f"Row 3 ({rows[1]['case_uid']}), age_years: Patient age (years): the value is not valid"
        in page
    )
    assert "forty" not in page
    assert "Nothing can be written in all-or-nothing mode" in page
    problems = client.get(f"/sites/SITEA/imports/{batch.code}/problems.csv")
    text = b"".join(problems.streaming_content).decode()
    assert text.splitlines()[0] == "row,case_uid,element,code,message"
    assert f"3,{rows[1]['case_uid']},age_years,wrong_type," in text
    assert "forty" not in text
    assert Case.objects.exists() is False


def test_valid_rows_mode_writes_the_good_rows_after_the_preview(world, upload):
    path, _rows = upload
    client = client_for(world.alice)
    response = post_file(client, path, mode="valid-rows", default_status="submitted")
    batch = Import.objects.get()
    written = csrf_post(client, f"/sites/SITEA/imports/{batch.code}/write/")
    assert written.status_code == 302
    batch.refresh_from_db()
    assert batch.status == "done"
    assert Case.objects.filter(site=world.site_a).count() == batch.rows - batch.invalid
    page = client.get(response["Location"]).content.decode()
    assert f'<strong data-count="written">{batch.written}</strong> cases written' in page


def test_a_file_that_is_not_a_table_is_refused_next_to_the_field(world, tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_bytes(b"DICM" * 10)
    response = post_file(
        client_for(world.alice), path, mode="all-or-nothing", default_status="submitted"
    )
    assert response.status_code == 400
    assert "Choose a .csv or .xlsx file" in response.content.decode()
    assert Import.objects.exists() is False


def test_other_sites_and_viewers_cannot_use_or_see_imports(world, upload):
    path, _rows = upload
    post_file(client_for(world.alice), path, mode="valid-rows", default_status="submitted")
    batch = Import.objects.get()
    carol, bob = client_for(world.carol), client_for(world.bob)
    for url in (
        "/sites/SITEA/imports/",
        f"/sites/SITEA/imports/{batch.code}/",
        f"/sites/SITEA/imports/{batch.code}/problems.csv",
        f"/sites/SITEB/imports/{batch.code}/",
    ):
        assert carol.get(url).status_code == 404, url
    assert csrf_post(carol, f"/sites/SITEA/imports/{batch.code}/write/").status_code == 404
    assert csrf_post(carol, f"/sites/SITEB/imports/{batch.code}/write/").status_code == 404
    assert bob.get("/sites/SITEA/imports/").status_code == 403
    assert Case.objects.exists() is False


def test_site_software_uploads_a_file_through_the_api_and_follows_the_job(world, upload):
    from django.test import Client

    from registry3d.sites import services

    path, _rows = upload
    _, raw = services.create_token(world.site_a, world.alice, name="Lab", scope="write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with path.open("rb") as handle:
        reply = client.post("/api/v1/imports", {"file": handle, "mode": "valid-rows"})
    assert reply.status_code == 202, reply.content
    job = reply.json()
    assert (job["status"], job["rows"], job["file_name"]) == ("done", 5, "lab.csv")
    assert job["written"] == 5 - job["invalid"]
    assert any(p["element"] == "age_years" for p in job["problems"])
    followed = client.get(f"/api/v1/imports/{job['id']}")
    assert followed.json()["written"] == job["written"]
    _, other = services.create_token(world.site_b, world.carol, name="B", scope="read")
    hidden = Client(HTTP_AUTHORIZATION=f"Bearer {other}").get(f"/api/v1/imports/{job['id']}")
    assert hidden.status_code == 404
    assert (
        Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/imports/nonsense").status_code
        == 404
    )
