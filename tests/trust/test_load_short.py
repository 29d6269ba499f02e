"""Many clients at once on the API: no acknowledged write lost or doubled, no refused one kept.

The short form of ``bench/load.py`` for every run of the suite: eight client
threads create, read, list and update cases (with the ETag just read, and
some with a stale one, which must get 412), send writes that must be refused
(422, 409), and one more uploads small CSV files through the import API,
for a few seconds against the live test server, on whatever database the
suite runs on. Then ``tests.trust.load_checks.check`` holds the database to
what the clients were answered (see there), and the audit chain verifies.
"""

import threading
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import override_settings

from registry3d.audit.services import verify_chain
from tests.trust.load_checks import (
    MARK,
    Client,
    Importer,
    Rec,
    Snapshot,
    check,
    data_digest,
    prepare_site,
    report,
    snapshot_orm,
)

SITE = "LOADT"
CLIENTS = 8
SECONDS = 3.0
HOT = 3  # cases every client updates, so their If-Match writes race


@pytest.fixture
def server(transactional_db, live_server):
    """The live server's address; requests one at a time on in-memory SQLite.

    There the server's threads all share the test's one connection (the
    database lives in it), so two requests at once would share one
    transaction; PostgreSQL serves them at once, each on its own connection.
    A file-backed SQLite is what the crash test and production use.
    """
    url = urlsplit(live_server.url)
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        lock = threading.Lock()

        def one_at_a_time(environ, start_response):
            with lock:
                result = app(environ, start_response)
                try:
                    return [b"".join(result)]
                finally:
                    getattr(result, "close", lambda: None)()

        httpd.set_app(one_at_a_time)
    # Each client has its own token; the per-token limit is off as in bench/load.py
    # (429 answers would count as refused writes, which must leave nothing).
    with override_settings(REGISTRY3D_API_WRITES_PER_SECOND=0):
        yield url.hostname, url.port
    httpd.set_app(app)


def test_concurrent_clients_lose_no_acknowledged_write_and_keep_no_refused_one(server):
    host, port = server
    write, read = prepare_site(SITE, CLIENTS + 2, CLIENTS + 1)
    setup = Client(99, host, port, write[-1], read[-1], seed=3)
    hot = [f"HOT-{n}" for n in range(HOT)]
    for uid in hot:
        assert setup.create(uid, "submitted").status == 201
    for kind, status in ((0, 422), (1, 409), (2, 422), (3, 409)):
        setup.invalid(kind)
        assert setup.records[-1].status == status, setup.records[-1]

    clients = [
        Client(n, host, port, write[n], read[n], hot=hot, seed=3, pool=setup.pool)
        for n in range(CLIENTS)
    ]
    importer = Importer(0, host, port, write[CLIENTS], rows=10, seed=3)
    start = time.monotonic()
    end_at = start + SECONDS
    threads = [threading.Thread(target=c.run, args=(end_at,)) for c in clients]
    threads.append(threading.Thread(target=importer.run, args=(end_at, end_at + 60, 4)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - start
    assert not any(thread.is_alive() for thread in threads)

    records = setup.records + importer.records + [r for c in clients for r in c.records]
    print("\n".join(report(records, elapsed)))
    failures, summary = check(records, snapshot_orm(SITE))
    print(dict(summary))
    assert not failures, str(failures)
    # The mix happened: new cases, updates, races refused with 412, reads, imports.
    statuses = {(r.op, r.status) for r in records}
    assert {("create", 201), ("update", 200), ("stale", 412), ("get", 200), ("list", 200)} <= (
        statuses
    )
    assert summary["imports done"] >= 1
    assert summary["acknowledged writes"] >= 30
    assert verify_chain().ok is True


def test_the_checks_catch_lost_doubled_and_stray_writes():
    """The checker itself: a clean history passes, and each kind of damage is named."""

    def data(marker):
        return {MARK: marker, "age_years": 40}

    records = [
        Rec("create", "POST", "A", 201, 1, None, "m1", data_digest(data("m1"))),
        Rec("update", "PATCH", "A", 200, 2, '"2"', "m2", data_digest(data("m2"))),
        Rec("stale", "PUT", "A", 412, None, '"2"', "m3"),
        Rec("get", "GET", "A", 200, 2, '"2"', None, data_digest(data("m2"))),
    ]

    def snapshot():
        return Snapshot(
            cases={"A": (2, "submitted", data("m2"))},
            versions={("A", 1): data("m1"), ("A", 2): data("m2")},
            events=[("case.submitted", "A", {"version": 1}), ("case.updated", "A", {"version": 2})],
        )

    failures, summary = check(records, snapshot())
    assert not failures, str(failures)
    assert (summary["acknowledged writes"], summary["refused writes"]) == (2, 1)

    lost = snapshot()
    lost.cases["A"] = (1, "submitted", data("m1"))
    del lost.versions[("A", 2)]
    lost.events.pop()
    assert "acknowledged writes not stored exactly once" in check(records, lost)[0].counts

    stray = snapshot()
    stray.cases["A"] = (3, "submitted", data("m3"))
    stray.versions[("A", 3)] = data("m3")
    stray.events.append(("case.updated", "A", {"version": 3}))
    assert "refused writes stored" in check(records, stray)[0].counts

    doubled = snapshot()
    doubled.events.append(("case.updated", "A", {"version": 2}))
    assert "versions with several audit events" in check(records, doubled)[0].counts

    gap = snapshot()
    del gap.versions[("A", 1)]
    assert "version gaps" in check(records, gap)[0].counts

    unaudited = snapshot()
    unaudited.events.pop(0)
    assert "versions without an audit event" in check(records, unaudited)[0].counts

    failed = [*records, Rec("update", "PUT", "A", 500, marker="m4")]
    assert "server errors" in check(failed, snapshot())[0].counts
    cut = [*records, Rec("update", "PUT", "A", 0, marker="m4")]
    assert "requests without an answer" in check(cut, snapshot())[0].counts
    assert not check(cut, snapshot(), unanswered_ok=True)[0]
