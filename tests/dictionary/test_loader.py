import pytest

from registry3d.dictionary import registry
from registry3d.dictionary.errors import DictionaryError
from registry3d.dictionary.loader import load_dictionary
from registry3d.dictionary.registry import load
from tests.dictionary.conftest import CASE_FILE, line_of


def test_the_shipped_dictionary_loads_with_all_its_sections():
    d = load_dictionary(CASE_FILE)
    assert [s.id for s in d.sections] == [
        "case",
        "imaging_indication",
        "digital_model",
        "printed_model",
        "procedure",
        "effort",
        "cost_coding",
        "user_assessment",
    ]
    assert d.elements["anatomic_parts"].max_items == 20
    assert d.elements["prints"].max_items == 5
    assert len([e for e in d.elements if e.startswith("effort_")]) == 8
    assert [s.id for s in d.questionnaire_sections()] == ["user_assessment"]


def refused(path) -> DictionaryError:
    with pytest.raises(DictionaryError) as caught:
        load_dictionary(path)
    return caught.value


def test_an_unknown_type_is_refused_with_file_and_line(dictionary_copy):
    path = dictionary_copy(("        type: year_month\n", "        type: month_of_year\n"))
    error = refused(path)
    assert error.file == str(path)
    assert error.line == line_of(path, "name: case_year_month")
    assert error.message.startswith("element 'case_year_month': unknown type 'month_of_year'")


def test_a_duplicate_element_name_is_refused(dictionary_copy):
    path = dictionary_copy(("      - name: age_under_1_months\n", "      - name: age_years\n"))
    error = refused(path)
    lines = [
        n for n, line in enumerate(path.read_text().splitlines(), 1) if "name: age_years" in line
    ]
    assert error.line == lines[1]
    assert error.message == f"element 'age_years' is defined twice (first at line {lines[0]})"


def test_a_rule_naming_an_unknown_element_is_refused(dictionary_copy):
    path = dictionary_copy(
        ("check: \"count(prints, print_role == 'primary') == 1\"", 'check: "count(printz) == 1"')
    )
    error = refused(path)
    assert error.message == "rule 'R7': 'printz' is not an element of the dictionary"
    assert error.line == line_of(path, "- id: R7")


def test_a_circular_required_when_is_refused(dictionary_copy):
    path = dictionary_copy()
    text = path.read_text()
    for name, other in (
        ("is_point_of_care", "exclusion_check"),
        ("exclusion_check", "is_point_of_care"),
    ):
        start = text.index(f"- name: {name}")
        end = text.index("required: true", start)
        text = text[:end] + f'required: "filled({other})"' + text[end + len("required: true") :]
    path.write_text(text)
    error = refused(path)
    assert error.message in (
        "circular required-when: is_point_of_care → exclusion_check → is_point_of_care",
        "circular required-when: exclusion_check → is_point_of_care → exclusion_check",
    )


def test_a_duplicate_yaml_key_is_refused_with_its_line(dictionary_copy):
    path = dictionary_copy(
        ("        type: year_month\n", "        type: year_month\n        type: year_month\n")
    )
    error = refused(path)
    assert error.message == "the key 'type' appears twice"
    assert error.line == line_of(path, "type: year_month") + 1


def test_broken_yaml_is_refused_with_its_line(dictionary_copy):
    path = dictionary_copy(("title: 3D printing case\n", "title: [unclosed\n"))
    error = refused(path)
    assert error.message.startswith("not valid YAML")
    assert error.line is not None


def test_an_expression_that_tries_to_run_code_is_refused(dictionary_copy):
    path = dictionary_copy(
        (
            "required: \"object_type == 'anatomic_guide'\"",
            "required: \"__import__('os').system('true')\"",
        )
    )
    error = refused(path)
    assert "is not a function of the dictionary" in error.message


def test_a_value_set_that_is_not_defined_is_refused(dictionary_copy):
    path = dictionary_copy(("        value_set: sex\n", "        value_set: gender\n"))
    assert refused(path).message == "element 'sex': value set 'gender' is not defined"


def test_a_changed_element_that_keeps_a_published_version_is_refused(dictionary_copy):
    path = dictionary_copy(
        ("        min: 0\n        max: 120\n", "        min: 0\n        max: 130\n")
    )
    with pytest.raises(DictionaryError) as caught:
        load(path)
    assert caught.value.message == (
        "version 1.1.0 is already published, but element:age_years changed; give the file a "
        "new version and describe the change under 'history'"
    )


def test_the_same_change_with_a_new_version_and_history_loads(dictionary_copy):
    path = dictionary_copy(
        ("        min: 0\n        max: 120\n", "        min: 0\n        max: 130\n"),
        ("version: 1.1.0\n", "version: 1.2.0\n"),
        append="  - version: 1.2.0\n    released: 2027-01-01\n    summary: Allow ages to 130.\n"
        "    changes: []\n",
    )
    assert load(path).dictionary.version == "1.2.0"


def test_a_broken_file_never_replaces_the_running_dictionary(dictionary_copy):
    before = registry.current()
    path = dictionary_copy(("        type: year_month\n", "        type: nonsense\n"))
    with pytest.raises(DictionaryError):
        registry.reload(path)
    assert registry.current() is before
