"""The import's fast path: the spool of checked rows, and the bulk write on each database.

These run on SQLite and on PostgreSQL (where new cases are written with
COPY); each checks the rows stored against the rules of the one-case write
path, not against the bulk code itself.
"""

import os
import time

import pytest

from registry3d.audit.models import AuditEvent
from registry3d.audit.services import verify_chain
from registry3d.cases import services as cases
from registry3d.cases.models import Case, CaseVersion
from registry3d.dictionary import registry
from registry3d.dictionary.flat import FlatReader
from registry3d.intake import services as intake
from registry3d.intake.models import Import, ImportMode, ImportStatus
from registry3d.lib.pseudonym import patient_key
from registry3d.sites import services as sites
from tests.cases.conftest import printers_for
from tests.intake.import_files import case_rows, write_csv, write_xlsx


@pytest.fixture
def labels(world):
    return printers_for(world.site_a)


def checked(world, path, **options):
    batch = intake.create_import(world.site_a, path, actor=world.alice, **options)
    return intake.check_import(batch)


def test_the_check_spools_the_valid_rows_and_the_write_removes_the_spool(world, labels, tmp_path):
    rows = case_rows(7, labels)
    rows[3]["age_years"] = "forty"
    batch = checked(world, write_csv(tmp_path / "a.csv", rows), mode=ImportMode.VALID_ROWS)
    spool = intake.spool_path(batch)
    assert spool.exists()
    assert not spool.with_name(spool.name + ".partial").exists()
    assert [row.case_uid for _ordinal, row in intake._Spool(batch).rows()] == [
        r["case_uid"] for i, r in enumerate(rows) if i != 3
    ]
    intake.write_import(batch)
    assert batch.status == ImportStatus.DONE and batch.written == 6
    assert not spool.exists()


def test_a_refused_import_removes_its_spool(world, labels, tmp_path):
    rows = case_rows(3, labels)
    rows[1]["sex"] = "robot"
    batch = checked(world, write_csv(tmp_path / "b.csv", rows))
    assert intake.spool_path(batch).exists()
    intake.write_import(batch)
    assert batch.status == ImportStatus.REFUSED
    assert not intake.spool_path(batch).exists()
    assert not Case.objects.exists()


def test_without_its_spool_the_write_reads_and_checks_the_file_again(world, labels, tmp_path):
    batch = checked(world, write_csv(tmp_path / "c.csv", case_rows(4, labels)))
    intake.spool_path(batch).unlink()
    intake.write_import(batch)
    assert batch.status == ImportStatus.DONE and batch.written == 4
    assert Case.objects.filter(site=world.site_a).count() == 4


def test_a_printer_removed_after_the_check_makes_the_write_check_again(world, labels, tmp_path):
    rows = case_rows(6, labels)
    batch = checked(world, write_csv(tmp_path / "d.csv", rows), mode=ImportMode.VALID_ROWS)
    assert batch.invalid == 0
    gone = labels["material_jetting"]
    world.site_a.printers.filter(label=gone).delete()
    intake.write_import(batch)
    # Rows that name the removed printer are no longer valid: the spool,
    # checked against the old inventory, was not used.
    using = [r["case_uid"] for r in rows if gone in r.values()]
    assert using, "the example rows should use every printer"
    assert batch.written == len(rows) - len(using)
    assert not Case.objects.filter(case_uid__in=using).exists()


def test_stale_spools_are_removed_and_waiting_ones_kept(world, labels, tmp_path):
    waiting = checked(world, write_csv(tmp_path / "e.csv", case_rows(2, labels)))
    old = checked(world, write_csv(tmp_path / "f.csv", case_rows(2, labels, seed=2)))
    finished = checked(world, write_csv(tmp_path / "g.csv", case_rows(2, labels, seed=3)))
    Import.objects.filter(pk=finished.pk).update(status=ImportStatus.INTERRUPTED)
    long_ago = time.time() - intake.SPOOL_KEPT_SECONDS - 60
    os.utime(intake.spool_path(old), (long_ago, long_ago))
    leftover = intake.spool_path(waiting).with_name("import-unknown.rows.partial")
    leftover.write_bytes(b"")
    assert intake.remove_stale_spools(world.site_a) == 3
    assert intake.spool_path(waiting).exists()
    assert not intake.spool_path(old).exists()
    assert not intake.spool_path(finished).exists()
    assert not leftover.exists()
    # An import whose spool was removed still writes, from its file.
    intake.write_import(old)
    assert old.written == 2


