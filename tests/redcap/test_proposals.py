"""A REDCap data dictionary edited by an analyst, proposed as the next dictionary version.

The files are written as a spreadsheet saves "CSV UTF-8" (a byte-order
mark, CRLF line ends) from the registry's own REDCap export, edited the way
an analyst edits it in REDCap or Excel.
"""

import csv
import io
import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from registry3d.audit.models import AuditEvent
from registry3d.cli import main
from registry3d.dictionary import generators, registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.dictionary.loader import load_dictionary
from registry3d.dictionary.validation import Validator
from registry3d.redcap import proposals
from registry3d.redcap.datadict import REDCAP_COLUMNS
from registry3d.redcap.errors import ProposalRefused
from registry3d.redcap.models import DictionaryProposal
from tests.conftest import client_for, csrf_post

NAME, FORM, TYPE, LABEL, CHOICES, NOTE = (REDCAP_COLUMNS[i] for i in (0, 1, 3, 4, 5, 6))
VALIDATION, VMIN, VMAX, REQUIRED, ANNOTATION = (REDCAP_COLUMNS[i] for i in (7, 8, 9, 12, 17))
BRANCHING = REDCAP_COLUMNS[11]


@pytest.fixture(scope="module")
def dictionary():
    return registry.current().dictionary


def exported(dictionary) -> list[dict]:
    return list(csv.DictReader(io.StringIO(generators.redcap_csv(dictionary))))


def saved(rows: list[dict]) -> bytes:
    """The rows as a spreadsheet saves CSV UTF-8: a byte-order mark and CRLF."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REDCAP_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def row_of(rows: list[dict], name: str) -> dict:
    return next(r for r in rows if r[NAME] == name)


def number_of(rows: list[dict], name: str) -> int:
    """The spreadsheet row of a field (the header is row 1)."""
    return next(i for i, r in enumerate(rows, start=2) if r[NAME] == name)


def new_row(after: dict, **cells) -> dict:
    row = dict.fromkeys(REDCAP_COLUMNS, "")
    row[FORM] = after[FORM]
    row.update({REDCAP_COLUMNS_BY_KEY[k]: v for k, v in cells.items()})
    return row


REDCAP_COLUMNS_BY_KEY = {
    "name": NAME,
    "type": TYPE,
    "label": LABEL,
    "choices": CHOICES,
    "note": NOTE,
    "validation": VALIDATION,
    "vmin": VMIN,
    "vmax": VMAX,
    "required": REQUIRED,
    "annotation": ANNOTATION,
    "branching": BRANCHING,
    "form": FORM,
}


def edited(dictionary) -> bytes:
    """An analyst's edits: labels, a note, choices, a range, a flag and two new fields."""
    rows = exported(dictionary)
    row_of(rows, "material")[LABEL] = "Print material"
    row_of(rows, "material")[CHOICES] += " | peek, PEEK (polyether ether ketone)"
    row_of(rows, "sex")[NOTE] = "The patient's sex as recorded in the chart."
    guide = row_of(rows, "guide_type")
    guide[CHOICES] = guide[CHOICES].replace("other, Other", "other, Other guide")
    row_of(rows, "age_years")[VMAX] = "110"
    row_of(rows, "cad_software")[REQUIRED] = "y"
    material = row_of(rows, "material")
    rows.insert(
        rows.index(material) + 1,
        new_row(
            material,
            name="nozzle_temperature_c",
            type="text",
            label="Nozzle temperature",
            note="Nozzle temperature of material extrusion printers, in degrees Celsius.",
            validation="number",
            vmin="150",
            vmax="450",
            annotation="@registry3d-unit=Cel",
        ),
    )
    procedure = [r for r in rows if r[FORM] == "procedure"][-1]
    rows.insert(
        rows.index(procedure) + 1,
        new_row(
            procedure,
            name="anaesthesia_type",
            type="radio",
            label="Anaesthesia",
            note="The kind of anaesthesia used for the procedure.",
            choices="general, General | regional, Regional | local, Local | none, None",
        ),
    )
    return saved(rows)


# --- The importer -----------------------------------------------------------------------------


