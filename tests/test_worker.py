"""Background jobs wait in the database until a worker runs them.

The worker manages its own connections and transactions, as it does in
production, so these tests commit for real instead of running inside one
rolled-back transaction.
"""

import pytest
from click.testing import CliRunner
from django.core import mail
from django.db import connection
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from registry3d.cli import main
from tests.conftest import client_for, csrf_post, make_world

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def committed_world(transactional_db):
    return make_world()


@override_settings(TASKS=DATABASE_QUEUE)
def test_an_invitation_waits_in_the_queue_until_the_worker_sends_it(committed_world):
    response = csrf_post(
        client_for(committed_world.mona),
        "/sites/SITEA/members/",
        {"email": "eve@a.example.org", "role": "viewer"},
    )
    assert response.status_code == 302
    assert mail.outbox == []
    job = DBTaskResult.objects.get()
    assert job.status == "READY"
    assert job.args_kwargs["kwargs"]["to"] == ["eve@a.example.org"]

    # A restart: the connection goes away, the job stays.
    connection.close()
    assert DBTaskResult.objects.get().status == "READY"

    result = CliRunner().invoke(main, ["worker", "--batch"])
    assert result.exit_code == 0, result.output
    assert [m.to for m in mail.outbox] == [["eve@a.example.org"]]
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


@override_settings(TASKS=DATABASE_QUEUE)
def test_a_refused_invitation_queues_no_mail(committed_world):
    response = csrf_post(
        client_for(committed_world.mona),
        "/sites/SITEA/members/",
        {"email": "bob@a.example.org", "role": "viewer"},
    )
    assert response.status_code == 400
    assert DBTaskResult.objects.exists() is False


@override_settings(TASKS=DATABASE_QUEUE)
def test_a_worker_with_an_empty_queue_in_batch_mode_just_exits(committed_world):
    result = CliRunner().invoke(main, ["worker", "--batch"])
    assert result.exit_code == 0, result.output
