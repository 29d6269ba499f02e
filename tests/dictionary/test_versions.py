from click.testing import CliRunner

from registry3d.cli import main
from registry3d.dictionary.loader import load_dictionary
from registry3d.dictionary.versions import carry_forward, diff
from tests.dictionary.conftest import CASE_FILE

NEXT_VERSION = [
    ("version: 1.0.0\n", "version: 1.1.0\n"),
    (
        "      - name: assessment_completed_days_after_procedure\n",
        "      - name: days_to_assessment\n",
    ),
    (
        '      - {code: other, label: "Other"}\n',
        '      - {code: other, label: "Other"}\n      - {code: intersex, label: "Intersex"}\n',
    ),
]
NEXT_HISTORY = """  - version: 1.1.0
    released: 2027-01-01
    summary: Rename the days to assessment; add a sex code; carry 'unknown' modality forward.
    changes:
      - {kind: renamed, from: assessment_completed_days_after_procedure, to: days_to_assessment}
      - {kind: value_renamed, element: imaging.modality, from: cta, to: ct}
      - {kind: added_required, element: rush_case, default: false}
      - {kind: removed, element: ordering_clinician_role}
"""


def test_a_new_version_carries_old_cases_forward(dictionary_copy):
    new = load_dictionary(dictionary_copy(*NEXT_VERSION, append=NEXT_HISTORY))
    old_case = {
        "age_years": 0,
        "assessment_completed_days_after_procedure": 4,
        "imaging": [{"modality": "cta"}, {"modality": "mr"}],
        "ordering_clinician_role": "trainee",
    }
    carried = carry_forward(old_case, "1.0.0", new)
    assert carried == {
        "age_years": 0,
        "days_to_assessment": 4,
        "imaging": [{"modality": "ct"}, {"modality": "mr"}],
        "rush_case": False,
    }
    assert (
        old_case["assessment_completed_days_after_procedure"] == 4
    )  # the stored original is not touched
    # A case already at the new version is left as it is.
    assert carry_forward(carried, "1.1.0", new) == carried


def test_diff_names_what_changed(dictionary_copy):
    old = load_dictionary(CASE_FILE)
    new = load_dictionary(dictionary_copy(*NEXT_VERSION, append=NEXT_HISTORY))
    lines = [str(d) for d in diff(old, new)]
    label = new.elements["days_to_assessment"].label
    assert f"+ element:days_to_assessment: {label} (integer, section user_assessment)" in lines
    assert "- element:assessment_completed_days_after_procedure" in lines
    assert "~ value_set:sex: code intersex added" in lines


def test_the_cli_checks_and_compares_files(dictionary_copy):
    good = run("dictionary", "check", str(CASE_FILE))
    assert good.exit_code == 0
    assert good.stdout.startswith("registry3d-case 1.0.0: 8 sections, 65 elements")
    new = dictionary_copy(*NEXT_VERSION, append=NEXT_HISTORY)
    compared = run("dictionary", "diff", str(CASE_FILE), str(new))
    assert compared.exit_code == 0
    assert compared.stdout.splitlines()[0] == "1.0.0 → 1.1.0"
    assert "- element:assessment_completed_days_after_procedure" in compared.stdout


def test_the_cli_names_file_and_line_of_a_broken_dictionary(dictionary_copy):
    broken = dictionary_copy(("        type: year_month\n", "        type: month\n"))
    result = run("dictionary", "check", str(broken))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {broken}, line ")
    assert "element 'case_year_month': unknown type 'month'" in result.stderr


def run(*args):
    return CliRunner().invoke(main, list(args))
