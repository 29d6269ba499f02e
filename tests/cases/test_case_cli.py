import json

import pytest
from click.testing import CliRunner

from registry3d.cases import services
from registry3d.cases.models import Case
from registry3d.cli import main
from registry3d.lib.pseudonym import patient_key


def run(*args, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def test_case_show_prints_the_case_and_its_history(world):
    services.save_case(world.site_a, case_uid="C-1", status="draft", data={"age_years": 4})
    services.save_case(world.site_a, case_uid="C-1", status="draft", data={"age_years": 5})
    result = run("case", "show", "SITEA", "C-1", "--history")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["version"], shown["data"]) == (2, {"age_years": 5})
    assert [v["changes"] for v in shown["history"]] == [
        {"age_years": [None, 4]},
        {"age_years": [4, 5]},
    ]


def test_case_show_refuses_an_unknown_case_with_one_line(world):
    result = run("case", "show", "SITEA", "NOPE")
    assert result.exit_code == 1
    assert result.stderr == "Error: SITEA has no case 'NOPE'\n"


@pytest.mark.parametrize("uid", ["1950-03-03", "123-45-6789", "John Smith"])
def test_case_show_never_repeats_a_case_id_shaped_like_an_identifier(world, uid):
    result = run("case", "show", "SITEA", uid)
    assert result.exit_code == 1
    assert result.stderr == "Error: SITEA has no case with that ID\n"


def test_case_withdraw(world):
    services.save_case(world.site_a, case_uid="C-2", status="draft", data={})
    result = run("case", "withdraw", "SITEA", "C-2", "--reason", "Test entry")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "withdrew SITEA/C-2 (version 2)\n"
    assert Case.objects.get(case_uid="C-2").status == "withdrawn"
    again = run("case", "withdraw", "SITEA", "C-2", "--reason", "Test entry")
    assert again.exit_code == 1
    assert again.stderr == "Error: Case C-2 is already withdrawn\n"


def test_pseudonymize_prints_one_key_per_mrn_and_reads_standard_input(world):
    result = run("pseudonymize", "--site", "SITEA", "123-456", "987654")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        patient_key("SITEA", "123456"),
        patient_key("SITEA", "987654"),
    ]
    piped = run("pseudonymize", "--site", "SITEA", "-", input="123-456\n\n987654\n")
    assert piped.stdout == result.stdout
    other = run("pseudonymize", "--site", "SITEB", "123456")
    assert other.stdout.strip() != result.stdout.splitlines()[0]
