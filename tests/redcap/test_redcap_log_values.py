"""REDCap's log reads values from the site's case versions, not from the audit trail."""

import json

from click.testing import CliRunner

from registry3d.cases import services as case_services
from registry3d.cli import main
from tests.redcap.conftest import redcap_post


def log_details(api, token) -> list[tuple[str, str]]:
    rows = json.loads(redcap_post(api, token=token, content="log", format="json").content)
    return [(r["action"], r["details"]) for r in rows]


def test_the_log_shows_the_versions_values_and_after_a_redaction_its_marker(redcap_world, api):
    case = case_services.save_case(
        redcap_world.site_a,
        case_uid="L-1",
        data={"anatomic_parts": [{"region": "head", "structure": "bone", "comment": "left"}]},
    ).case
    case_services.withdraw_case(case, "entered twice")
    assert log_details(api, redcap_world.bob_token) == [
        ("Update record L-1", "status = 'withdrawn', reason = 'entered twice'"),
        (
            "Create record L-1",
            "status = 'draft', anatomic_parts[1].comment = 'left', "
            "anatomic_parts[1].region = 'head', anatomic_parts[1].structure = 'bone'",
        ),
    ]
    for element in ("withdrawn_reason", "anatomic_parts[1].comment"):
        result = CliRunner().invoke(
            main, ["case", "redact", "SITEA", "L-1", "--element", element, "--reason", "typo"]
        )
        assert result.exit_code == 0, result.output
    assert log_details(api, redcap_world.bob_token) == [
        ("Update record L-1", "status = 'withdrawn', reason = '[redacted]'"),
        (
            "Create record L-1",
            "status = 'draft', anatomic_parts[1].comment = '[redacted]', "
            "anatomic_parts[1].region = 'head', anatomic_parts[1].structure = 'bone'",
        ),
    ]
