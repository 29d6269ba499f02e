import pytest
from click.testing import CliRunner
from django.db import connection

from registry3d.audit.errors import AuditTrailReadOnly
from registry3d.audit.models import AuditEvent, AuditHead
from registry3d.audit.services import record, verify_chain
from registry3d.cli import main


def tamper(sql: str, params: list) -> None:
    """Change the trail behind the registry's back, as a database user could."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_every_event_links_to_the_one_before(world):
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    head = AuditHead.objects.get()
    assert (head.seq, head.hash) == (events[-1].seq, events[-1].hash)
    assert verify_chain().ok is True


def test_verify_finds_an_event_changed_in_the_database(world):
    victim = AuditEvent.objects.get(action="membership.added", object_id="bob@a.example.org")
    tamper(
        "UPDATE audit_auditevent SET changes_json = %s WHERE id = %s",
        ['{"role": [null, "manager"]}', victim.pk],
    )
    report = verify_chain()
    assert report.ok is False
    assert report.broken_seq == victim.seq
    assert (
        report.reason == f"event #{victim.seq} (membership.added) was changed after it was recorded"
    )


def test_verify_finds_a_deleted_event(world):
    victim = AuditEvent.objects.order_by("seq")[3]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [victim.pk])
    report = verify_chain()
    assert report.ok is False
    assert report.broken_seq == victim.seq
    assert "is missing" in report.reason


def test_verify_finds_events_cut_from_the_end(world):
    last = AuditEvent.objects.order_by("-seq").first()
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    report = verify_chain()
    assert report.ok is False
    assert "events were removed from the end" in report.reason


def test_verify_finds_a_rewritten_hash(world):
    victim = AuditEvent.objects.order_by("seq")[2]
    tamper("UPDATE audit_auditevent SET hash = %s WHERE id = %s", ["f" * 64, victim.pk])
    report = verify_chain()
    assert report.ok is False
    assert report.broken_seq == victim.seq


def test_the_app_cannot_change_or_delete_an_event(world):
    event = AuditEvent.objects.first()
    event.action = "nothing.happened"
    with pytest.raises(AuditTrailReadOnly, match="Audit events cannot be changed"):
        event.save()
    with pytest.raises(AuditTrailReadOnly, match="Audit events cannot be deleted"):
        event.delete()


def test_values_that_are_not_plain_json_are_recorded_as_the_database_returns_them(world):
    from datetime import date
    from decimal import Decimal

    event = record("test.values", changes={"cost": Decimal("12.50"), "on": date(2026, 7, 1)})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.changes == {"cost": "12.50", "on": "2026-07-01"}
    assert verify_chain().ok is True


def test_the_cli_says_the_trail_is_intact(world):
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 0
    count = AuditEvent.objects.count()
    assert result.output == f"Audit trail intact: {count} events verified.\n"


def test_the_cli_exits_1_and_names_the_first_broken_event(world):
    victim = AuditEvent.objects.order_by("seq")[4]
    tamper(
        "UPDATE audit_auditevent SET actor_label = %s WHERE id = %s", ["someone-else", victim.pk]
    )
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"Audit trail BROKEN at event #{victim.seq}" in result.stderr


def test_numbers_that_databases_rewrite_still_verify(world):
    record("test.numbers", changes={"big": 1e16, "huge": 1e22, "zero": -0.0, "nan": float("nan")})
    report = verify_chain()
    assert report.ok is True, report.reason
    event = AuditEvent.objects.get(action="test.numbers")
    assert event.changes["nan"] == "nan"


def test_an_event_says_which_way_the_change_came(world):
    from click.testing import CliRunner

    from registry3d.sites import services

    token, raw = services.create_token(world.site_a, world.alice, name="W", scope="write")
    request = type("Request", (), {"auth": token, "META": {}, "user": world.alice})()
    services.add_printer(
        world.site_a,
        label="P1",
        manufacturer="M",
        model="X",
        technology="material_jetting",
        actor=world.alice,
        request=request,
    )
    assert AuditEvent.objects.get(action="printer.added").via == f"api token {token.prefix}"
    CliRunner().invoke(main, ["site", "add", "SITEC", "--name", "C"])
    created = AuditEvent.objects.get(action="site.created", object_id="SITEC")
    assert created.via == "cli"
    assert created.actor_label.startswith("command line (")
    # The command line's name does not stick to later changes.
    later = record("test.after")
    assert later.actor_label == "" and later.via == ""


def test_a_trail_whose_head_is_gone_starts_again_from_the_first_link(world):
    from registry3d.audit.models import GENESIS_HASH

    tamper("DELETE FROM audit_auditevent", [])
    tamper("DELETE FROM audit_audithead", [])
    first = record("test.first", changes={"n": 1})
    second = record("test.second", changes={"n": 2})
    assert (first.seq, first.prev_hash, second.seq, second.prev_hash) == (
        1,
        GENESIS_HASH,
        2,
        first.hash,
    )
    assert AuditHead.objects.get().hash == second.hash
    assert verify_chain().ok is True


def test_awkward_text_hashes_the_same_in_python_and_in_the_database(world):
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8::1")
    request.user = world.alice
    event = record(
        "test.text",
        request=request,
        object_id='Zoë "quoted" \\ back',
        changes={
            "note": 'é, 😀, "@prev@","seq":"@seq@", \u2028',
            "not a number": float("nan"),
            "big": 10**20,
        },
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.hash == event.hash
    assert stored.ip == "2001:db8::1"
    assert stored.changes["not a number"] == "nan"
    assert verify_chain().ok is True
