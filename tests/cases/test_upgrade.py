"""Carrying stored cases forward: real 1.0.0 cases, stored, then upgraded to 1.1.0."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry3d.audit.models import AuditEvent
from registry3d.audit.services import verify_chain
from registry3d.cases import services
from registry3d.cases.models import Case, CaseVersion
from registry3d.cases.upgrade import upgrade_cases
from registry3d.cli import main
from registry3d.dictionary import registry
from tests.cases.conftest import a_case

FIXTURE = Path(__file__).parents[1] / "fixtures" / "dictionary-1.0.0" / "case.yaml"


@pytest.fixture
def old_cases(world, printers, tmp_path):
    """Store cases under dictionary 1.0.0, then put 1.1.0 back in force."""
    path = tmp_path / "case.yaml"
    shutil.copy(FIXTURE, path)
    shutil.copy(registry.DATA_DIR / "appropriateness.yaml", tmp_path / "appropriateness.yaml")
    registry.reload(path)
    try:
        assert registry.current().dictionary.version == "1.0.0"
        labels = printers[0]
        first = a_case(1, labels, segmentation_software="Mimics 25")
        first["cad_software"] = "Materialise 3-matic 18.0"
        first["prints"][0]["material_trade_name"] = "VeroClear RGD810"
        second = a_case(2, labels, cad_software="Our in-house tool")
        third = a_case(3, labels)  # no product named: only its version moves on
        for uid, data in (("C-1", first), ("C-2", second), ("C-3", third)):
            services.save_case(
                world.site_a, case_uid=uid, data=data, status="submitted", actor=world.alice
            )
        services.save_case(world.site_b, case_uid="B-1", data=a_case(4, printers[1]))
    finally:
        registry.reload()
    assert registry.current().dictionary.version == "1.1.0"
    # What the old screen let through, stored before this upgrade.
    case = Case.objects.get(case_uid="C-2")
    Case.objects.filter(pk=case.pk).update(
        data={**case.data, "segmentation_software": "Mimics run by John Smith"}
    )
    return {c.case_uid: c for c in Case.objects.all()}


def test_old_cases_are_carried_forward_as_a_new_version(old_cases):
    result = upgrade_cases(batch_size=2)
    assert (result.version, result.carried, result.problems) == ("1.1.0", 4, [])
    first = Case.objects.get(case_uid="C-1")
    assert (first.version, first.dictionary_version) == (2, "1.1.0")
    assert first.data["segmentation_software"] == "materialise_mimics"
    assert first.data["segmentation_software_version"] == "25"
    assert (first.data["cad_software"], first.data["cad_software_version"]) == (
        "materialise_3_matic",
        "18.0",
    )
    assert first.data["prints"][0]["material_trade_name"] == "stratasys_veroclear"
    version = CaseVersion.objects.get(case=first, version=2)
    assert (version.note, version.via, version.dictionary_version) == (
        "carried forward to dictionary 1.1.0",
        "dictionary upgrade",
        "1.1.0",
    )
    assert version.changes["segmentation_software"] == ["Mimics 25", "materialise_mimics"]
    assert version.changes["dictionary_version"] == ["1.0.0", "1.1.0"]
    # The first version keeps what was typed, under the version it followed.
    assert CaseVersion.objects.get(case=first, version=1).data["cad_software"] == (
        "Materialise 3-matic 18.0"
    )


def test_unmatched_text_moves_to_the_other_element_and_a_name_is_dropped(old_cases):
    upgrade_cases()
    second = Case.objects.get(case_uid="C-2").data
    assert (second["cad_software"], second["cad_software_other"]) == (
        "other",
        "Our in-house tool",
    )
    assert second["segmentation_software"] == "materialise_mimics"
    assert "John Smith" not in str(second)
    third = Case.objects.get(case_uid="C-3")
    assert (third.version, third.dictionary_version) == (2, "1.1.0")
    assert third.data == old_cases["C-3"].data


def test_one_audit_event_per_site_and_batch_names_cases_not_values(old_cases):
    upgrade_cases(batch_size=2)
    events = list(AuditEvent.objects.filter(action="cases.carried_forward").order_by("seq"))
    # Batch one: C-1 and C-2 (site A); batch two: C-3 (site A) and B-1 (site B).
    assert [(e.site.code, e.changes["cases"]) for e in events] == [
        ("SITEA", {"C-1": 2, "C-2": 2}),
        ("SITEA", {"C-3": 2}),
        ("SITEB", {"B-1": 2}),
    ]
    assert "segmentation_software" in events[0].changes["elements"]
    assert "Mimics" not in events[0].changes_json
    assert "John Smith" not in events[0].changes_json
    assert verify_chain().ok


def test_running_it_again_carries_nothing(old_cases):
    upgrade_cases()
    versions, events = CaseVersion.objects.count(), AuditEvent.objects.count()
    again = upgrade_cases()
    assert (again.carried, again.problems) == (0, [])
    assert (CaseVersion.objects.count(), AuditEvent.objects.count()) == (versions, events)


def test_carried_data_the_new_version_refuses_are_reported_without_values(old_cases):
    case = old_cases["C-1"]
    Case.objects.filter(pk=case.pk).update(
        data={**case.data, "segmentation_software_version": "John Smith"}
    )
    result = upgrade_cases()
    assert result.problems == [("SITEA", "C-1", "segmentation_software_version", "bad_format")]
    assert Case.objects.get(pk=case.pk).dictionary_version == "1.1.0"


def test_the_cli_carries_cases_forward_and_says_so(old_cases):
    result = CliRunner().invoke(main, ["dictionary", "upgrade-cases"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "Carried 4 cases forward to dictionary 1.1.0.\n"
    again = CliRunner().invoke(main, ["dictionary", "upgrade-cases"])
    assert again.stderr == "Every case follows dictionary 1.1.0 already.\n"
    event = AuditEvent.objects.filter(action="cases.carried_forward").first()
    assert event.actor_label.startswith("command line (")


def test_init_carries_cases_forward_on_every_run(old_cases, monkeypatch):
    # The test database is migrated already; init's own steps are tested in
    # tests/test_deployment.py.
    monkeypatch.setattr("django.core.management.call_command", lambda *a, **k: None)
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert "Carried 4 cases forward to dictionary 1.1.0.\n" in result.stderr
    assert not Case.objects.exclude(dictionary_version="1.1.0").exists()


def test_text_carried_to_a_code_can_be_redacted_and_the_code_stays(old_cases, world):
    from registry3d.cases.redaction import REDACTED, redact_case

    upgrade_cases()
    first = Case.objects.get(case_uid="C-1")
    done = redact_case(first, "segmentation_software", "typed by mistake", actor=world.ada)
    assert done.versions == [1, 2]
    first.refresh_from_db()
    assert first.data["segmentation_software"] == "materialise_mimics"
    versions = {v.version: v for v in CaseVersion.objects.filter(case=first)}
    assert versions[1].data["segmentation_software"] == REDACTED
    assert versions[2].changes["segmentation_software"] == [REDACTED, "materialise_mimics"]
    assert versions[2].data["segmentation_software"] == "materialise_mimics"
