"""Upgrading a site renames the files it already keeps and clears identifying names."""

import hashlib
import re
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from registry3d.sites import services
from tests.intake.leaks import files_text, leaked, stored_text

BEFORE = [("intake", "0002_model_files")]
AFTER = [("intake", "0005_model_file_storage_name_required")]
PLANTED = ["Smith", "MRN1234567", "DOB1950", "1950-03-03", "Doe, Jane"]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_schema(transactional_db, settings, tmp_path):
    """The database as it was before the rename, put back to the latest after."""
    settings.VAR_DIR = tmp_path / "var"
    try:
        yield migrate(BEFORE)
    finally:
        migrate(AFTER)


def test_an_upgrade_renames_kept_files_and_clears_identifying_names(old_schema, settings):
    apps = old_schema
    site = services.add_site("SITEA", "Site A Hospital", region="Ohio", facility_type="academic")
    ModelFile = apps.get_model("intake", "ModelFile")
    Import = apps.get_model("intake", "Import")
    folder = Path(settings.VAR_DIR) / "models" / "SITEA"
    folder.mkdir(parents=True)
    kept = {}
    for name, content in (
        ("Smith_John_MRN1234567_DOB1950-03-03.stl", b"solid a\nendsolid a\n"),
        ("heart.stl", b"solid b\nendsolid b\n"),
    ):
        sha256 = hashlib.sha256(content).hexdigest()
        (folder / f"{sha256}.stl").write_bytes(content)
        row = ModelFile.objects.create(
            site_id=site.pk,
            sha256=sha256,
            file_name=name,
            format="stl",
            size=len(content),
            measurement={"file_name": name, "volume_cm3": 1.0},
        )
        kept[name] = (row.pk, content)
    imports = Path(settings.VAR_DIR) / "imports" / "SITEA"
    imports.mkdir(parents=True)
    upload = imports / "20261201120000000000-ab12cd34-Doe_Jane_1950-03-03.csv"
    upload.write_text("case_uid\nA-1\n")
    batch = Import.objects.create(
        site_id=site.pk, file_name="Doe, Jane 1950-03-03.csv", file_path=str(upload)
    )

    apps = migrate(AFTER)

    ModelFile = apps.get_model("intake", "ModelFile")
    for name, (pk, content) in kept.items():
        row = ModelFile.objects.get(pk=pk)
        assert re.fullmatch(r"[0-9a-f]{32}\.stl", row.storage_name)
        assert (folder / row.storage_name).read_bytes() == content
        assert row.file_name == ("heart.stl" if name == "heart.stl" else "")
        assert row.measurement == {"volume_cm3": 1.0}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        row.storage_name for row in ModelFile.objects.all()
    )
    batch = apps.get_model("intake", "Import").objects.get(pk=batch.pk)
    assert batch.file_name == "upload.csv"
    assert re.fullmatch(r"upload-[0-9a-f]{32}\.csv", Path(batch.file_path).name)
    assert Path(batch.file_path).read_text() == "case_uid\nA-1\n"
    assert [p.name for p in imports.iterdir()] == [Path(batch.file_path).name]
    assert leaked(PLANTED, stored_text(), files_text(Path(settings.VAR_DIR))) == []