def test_an_edited_redcap_dictionary_becomes_the_next_version(dictionary, tmp_path):
    proposal = proposals.propose(edited(dictionary), dictionary, today="2027-01-15")
    assert (proposal.base_version, proposal.version) == ("1.1.0", "1.2.0")
    assert proposal.changes == [
        "age_years: max 120 → 110",
        "sex: help text changed",
        "cad_software: now required",
        "value set guide_type: 'other' relabelled 'Other' → 'Other guide'",
        "prints.material: label 'Material' → 'Print material'",
        "value set material: new choice 'peek' (PEEK (polyether ether ketone))",
        "new element nozzle_temperature_c on prints (decimal)",
        "new value set anaesthesia_type (4 choices)",
        "new element anaesthesia_type on procedure (choice, value set anaesthesia_type)",
    ]
    assert "~ element:prints: changed elements" in proposal.differences
    assert "+ element:anaesthesia_type: Anaesthesia (choice, section procedure)" in (
        proposal.differences
    )
    # The file is one the loader accepts, with the changes in it.
    path = tmp_path / "case.yaml"
    proposals.write_files(proposal.yaml_text, dictionary, path)
    assert (tmp_path / "appropriateness.yaml").is_file()
    new = load_dictionary(path)
    assert new.version == "1.2.0"
    assert new.history[-1].released == "2027-01-15"
    material = new.element("prints.material")
    assert material.label == "Print material"
    assert material.value_set.label_of("peek") == "PEEK (polyether ether ketone)"
    nozzle = new.element("prints.nozzle_temperature_c")
    assert (nozzle.type, nozzle.min, nozzle.max, nozzle.unit) == ("decimal", 150, 450, "Cel")
    assert (nozzle.provenance, nozzle.required) == ("proposed", False)
    assert new.elements["age_years"].max == 110
    assert new.elements["cad_software"].required is True
    assert new.elements["sex"].help == "The patient's sex as recorded in the chart."
    assert new.value_sets["guide_type"].label_of("other") == "Other guide"
    # Cases of the old version stay valid under the new one.
    validator = Validator(new)
    for seed in range(30):
        data = synthetic_case(new, random.Random(seed))
        data.setdefault("cad_software", "other")
        errors = [p for p in validator.validate(data, complete=True) if p.severity == "error"]
        assert errors == [], (seed, errors)


def moved(rows: list[dict]) -> str:
    """Move the last field of the case form onto the next form; return its name."""
    last = [r for r in rows if r[FORM] == "case"][-1]
    last[FORM] = "imaging_indication"
    return last[NAME]


def test_rows_that_cannot_be_carried_are_each_refused_with_their_row(dictionary):
    rows = exported(dictionary)
    name = moved(rows)
    row_of(rows, "age_years")[TYPE] = "dropdown"
    row_of(rows, "age_years")[CHOICES] = "1, One"
    row_of(rows, "age_years")[VALIDATION] = row_of(rows, "age_years")[VMIN] = ""
    row_of(rows, "age_years")[VMAX] = ""
    row_of(rows, "guide_type")[BRANCHING] = "[object_type] = 'anatomic_model'"
    material = row_of(rows, "material")
    material[CHOICES] = material[CHOICES].replace("pla, PLA | ", "")
    at = rows.index(material) + 1
    rows[at:at] = [
        new_row(material, name="print_photo", type="file", label="Photo", note="A photo."),
        new_row(
            material,
            name="print_date",
            type="text",
            label="Date",
            note="When.",
            validation="date_ymd",
        ),
        new_row(
            material,
            name="print_score",
            type="calc",
            label="Score",
            note="Sum.",
            choices="[copies] * 2",
        ),
        new_row(
            material,
            name="print_grade",
            type="radio",
            label="Grade",
            note="How good.",
            choices="_a, Excellent | b, Good",
        ),
        new_row(material, name="print_shade", type="text", label="Shade", note=""),
    ]
    rows.append(
        new_row(
            material,
            form="billing",
            name="invoice_total",
            type="text",
            label="Total",
            note="Invoice total.",
        )
    )
    with pytest.raises(ProposalRefused) as refused:
        proposals.propose(saved(rows), dictionary)
    assert [str(p) for p in refused.value.problems] == [
        f"Row {number_of(rows, 'age_years')}, age_years: the field type changed from text "
        "(integer) to dropdown; a field's type cannot change (add a new field instead)",
        f"Row {number_of(rows, name)}, {name}: the field moved from form case to "
        "imaging_indication; fields cannot move (add a new field instead)",
        f"Row {number_of(rows, 'guide_type')}, guide_type: the branching logic changed; the "
        "registry does not read REDCap logic back, so change 'required' in the dictionary file",
        f"Row {number_of(rows, 'material')}, material: choice 'pla' (PLA) is missing; choices "
        "cannot be removed through REDCap (retire them in the dictionary file)",
        f"Row {number_of(rows, 'print_photo')}, print_photo: field type 'file' is not "
        "supported: the registry keeps typed case data, not files",
        f"Row {number_of(rows, 'print_date')}, print_date: validation 'date_ymd': the registry "
        "keeps no full dates or times (they identify patients); use a year-month element in "
        "the dictionary file",
        f"Row {number_of(rows, 'print_score')}, print_score: field type 'calc' is not "
        "supported: the registry keeps typed case data, not calculations",
        f"Row {number_of(rows, 'print_grade')}, print_grade: choice code '_a' must start with a "
        "letter or digit and hold only letters, digits, _ - . (64 at most)",
        f"Row {number_of(rows, 'print_shade')}, print_shade: a new field needs a field note: it "
        "becomes its help text",
        f"Row {number_of(rows, 'invoice_total')}, invoice_total: unknown form 'billing'; the "
        "forms are case, imaging_indication, imaging, digital_model, anatomic_parts, prints, "
        "printed_model, procedure, effort, cost_coding, cpt_lines, user_assessment (a new "
        "section or group is added in the dictionary file)",
    ]