def test_an_xlsx_import_takes_the_same_path(world, labels, tmp_path):
    rows = case_rows(4, labels, seed=4)
    batch = checked(world, write_xlsx(tmp_path / "h.xlsx", rows))
    assert intake.spool_path(batch).exists()
    intake.write_import(batch)
    assert batch.written == 4
    reader = FlatReader(registry.current().dictionary)
    for row in rows:
        _record, data, problems = reader.read(row)
        assert not problems
        case = Case.objects.get(case_uid=row["case_uid"])
        assert case.data == cases.normalise(data)


def test_new_cases_of_a_bulk_write_are_stored_as_one_case_write_would_store_them(world, labels):
    """Columns, versions, changes and audit of the bulk write match save_case's."""
    dictionary = registry.current().dictionary
    reader = FlatReader(dictionary)
    rows = case_rows(30, labels, seed=5)
    bulk = []
    for number, row in enumerate(rows, start=2):
        _record, data, _problems = reader.read(row)
        status = "draft" if number % 3 == 0 else "submitted"
        key = patient_key("SITEA", f"MRN{number}") if number % 4 == 0 else None
        bulk.append(cases.BulkRow(number, row["case_uid"], cases.normalise(data), status, key))
    result = cases.save_cases_bulk(world.site_a, bulk, actor=world.alice, note="import X")
    assert (result.new, result.changed, result.unchanged, result.refused) == (30, 0, 0, [])
    site_b = world.site_b
    printers_for(site_b)
    for row in bulk:
        case = Case.objects.get(site=world.site_a, case_uid=row.case_uid)
        one = cases.save_case(
            site_b,
            case_uid=row.case_uid,
            data=row.data,
            status=row.status,
            patient_key=row.patient_key,
            actor=world.alice,
            note="import X",
        ).case
        for name in (
            "data",
            "status",
            "patient_key",
            "dictionary_version",
            "version",
            "case_month",
            "object_type",
            "organ_system",
            "technology",
            "cpt_codes",
            "created_by_id",
            "updated_by_id",
            "withdrawn_reason",
        ):
            assert getattr(case, name) == getattr(one, name), name
        assert (case.submitted_at is None) == (one.submitted_at is None)
        assert case.code != one.code
        (version,) = case.versions.all()
        one_version = one.versions.get()
        assert version.changes == one_version.changes == {}
        assert version.changed == one_version.changed == cases.differences({}, row.data)
        assert version.data == case.data
        assert (version.version, version.status, version.note, version.via) == (
            1,
            row.status,
            "import X",
            "import X",
        )
        assert version.changed_by_id == world.alice.pk
        assert version.site_id == world.site_a.pk
    event = AuditEvent.objects.get(action="cases.imported")
    assert sorted(event.changes["cases"]) == sorted(r.case_uid for r in bulk)
    assert event.changes["new"] == 30
    assert verify_chain().ok


