import pytest
from click.testing import CliRunner

from registry3d.cli import main
from registry3d.dictionary.errors import DictionaryError
from registry3d.dictionary.loader import load_dictionary
from registry3d.dictionary.versions import carry_forward, diff
from tests.dictionary.conftest import CASE_FILE

NEXT_VERSION = [
    ("version: 1.1.0\n", "version: 1.2.0\n"),
    (
        "      - name: assessment_completed_days_after_procedure\n",
        "      - name: days_to_assessment\n",
    ),
    (
        '      - {code: other, label: "Other"}\n',
        '      - {code: other, label: "Other"}\n      - {code: intersex, label: "Intersex"}\n',
    ),
]
NEXT_HISTORY = """  - version: 1.2.0
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
    carried = carry_forward(old_case, "1.1.0", new)
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
    assert carry_forward(carried, "1.2.0", new) == carried


@pytest.mark.parametrize(
    ("typed", "carried"),
    [
        (
            "Mimics 25",
            {"segmentation_software": "materialise_mimics", "segmentation_software_version": "25"},
        ),
        (
            "3D Slicer v5.6.2",
            {"segmentation_software": "slicer_3d", "segmentation_software_version": "5.6.2"},
        ),
        ("Mimics run by John Smith", {"segmentation_software": "materialise_mimics"}),
        ("Mimics 1950-03-03", {"segmentation_software": "materialise_mimics"}),
        (
            "Mimics 24.0 SP1",
            {
                "segmentation_software": "materialise_mimics",
                "segmentation_software_version": "24.0 SP1",
            },
        ),
        (
            "Our own tool",
            {"segmentation_software": "other", "segmentation_software_other": "Our own tool"},
        ),
        ("materialise_mimics", {"segmentation_software": "materialise_mimics"}),
    ],
)
def test_stored_software_text_becomes_a_code_and_a_version(typed, carried):
    dictionary = load_dictionary(CASE_FILE)
    assert carry_forward({"segmentation_software": typed}, "1.0.0", dictionary) == carried


def test_stored_material_text_becomes_a_code_in_every_print():
    dictionary = load_dictionary(CASE_FILE)
    old = {
        "prints": [
            {"material_trade_name": "VeroClear RGD810"},
            {"material_trade_name": "BioMed Clear"},
            {"material_trade_name": "Mary's resin"},
            {"material": "pla"},
        ]
    }
    assert carry_forward(old, "1.0.0", dictionary)["prints"] == [
        {"material_trade_name": "stratasys_veroclear"},
        {"material_trade_name": "formlabs_biomed_clear"},
        {"material_trade_name": "other", "material_trade_name_other": "Mary's resin"},
        {"material": "pla"},
    ]


def test_every_carried_product_code_is_in_its_value_set():
    dictionary = load_dictionary(CASE_FILE)
    (change,) = [c for c in dictionary.history[-1].changes if c.data["element"] == "cad_software"]
    codes = dictionary.value_sets["cad_software"].active_codes()
    assert {m["code"] for m in change.data["match"]} | {"other"} == set(codes)


CAD_CHANGE = "element: cad_software\n        other: other"


@pytest.mark.parametrize(
    ("old", "new", "message", "line_with"),
    [
        (
            "other: other\n        other_element: cad_software_other\n",
            "other: none\n        other_element: cad_software_other\n",
            "history 1.1.0: text_to_code: 'none' is not a code of value set 'cad_software'",
            "element: cad_software\n",
        ),
        (
            "other_element: cad_software_other\n",
            "other_element: cad_software_version\n",
            "history 1.1.0: text_to_code: other_element 'cad_software_version' must be "
            "free_text: true",
            "element: cad_software\n",
        ),
        (
            "version_element: cad_software_version\n",
            "version_element: prints.material_trade_name_other\n",
            "history 1.1.0: text_to_code: version_element 'prints.material_trade_name_other' "
            "is not a text element at the top level",
            "element: cad_software\n",
        ),
        (
            "pattern: '(?i)\\bblender\\b'}",
            "pattern: '(?i)\\bblender('}",
            "history 1.1.0: text_to_code: match 9: pattern is not a valid regular expression",
            "{code: blender,",
        ),
        (
            "element: cad_software\n",
            "element: cad_software_other\n",
            "history 1.1.0: text_to_code: 'cad_software_other' is not a choice element",
            "element: cad_software_other\n        other: other",
        ),
        (
            "version_element: cad_software_version\n",
            "version_elements: cad_software_version\n",
            "history 1.1.0: text_to_code: unknown key 'version_elements'",
            "element: cad_software\n",
        ),
    ],
)
def test_a_broken_text_to_code_change_is_refused_at_its_line(
    dictionary_copy, old, new, message, line_with
):
    path = dictionary_copy()
    text = path.read_text(encoding="utf-8")
    start = text.index(CAD_CHANGE)
    text = text[:start] + text[start:].replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DictionaryError) as caught:
        load_dictionary(path)
    assert caught.value.message.startswith(message)
    line = text[: text.index(line_with, start - 40)].count("\n") + 1
    # A match entry is named at its own line; the change at its "- kind:"
    # line, the one above "element:".
    assert caught.value.line == (line if line_with.startswith("{code") else line - 1)


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
    assert good.stdout.startswith("registry3d-case 1.1.0: 8 sections, 69 elements")
    new = dictionary_copy(*NEXT_VERSION, append=NEXT_HISTORY)
    compared = run("dictionary", "diff", str(CASE_FILE), str(new))
    assert compared.exit_code == 0
    assert compared.stdout.splitlines()[0] == "1.1.0 → 1.2.0"
    assert "- element:assessment_completed_days_after_procedure" in compared.stdout


def test_the_cli_names_file_and_line_of_a_broken_dictionary(dictionary_copy):
    broken = dictionary_copy(("        type: year_month\n", "        type: month\n"))
    result = run("dictionary", "check", str(broken))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {broken}, line ")
    assert "element 'case_year_month': unknown type 'month'" in result.stderr


def run(*args):
    return CliRunner().invoke(main, list(args))
