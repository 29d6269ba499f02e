"""`registry3d audit scrub-values`: case values out of events written before digests."""

import json

from click.testing import CliRunner

from registry3d.audit.digests import digest
from registry3d.audit.models import AuditEvent, AuditHead
from registry3d.audit.services import record, verify_chain
from registry3d.cases import services
from registry3d.cli import main

NAME = "Jane Roe asked for it"


def run(*args):
    return CliRunner().invoke(main, list(args))


def old_events(world):
    """Events as the registry wrote them before digests: the values themselves."""
    record(
        "case.updated",
        site=world.site_a,
        object_type="case",
        object_id="OLD-1",
        changes={
            "version": 2,
            "status": "submitted",
            "elements": {
                "ua_comment": [None, NAME],
                "age_years": [40, 41],
                "status": ["draft", "submitted"],
                "patient_key": ["(changed)", "(changed)"],
            },
        },
    )
    record(
        "case.withdrawn",
        site=world.site_a,
        object_type="case",
        object_id="OLD-1",
        changes={"version": 3, "status": ["submitted", "withdrawn"], "reason": NAME},
    )
    record(
        "questionnaire.answered",
        site=world.site_a,
        object_type="case",
        object_id="OLD-2",
        changes={"answers": {"ua_comment": NAME, "ua_important": "5"}, "version": 2},
    )
    record(
        "model_file.kept",
        site=world.site_a,
        object_type="model_file",
        object_id="M-1",
        changes={"file_name": f"{NAME}.stl", "sha256": "0" * 64, "bytes": 84},
    )


def all_text() -> str:
    return "\n".join(
        json.dumps(row, default=str) for row in AuditEvent.objects.order_by("seq").values_list()
    )


def test_it_replaces_old_values_with_digests_and_verify_reports_the_rebase(world):
    first_new = AuditEvent.objects.order_by("-seq").first().seq  # the world's own events
    old_events(world)
    new = services.save_case(world.site_a, case_uid="NEW-1", data={"sex": "male"}).case
    before_new = AuditEvent.objects.get(object_id=new.case_uid).changes
    head = AuditHead.objects.get()
    untouched = AuditEvent.objects.get(seq=first_new).changes_json

    refused = run("audit", "scrub-values")
    assert refused.exit_code == 1
    assert refused.output == (
        "Error: This rewrites old audit events and re-bases the chain; run it again with --yes\n"
    )
    assert NAME in all_text()

    result = run("audit", "scrub-values", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Rewrote 4 events from #{first_new + 1} to hold digests; hashed 5 again; "
        f"recorded the re-base as #{head.seq + 1}.\n"
    )
    assert NAME not in all_text()
    updated = AuditEvent.objects.get(action="case.updated", object_id="OLD-1").changes
    assert updated["elements"] == {
        "ua_comment": [None, digest(NAME)],
        "age_years": [digest(40), digest(41)],
        "status": ["draft", "submitted"],
        "patient_key": ["(changed)", "(changed)"],
    }
    assert AuditEvent.objects.get(action="case.withdrawn").changes["reason"] == digest(NAME)
    answers = AuditEvent.objects.get(action="questionnaire.answered").changes["answers"]
    assert answers == {"ua_comment": digest(NAME), "ua_important": digest("5")}
    # Digests already there, and events without case values, stay as they were.
    assert AuditEvent.objects.get(object_id=new.case_uid).changes == before_new
    assert AuditEvent.objects.get(seq=first_new).changes_json == untouched

    rebase = AuditEvent.objects.get(action="audit.rebased")
    assert rebase.changes["old_head"] == {"seq": head.seq, "hash": head.hash}
    assert rebase.changes["from_seq"] == first_new + 1
    report = verify_chain()
    assert report.ok is True and [r["seq"] for r in report.rebases] == [rebase.seq]
    verified = run("audit", "verify")
    assert verified.exit_code == 0
    lines = verified.output.splitlines()
    assert lines[0] == f"Audit trail intact: {rebase.seq} events verified."
    assert lines[1].startswith(f"Re-based at #{rebase.seq} (")
    assert lines[1].endswith(
        f"events from #{first_new + 1} were rewritten to hold digests instead of case "
        f"values; the head before was #{head.seq} {head.hash}."
    )


def test_a_second_run_changes_nothing(world):
    old_events(world)
    assert run("audit", "scrub-values", "--yes").exit_code == 0
    text = all_text()
    again = run("audit", "scrub-values", "--yes")
    assert again.output == "No audit event holds case values; nothing changed.\n"
    assert all_text() == text
    assert verify_chain().ok is True


def test_new_events_append_to_the_rebased_chain(world):
    old_events(world)
    run("audit", "scrub-values", "--yes")
    services.save_case(world.site_a, case_uid="AFTER-1", data={"sex": "female"})
    assert verify_chain().ok is True