def test_the_bulk_write_keeps_the_rules_for_existing_cases(world, labels):
    reader = FlatReader(registry.current().dictionary)
    rows = case_rows(5, labels, seed=6)
    datas = [cases.normalise(reader.read(r)[1]) for r in rows]
    uids = [r["case_uid"] for r in rows]
    first = [
        cases.BulkRow(n, uid, d, "submitted")
        for n, (uid, d) in enumerate(zip(uids, datas, strict=True))
    ]
    first[1].status = "draft"
    cases.save_cases_bulk(world.site_a, first, actor=world.alice, note="import 1")
    cases.withdraw_case(Case.objects.get(case_uid=uids[0]), "entered twice", actor=world.alice)
    again = [
        cases.BulkRow(n, uid, dict(d), "draft")
        for n, (uid, d) in enumerate(zip(uids, datas, strict=True))
    ]
    again[1].status = "submitted"  # draft → submitted
    again[2].data["turnaround_days"] = 17  # a change: a new version
    new_row = cases.BulkRow(9, "NEW-1", datas[0], "submitted")
    result = cases.save_cases_bulk(
        world.site_a, [*again, new_row], actor=world.alice, note="import 2"
    )
    assert (result.new, result.changed, result.unchanged) == (1, 2, 2)
    assert [(n, uid, p.code) for n, uid, p in result.refused] == [(0, uids[0], "withdrawn")]
    assert Case.objects.get(case_uid=uids[0]).status == "withdrawn"
    submitted = Case.objects.get(case_uid=uids[1])
    assert (submitted.status, submitted.version) == ("submitted", 2)
    assert submitted.submitted_at is not None
    assert submitted.versions.get(version=2).changes == {"status": ["draft", "submitted"]}
    changed = Case.objects.get(case_uid=uids[2])
    assert changed.status == "submitted"  # a submitted case stays submitted
    assert changed.versions.get(version=2).changes["turnaround_days"][1] == 17
    assert changed.versions.get(version=2).note == "import 2"
    assert Case.objects.get(case_uid=uids[3]).version == 1  # same content: unchanged
    assert CaseVersion.objects.get(case__case_uid="NEW-1").version == 1
    assert verify_chain().ok


def test_a_bulk_write_takes_case_ids_that_do_not_collide_with_other_writes(world, labels):
    reader = FlatReader(registry.current().dictionary)
    rows = case_rows(6, labels, seed=7)
    datas = [cases.normalise(reader.read(r)[1]) for r in rows]
    cases.save_case(world.site_a, case_uid="ONE-1", data=datas[0], status="submitted")
    bulk = [
        cases.BulkRow(n, r["case_uid"], d, "submitted")
        for n, (r, d) in enumerate(zip(rows[1:4], datas[1:4], strict=True))
    ]
    cases.save_cases_bulk(world.site_a, bulk, actor=world.alice, note="import A")
    cases.save_case(world.site_a, case_uid="ONE-2", data=datas[4], status="submitted")
    ids = list(Case.objects.order_by("id").values_list("case_uid", flat=True))
    assert ids == ["ONE-1", *[r["case_uid"] for r in rows[1:4]], "ONE-2"]
    for case in Case.objects.all():
        assert case.versions.get(version=1).data == case.data


def test_another_site_may_hold_the_same_case_ids(world, labels, tmp_path):
    printers_for(world.site_b)
    path = write_csv(tmp_path / "i.csv", case_rows(3, labels))
    for site in (world.site_a, world.site_b):
        batch = intake.create_import(site, path)
        intake.run_import(batch)
        assert batch.written == 3
    assert Case.objects.count() == 6
    assert sites.find_site("SITEB").cases.count() == 3


@pytest.mark.parametrize("processes", [1, 2])
def test_checking_in_forked_processes_gives_the_same_result(
    world, labels, tmp_path, monkeypatch, processes
):
    monkeypatch.setattr(intake, "PARALLEL_CHECK_MIN_BYTES", 0 if processes > 1 else 1 << 40)
    monkeypatch.setattr(intake, "MAX_CHECK_PROCESSES", processes)
    monkeypatch.setattr(intake, "CHECK_CHUNK_ROWS", 7)  # many chunks, some in flight
    rows = case_rows(60, labels, seed=8)
    rows[5]["age_years"] = "forty"
    rows[40]["case_uid"] = rows[12]["case_uid"]  # a duplicate in another chunk
    rows[13]["case_uid"] = rows[12]["case_uid"]  # and one in the same chunk
    cases.save_case(
        world.site_a,
        case_uid=rows[20]["case_uid"],
        data=cases.normalise(FlatReader(registry.current().dictionary).read(rows[20])[1]),
        status="submitted",
    )
    path = write_csv(tmp_path / "j.csv", rows)
    assert intake.check_processes(path) == processes
    batch = checked(world, path, mode=ImportMode.VALID_ROWS)
    assert (batch.rows, batch.new, batch.changed, batch.unchanged, batch.invalid) == (
        60,
        56,
        0,
        1,
        3,
    )
    problems = list(batch.problems.values_list("row", "code"))
    assert problems == [(7, "wrong_type"), (15, "duplicate_row"), (42, "duplicate_row")]
    spooled = [(o, row.number, row.case_uid) for o, row in intake._Spool(batch).rows()]
    expected = [(i + 1, i + 2, r["case_uid"]) for i, r in enumerate(rows) if i not in (5, 13, 40)]
    assert spooled == expected
    intake.write_import(batch)
    assert batch.written == 56
    assert Case.objects.filter(site=world.site_a).count() == 57


