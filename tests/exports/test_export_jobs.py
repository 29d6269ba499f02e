"""An export asked on the page waits in the job queue, the worker writes it, the page says how.

The worker manages its own connections and transactions, as in production,
so these tests commit for real instead of running inside one rolled-back
transaction.
"""

import pytest
from click.testing import CliRunner
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from registry3d.cli import main
from registry3d.exports import services
from registry3d.exports.models import Export
from tests.conftest import client_for, csrf_post, make_world
from tests.test_worker import DATABASE_QUEUE


@pytest.fixture
def world(transactional_db):
    """The sites and people, committed (the registry's `exportable` cases build on them)."""
    return make_world()


def status_part(client, export):
    response = client.get(f"/exports/{export.code}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


@override_settings(TASKS=DATABASE_QUEUE)
def test_a_queued_export_polls_until_the_worker_has_written_it(exportable, world):
    client = client_for(world.dan)
    response = csrf_post(client, "/exports/", {"format": "csv"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert (export.status, DBTaskResult.objects.get().status) == ("queued", "READY")
    waiting = status_part(client, export)
    assert 'data-status="queued"' in waiting and 'hx-trigger="every 1s"' in waiting
    assert "You can leave this page and come back." in waiting
    assert client.get(f"/exports/{export.code}/download/").status_code == 404

    result = CliRunner().invoke(main, ["worker", "--batch"])
    assert result.exit_code == 0, result.output
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    done = status_part(client, export)
    assert 'data-status="done"' in done and "hx-trigger" not in done
    assert "14 cases" in done
    download = client.get(f"/exports/{export.code}/download/")
    assert download.status_code == 200
    # Running the job again leaves the finished export as it is.
    export.refresh_from_db()
    before = (export.finished_at, export.manifest["files"])
    again = services.run_export(export)
    assert (again.finished_at, again.manifest["files"]) == before


@override_settings(TASKS=DATABASE_QUEUE)
def test_a_failed_export_says_why_and_a_rerun_finishes_it(exportable, world, monkeypatch):
    client = client_for(world.dan)
    csrf_post(client, "/exports/", {"format": "parquet"})
    export = Export.objects.get()
    real = services.write_export

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services, "write_export", full_disk)
    result = CliRunner().invoke(main, ["worker", "--batch"])
    assert result.exit_code == 0, result.output
    assert DBTaskResult.objects.get().status == "FAILED"
    failed = status_part(client, export)
    assert 'data-status="failed"' in failed and "No space left on device" in failed
    assert "hx-trigger" not in failed
    assert client.get(f"/exports/{export.code}/download/").status_code == 404
    assert not list(services.exports_folder().glob("export-*"))  # no half-written folder

    monkeypatch.setattr(services, "write_export", real)
    export.refresh_from_db()
    assert services.run_export(export).status == "done"
    assert 'data-status="done"' in status_part(client, export)