def test_redcaps_own_rules_are_checked_first(dictionary):
    rows = exported(dictionary)
    row_of(rows, "sex")[CHOICES] = "female Female | male, Male"
    row_of(rows, "copies")[NAME] = "Copies"
    with pytest.raises(ProposalRefused) as refused:
        proposals.propose(saved(rows), dictionary)
    assert [str(p) for p in refused.value.problems] == [
        f"Row {number_of(rows, 'Copies')}, Copies: variable names are lowercase letters, "
        "digits and _, starting with a letter",
        f"Row {number_of(rows, 'sex')}, sex: bad choices: choice 'female Female' has no comma; "
        "write 'code, label'",
    ]


def test_a_removed_field_or_an_unchanged_file_is_refused(dictionary):
    rows = exported(dictionary)
    with pytest.raises(ProposalRefused) as unchanged:
        proposals.propose(saved(rows), dictionary)
    assert [str(p) for p in unchanged.value.problems] == [
        "File: the file changes nothing in dictionary 1.1.0"
    ]
    rows.remove(row_of(rows, "copies"))
    with pytest.raises(ProposalRefused) as removed:
        proposals.propose(saved(rows), dictionary)
    assert [str(p) for p in removed.value.problems] == [
        "File, copies: the field (form prints) is missing from the file; fields cannot be "
        "removed through a REDCap data dictionary"
    ]


def test_the_next_version_skips_published_ones(monkeypatch):
    monkeypatch.setattr(
        proposals, "read_published", lambda: {"1.0.0": {}, "1.1.0": {}, "1.2.0": {}}
    )
    assert proposals.next_version("1.0.0") == "1.3.0"


# --- The pages --------------------------------------------------------------------------------


def upload(client, content: bytes, name: str = "redcap-edited.csv"):
    file = io.BytesIO(content)
    file.name = name
    return csrf_post(client, "/redcap/proposals/", {"file": file})


def test_an_analyst_proposes_reviews_and_accepts_a_version(world, dictionary, settings):
    client = client_for(world.dan)
    response = upload(client, edited(dictionary))
    assert response.status_code == 302
    proposal = DictionaryProposal.objects.get()
    assert response["Location"] == f"/redcap/proposals/{proposal.code}/"
    assert (proposal.version, proposal.created_by, proposal.status) == (
        "1.2.0",
        world.dan,
        "proposed",
    )
    page = client.get(response["Location"]).content.decode()
    assert "Print material" in page and "new element nozzle_temperature_c on prints" in page
    assert "Accept version 1.2.0" in page
    download = client.get(f"/redcap/proposals/{proposal.code}/case.yaml")
    assert download["Content-Disposition"] == 'attachment; filename="registry3d-case-1.2.0.yaml"'
    assert yaml.safe_load(download.content)["version"] == "1.2.0"
    # Ada, another reviewer, accepts it: the file is written and the loader takes it.
    accepted = csrf_post(client_for(world.ada), f"/redcap/proposals/{proposal.code}/accept")
    assert accepted.status_code == 302
    proposal.refresh_from_db()
    assert (proposal.status, proposal.accepted_by) == ("accepted", world.ada)
    path = Path(proposal.accepted_path)
    assert path.parent.parent == Path(settings.VAR_DIR) / "dictionaries"
    assert load_dictionary(path).version == "1.2.0"
    page = client.get(f"/redcap/proposals/{proposal.code}/").content.decode()
    assert f"REGISTRY3D_DICTIONARY={path}" in page
    # The running registry keeps its version until an administrator switches.
    assert registry.current().dictionary.version == "1.1.0"
    events = AuditEvent.objects.filter(action__startswith="dictionary.").order_by("seq")
    assert [e.action for e in events] == [
        "dictionary.proposed",
        "dictionary.proposal_accepted",
    ]
    again = csrf_post(client, f"/redcap/proposals/{proposal.code}/accept", follow=True)
    assert "this proposal was already accepted" in again.content.decode()