@pytest.mark.django_db(transaction=True)
def test_an_import_outside_a_transaction_writes_its_batches_on_several_connections(
    tmp_path, monkeypatch
):
    """On PostgreSQL batches are written by threads, each on its own connection
    (elsewhere, or inside a transaction, one after another)."""
    from django.db import connection

    from tests.conftest import make_world

    world = make_world()
    labels = printers_for(world.site_a)
    monkeypatch.setattr(intake, "BATCH_SIZE", 4)
    rows = case_rows(23, labels, seed=9)
    rows[6]["age_years"] = "forty"
    path = write_csv(tmp_path / "k.csv", rows)
    expected = 2 if connection.vendor == "postgresql" else 1
    assert intake.write_connections() == expected
    written = []
    batch = intake.create_import(world.site_a, path, mode=ImportMode.VALID_ROWS)
    intake.run_import(batch, progress=written.append)
    assert (batch.status, batch.written, batch.batches_committed) == ("done", 22, 6)
    assert batch.rows_done == 23
    assert Case.objects.count() == CaseVersion.objects.count() == 22
    assert AuditEvent.objects.filter(action="cases.imported").count() == 6
    assert verify_chain().ok
    again = intake.create_import(world.site_a, path, mode=ImportMode.VALID_ROWS)
    intake.run_import(again)
    assert (again.written, again.unchanged, again.batches_committed) == (0, 22, 6)


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_stops_the_writers_and_is_raised(tmp_path, monkeypatch):
    from tests.conftest import make_world

    world = make_world()
    labels = printers_for(world.site_a)
    monkeypatch.setattr(intake, "BATCH_SIZE", 3)
    path = write_csv(tmp_path / "l.csv", case_rows(20, labels, seed=10))
    batch = intake.create_import(world.site_a, path)
    intake.check_import(batch)
    calls = []
    real = cases.save_cases_bulk

    def failing(site, rows, **options):
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(site, rows, **options)

    monkeypatch.setattr(cases, "save_cases_bulk", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        intake.write_import(batch)
    batch.refresh_from_db()
    assert batch.status == "importing"
    assert Case.objects.count() == batch.written == 3 * batch.batches_committed
    assert batch.batches_committed < 7


def test_a_cell_holding_the_packing_separator_reaches_the_checker_whole(world, labels, tmp_path):
    rows = case_rows(2, labels, seed=10)
    path = write_csv(tmp_path / "p.csv", rows)
    batch = intake.create_import(world.site_a, path)
    table = intake.open_table(path)
    numbered = [(n, values) for n, values in enumerate(table.rows(), start=2)]
    numbered[1][1][table.columns.index("case_uid")] = "A\x1fB"
    packed = intake._packed(numbered)
    assert isinstance(packed[0][1], str) and packed[1][1] == numbered[1][1]
    results, valid = intake._Rows(batch, table).check_chunk(1, packed)
    assert [r[3] for r in results] == [True, False]  # the odd case ID is refused, not split
    assert results[1][4][0].path == "case_uid"
    assert valid[0][2] == rows[0]["case_uid"]
