"""Bulk import of real CSV and XLSX files through the command line and the write path."""

import pytest
from click.testing import CliRunner

from registry3d.audit.services import verify_chain
from registry3d.cases.models import Case, CaseVersion
from registry3d.cli import main
from registry3d.intake.models import Import
from tests.cases.conftest import printers_for
from tests.intake.import_files import case_rows, write_csv, write_xlsx


@pytest.fixture
def labels(world):
    return printers_for(world.site_a)


def run(*args):
    return CliRunner().invoke(main, ["import", *args])


@pytest.mark.parametrize("delimiter, name", [(",", "comma"), (";", "semicolon"), ("\t", "tab")])
def test_a_csv_imports_with_any_common_delimiter_and_says_which(
    world, labels, tmp_path, delimiter, name
):
    path = write_csv(tmp_path / "cases.csv", case_rows(12, labels), delimiter, bom=True)
    result = run(str(path), "--site", "SITEA")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"cases.csv (csv, {name}-separated): 12 rows — 12 new, 0 changed, 0 unchanged, 0 invalid"
    )
    assert Case.objects.filter(site=world.site_a, status="submitted").count() == 12
    assert verify_chain().ok is True


def test_an_xlsx_imports_too(world, labels, tmp_path):
    path = write_xlsx(tmp_path / "cases.xlsx", case_rows(5, labels, seed=2))
    result = run(str(path), "--site", "SITEA")
    assert result.exit_code == 0, result.stderr
    assert Case.objects.count() == 5


def test_importing_the_same_file_again_changes_nothing(world, labels, tmp_path):
    path = write_csv(tmp_path / "cases.csv", case_rows(8, labels))
    run(str(path), "--site", "SITEA")
    again = run(str(path), "--site", "SITEA")
    assert "8 rows — 0 new, 0 changed, 8 unchanged, 0 invalid" in again.stdout
    assert CaseVersion.objects.count() == 8


def test_a_changed_row_becomes_a_new_version_from_the_import(world, labels, tmp_path):
    rows = case_rows(3, labels)
    run(str(write_csv(tmp_path / "a.csv", rows)), "--site", "SITEA")
    rows[1]["turnaround_days"] = "17"
    result = run(str(write_csv(tmp_path / "b.csv", rows)), "--site", "SITEA")
    assert "3 rows — 0 new, 1 changed, 2 unchanged, 0 invalid" in result.stdout
    case = Case.objects.get(case_uid=rows[1]["case_uid"])
    latest = case.versions.get(version=2)
    assert latest.changes["turnaround_days"][1] == 17
    batch = Import.objects.order_by("-created_at").first()
    assert latest.note == f"import {batch.code}"


def test_all_or_nothing_writes_nothing_when_a_row_is_bad(world, labels, tmp_path):
    rows = case_rows(6, labels)
    rows[1]["age_years"] = "forty"
    rows[4]["sex"] = "robot"
    problems = tmp_path / "problems.csv"
    result = run(
        str(write_csv(tmp_path / "c.csv", rows)), "--site", "SITEA", "--problems", str(problems)
    )
    assert result.exit_code == 1
    assert "6 rows — 4 new, 0 changed, 0 unchanged, 2 invalid" in result.stdout
    assert "Row 3, age_years: Patient age (years): the value is not valid" in result.stderr
    assert result.stderr.endswith(
        "Error: 2 invalid rows: nothing was written (fix them, or import the valid rows only)\n"
    )
    assert Case.objects.exists() is False
    lines = problems.read_text().splitlines()
    assert lines[0] == "row,case_uid,element,code,message"
    assert lines[1].startswith(f"3,{rows[1]['case_uid']},age_years,wrong_type,")
    assert lines[2].startswith(f"6,{rows[4]['case_uid']},sex,not_in_value_set,")


def test_valid_rows_mode_writes_the_good_rows_and_reports_the_rest(world, labels, tmp_path):
    rows = case_rows(5, labels)
    rows[2]["ua_comment"] = "Seen with Mr. Smith"
    result = run(
        str(write_csv(tmp_path / "d.csv", rows)), "--site", "SITEA", "--mode", "valid-rows"
    )
    assert result.exit_code == 0, result.stderr
    assert "Wrote 4 cases" in result.stdout
    assert "Row 4, ua_comment: Comment: this looks like a person's name" in result.stderr
    assert "Smith" not in result.stderr
    assert not Case.objects.filter(case_uid=rows[2]["case_uid"]).exists()


def test_unknown_columns_are_reported_not_fatal_and_labels_work_as_headers(world, labels, tmp_path):
    rows = case_rows(2, labels)
    for row in rows:
        row["Favourite colour"] = "blue"
        row["Patient age (years)"] = row.pop("age_years")
    result = run(str(write_csv(tmp_path / "e.csv", rows)), "--site", "SITEA")
    assert result.exit_code == 0, result.stderr
    assert "Unknown columns, ignored: Favourite colour" in result.stderr
    assert Case.objects.count() == 2


def test_a_preview_writes_nothing(world, labels, tmp_path):
    result = run(
        str(write_csv(tmp_path / "f.csv", case_rows(3, labels))), "--site", "SITEA", "--preview"
    )
    assert "Preview only: nothing was written." in result.stdout
    assert Case.objects.exists() is False


def test_a_case_id_twice_in_one_file_is_a_problem(world, labels, tmp_path):
    rows = case_rows(2, labels)
    rows[1]["case_uid"] = rows[0]["case_uid"]
    result = run(str(write_csv(tmp_path / "g.csv", rows)), "--site", "SITEA")
    assert result.exit_code == 1
    assert "appears more than once in the file" in result.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "Error: empty.csv: the file is empty\n"),
        (
            "age;\xe9\n".encode("latin-1"),
            "Error: empty.csv: the file is not UTF-8 text; save it as CSV UTF-8\n",
        ),
    ],
)
def test_unreadable_files_get_one_clear_line(world, tmp_path, content, message):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    result = run(str(path), "--site", "SITEA")
    assert result.exit_code == 1
    assert result.stderr == message


def test_a_file_for_another_sites_printers_is_refused(world, labels, tmp_path):
    other = printers_for(world.site_b)
    rows = case_rows(2, {t: label + "-B" for t, label in other.items()})
    result = run(str(write_csv(tmp_path / "h.csv", rows)), "--site", "SITEA")
    assert result.exit_code == 1
    assert (
        "The printer must be in the site's printer inventory" in result.stderr
        or "printer" in result.stderr
    )
    assert Case.objects.exists() is False
