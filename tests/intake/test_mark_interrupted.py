"""Imports whose process died are marked interrupted, also when the new worker has its id."""

import os
import socket
from datetime import timedelta

from django.utils import timezone

from registry3d.intake import services
from registry3d.intake.models import Import, ImportStatus


def an_import(world, tmp_path, **fields) -> Import:
    path = tmp_path / "cases.csv"
    path.write_text("case_uid\nA-1\n")
    batch = services.create_import(world.site_a, path, file_name="cases.csv")
    Import.objects.filter(pk=batch.pk).update(
        status=ImportStatus.IMPORTING, heartbeat_at=timezone.now(), **fields
    )
    return batch


def status(batch) -> str:
    batch.refresh_from_db()
    return batch.status


def test_a_worker_starting_with_the_dead_workers_process_id_marks_its_import(world, tmp_path):
    here = socket.gethostname()
    batch = an_import(world, tmp_path, host=here, pid=os.getpid())
    # Running: this process is alive and may be the one importing.
    assert services.mark_interrupted() == 0 and status(batch) == ImportStatus.IMPORTING
    # Starting: this process runs no import yet, so the import is a predecessor's.
    assert services.mark_interrupted(starting=True) == 1
    assert status(batch) == ImportStatus.INTERRUPTED


def test_an_import_silent_for_ten_minutes_on_another_machine_is_marked(world, tmp_path):
    batch = an_import(world, tmp_path, host="other-machine", pid=1)
    assert services.mark_interrupted() == 0
    Import.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert services.mark_interrupted() == 1
    assert status(batch) == ImportStatus.INTERRUPTED
