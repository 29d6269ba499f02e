"""The kept copy of an import's file goes once nothing will read it again (#15).

The file may hold the identifiers the check refused: a written or refused
import, and a preview on the command line, remove it at once; a web
preview that is never confirmed is removed after a day, as its spool is.
"""

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry3d.cli import main
from registry3d.intake import services as intake
from registry3d.intake.models import Import, ImportMode, ImportStatus
from tests.cases.conftest import printers_for
from tests.intake.import_files import case_rows, write_csv

REFUSED = "Smith_John_MRN1234567"


@pytest.fixture
def own_storage(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


@pytest.fixture
def labels(world):
    return printers_for(world.site_a)


def uploads(own_storage) -> list[str]:
    folder = own_storage / "imports" / "SITEA"
    return sorted(p.name for p in folder.glob("upload-*")) if folder.is_dir() else []


def uploaded(world, path, **options) -> Import:
    """An import of ``path`` as the web and the API keep it: a copy under var/imports."""
    stored = intake.copy_to_imports("SITEA", path)
    return intake.create_import(world.site_a, stored, actor=world.alice, **options)


def with_a_refused_row(labels, tmp_path, count=3):
    rows = case_rows(count, labels)
    rows[1]["case_uid"] = REFUSED
    return write_csv(tmp_path / "lab.csv", rows)


def test_a_written_import_removes_its_kept_file(world, labels, own_storage, tmp_path):
    path = with_a_refused_row(labels, tmp_path)
    batch = uploaded(world, path, mode=ImportMode.VALID_ROWS)
    intake.run_import(batch)
    assert (batch.status, batch.written, batch.invalid) == (ImportStatus.DONE, 2, 1)
    assert uploads(own_storage) == []


def test_a_refused_import_removes_its_kept_file(world, labels, own_storage, tmp_path):
    batch = uploaded(world, with_a_refused_row(labels, tmp_path))
    intake.run_import(batch)
    assert batch.status == ImportStatus.REFUSED
    assert uploads(own_storage) == []


def test_a_preview_on_the_command_line_keeps_no_copy_of_the_file(
    world, labels, own_storage, tmp_path
):
    path = with_a_refused_row(labels, tmp_path)
    result = CliRunner().invoke(main, ["import", str(path), "--site", "SITEA", "--preview"])
    assert result.exit_code == 0, result.stderr
    assert "Preview only: nothing was written." in result.stdout
    assert uploads(own_storage) == []
    assert REFUSED not in result.stdout + result.stderr


def test_an_unconfirmed_web_preview_keeps_its_file_for_a_day(world, labels, own_storage, tmp_path):
    waiting = uploaded(world, write_csv(tmp_path / "a.csv", case_rows(2, labels)))
    intake.check_import(waiting)
    old = uploaded(world, write_csv(tmp_path / "b.csv", case_rows(2, labels, seed=2)))
    intake.check_import(old)
    long_ago = time.time() - intake.SPOOL_KEPT_SECONDS - 60
    for path in (Path(old.file_path), intake.spool_path(old)):
        os.utime(path, (long_ago, long_ago))
    # The next check at the site removes what waited too long.
    later = uploaded(world, write_csv(tmp_path / "c.csv", case_rows(2, labels, seed=3)))
    intake.check_import(later)
    assert Path(waiting.file_path).exists()
    assert not Path(old.file_path).exists()
    intake.write_import(waiting)
    assert waiting.status == ImportStatus.DONE
    intake.write_import(old)
    assert (old.status, old.written) == (ImportStatus.FAILED, 0)
    assert old.message == "The file was removed after a day unconfirmed; upload it again"


def test_a_stopped_import_is_finished_by_running_the_command_again(
    world, labels, own_storage, tmp_path
):
    """A killed import's copy goes at the next check; the rerun copies the file anew."""
    path = write_csv(tmp_path / "lab.csv", case_rows(3, labels))
    stopped = uploaded(world, path)
    intake.check_import(stopped)
    Import.objects.filter(pk=stopped.pk).update(status=ImportStatus.INTERRUPTED)
    result = CliRunner().invoke(main, ["import", str(path), "--site", "SITEA"])
    assert result.exit_code == 0, result.stderr
    assert "Wrote 3 cases" in result.stdout
    assert uploads(own_storage) == []