def test_a_file_name_that_looks_like_an_identifier_is_kept_nowhere(world, dictionary):
    planted = "Smith, John 1950-03-03.csv"
    response = upload(client_for(world.dan), edited(dictionary), name=planted)
    assert response.status_code == 302
    proposal = DictionaryProposal.objects.get()
    assert proposal.file_name == "data-dictionary.csv"
    trail = " ".join(e.changes_json for e in AuditEvent.objects.all())
    assert "Smith" not in trail and "1950" not in trail


def test_a_refused_file_shows_every_problem_and_stores_nothing(world, dictionary):
    rows = exported(dictionary)
    name = moved(rows)
    response = upload(client_for(world.dan), saved(rows))
    assert response.status_code == 400
    assert (
        f"Row {number_of(rows, name)}, {name}: the field moved from form case to "
        "imaging_indication" in response.content.decode()
    )
    assert DictionaryProposal.objects.exists() is False
    assert AuditEvent.objects.filter(action="dictionary.proposed").exists() is False


def test_site_people_cannot_reach_proposals_at_all(world, dictionary):
    proposal_page = upload(client_for(world.dan), edited(dictionary))["Location"]
    code = DictionaryProposal.objects.get().code
    for person in (world.alice, world.mona, world.carol):
        client = client_for(person)
        assert client.get("/redcap/proposals/").status_code == 404
        assert client.get(proposal_page).status_code == 404
        assert client.get(f"/redcap/proposals/{code}/case.yaml").status_code == 404
        assert csrf_post(client, f"/redcap/proposals/{code}/accept").status_code == 404
        assert upload(client, edited(dictionary)).status_code == 404
    assert DictionaryProposal.objects.get().status == "proposed"
    assert DictionaryProposal.objects.count() == 1
    anonymous = client_for(world.dan)
    anonymous.logout()
    assert anonymous.get("/redcap/proposals/").status_code == 302


# --- The command line -------------------------------------------------------------------------


def test_from_redcap_prints_the_changes_and_writes_the_proposed_file(world, dictionary, tmp_path):
    source = tmp_path / "edited.csv"
    source.write_bytes(edited(dictionary))
    out = tmp_path / "proposed" / "case.yaml"
    result = CliRunner().invoke(main, ["dictionary", "from-redcap", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1.1.0 → 1.2.0"
    assert "prints.material: label 'Material' → 'Print material'" in lines
    assert lines[-2:] == [f"wrote {out}", f"wrote {out.parent / 'appropriateness.yaml'}"]
    check = CliRunner().invoke(main, ["dictionary", "check", str(out)])
    assert check.exit_code == 0, check.stderr
    assert check.stdout.startswith("registry3d-case 1.2.0:")


def test_from_redcap_refuses_a_bad_file_with_its_rows_and_writes_nothing(
    world, dictionary, tmp_path
):
    rows = exported(dictionary)
    name = moved(rows)
    source = tmp_path / "bad.csv"
    source.write_bytes(saved(rows))
    out = tmp_path / "case.yaml"
    result = CliRunner().invoke(main, ["dictionary", "from-redcap", str(source), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the file cannot become a dictionary version; nothing was written:\n"
        f"Row {number_of(rows, name)}, {name}: the field moved from form case to "
        "imaging_indication; fields cannot move (add a new field instead)\n"
    )
    assert out.exists() is False
