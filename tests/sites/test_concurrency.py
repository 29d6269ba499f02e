"""Concurrent changes on PostgreSQL: row locks must neither deadlock nor fork the trail."""

import threading

import pytest
from django.db import connection, connections

from registry3d.audit.services import verify_chain
from registry3d.sites import services
from tests.conftest import make_world


@pytest.fixture
def committed_world(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("row-lock concurrency is a PostgreSQL matter; SQLite runs one writer at a time")
    return make_world()


def test_parallel_membership_changes_neither_deadlock_nor_break_the_chain(committed_world):
    world = committed_world
    people = [services.add_user(f"p{n}@a.example.org", None) for n in range(8)]
    errors = []

    def work(person):
        try:
            services.set_membership(world.site_a, person, "viewer", actor=world.mona)
            services.set_membership(world.site_a, person, "contributor", actor=world.mona)
            services.create_token(world.site_a, person, name="T", scope="write", actor=world.mona)
            services.remove_membership(world.site_a, person, actor=world.mona)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert verify_chain().ok is True
