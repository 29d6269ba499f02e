"""The command line, driven through click's runner against the test database."""

import re

import pytest
from click.testing import CliRunner

from registry3d.accounts.models import User
from registry3d.audit.models import AuditEvent
from registry3d.cli import main
from registry3d.sites import services
from registry3d.sites.models import ApiToken, Membership, Site


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_every_command_has_help():
    for command in (
        [],
        ["init"],
        ["serve"],
        ["worker"],
        ["site"],
        ["site", "add"],
        ["site", "list"],
        ["user"],
        ["user", "add"],
        ["token"],
        ["token", "create"],
        ["token", "revoke"],
        ["audit"],
        ["audit", "verify"],
        ["audit", "scrub-values"],
        ["import"],
        ["case"],
        ["case", "show"],
        ["case", "withdraw"],
        ["case", "redact"],
        ["pseudonymize"],
        ["dicom"],
        ["dicom", "read"],
        ["mesh"],
        ["mesh", "measure"],
        ["dictionary"],
        ["dictionary", "check"],
        ["dictionary", "diff"],
        ["dictionary", "publish"],
        ["dictionary", "generate"],
        ["dictionary", "upgrade-cases"],
    ):
        result = run(*command, "--help")
        assert result.exit_code == 0, command
        assert "Usage: " in result.output
        # The first line of help says what the command does.
        assert len(result.output.split("\n\n")[1].strip()) > 10, command


@pytest.mark.django_db
def test_site_add_creates_a_site_and_prints_its_code():
    result = run(
        "site",
        "add",
        "MIH01",
        "--name",
        "Memorial Hospital",
        "--region",
        "Ohio",
        "--type",
        "academic",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "MIH01\n"
    site = Site.objects.get(code="MIH01")
    assert (site.name, site.region, site.facility_type) == ("Memorial Hospital", "Ohio", "academic")
    event = AuditEvent.objects.get(action="site.created")
    assert event.actor_label.startswith("command line (")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["mih 01"],
            "Error: Site code 'mih 01' is not valid; use 2 to 16 capital letters, "
            "digits or _, starting with a letter or digit (e.g. MIH01)\n",
        ),
        (
            ["MIH01", "--type", "castle"],
            "Error: Unknown facility type 'castle'; expected one of: "
            "academic, community, childrens, private_practice, "
            "government, other\n",
        ),
        (
            ["MIH01", "--country", "USA"],
            "Error: Country 'USA' is not valid; use a two-letter ISO code such as US\n",
        ),
    ],
)
def test_site_add_refuses_bad_values_with_one_line(args, message):
    result = run("site", "add", *args, "--name", "X")
    assert result.exit_code == 1
    assert result.stderr == message
    assert result.stdout == ""
    assert Site.objects.exists() is False


def test_site_add_refuses_a_duplicate_code(world):
    result = run("site", "add", "SITEA", "--name", "Again")
    assert result.exit_code == 1
    assert result.stderr == "Error: Site SITEA already exists\n"
    assert Site.objects.get(code="SITEA").name == "Site A Hospital"


def test_user_add_with_a_site_and_role(world):
    result = run(
        "user",
        "add",
        "Eve@A.example.org",
        "--password",
        "a-decent-password-1",
        "--site",
        "SITEA",
        "--role",
        "contributor",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "eve@a.example.org\n"
    eve = User.objects.get(email="eve@a.example.org")
    assert eve.check_password("a-decent-password-1") is True
    assert Membership.objects.get(user=eve).role == "contributor"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--site", "NOSUCH", "--role", "viewer"], "Error: No site has the code 'NOSUCH'\n"),
        (
            ["--site", "SITEA", "--role", "boss"],
            "Error: Unknown role 'boss'; expected one of: viewer, contributor, manager\n",
        ),
        (["--site", "SITEA"], "Error: --site and --role go together\n"),
    ],
)
def test_user_add_refuses_unknown_site_or_role_and_changes_nothing(world, args, message):
    before = User.objects.count()
    result = run("user", "add", "eve@a.example.org", "--password", "a-decent-password-1", *args)
    assert result.exit_code == 1
    assert result.stderr == message
    assert User.objects.count() == before


def test_user_add_refuses_a_duplicate_email(world):
    result = run("user", "add", "ALICE@a.example.org", "--password", "a-decent-password-1")
    assert result.exit_code == 1
    assert result.stderr == "Error: An account for alice@a.example.org already exists\n"


def test_user_add_refuses_a_weak_password(world):
    result = run("user", "add", "eve@a.example.org", "--password", "123")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Password refused: This password is too short.")
    assert User.objects.filter(email="eve@a.example.org").exists() is False


def test_token_create_refuses_a_name_that_holds_a_name_and_a_phone_number(world):
    """The name is written into the token.created event, kept for good (#15)."""
    result = run(
        "token",
        "create",
        "--user",
        "alice@a.example.org",
        "--site",
        "SITEA",
        "--name",
        "John Smith 617-555-0100",
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Token name: this looks like a phone number; the registry never stores "
        "patient identifiers, so remove it\n"
    )
    assert result.stdout == ""
    assert not AuditEvent.objects.filter(action="token.created").exists()


def test_token_create_prints_only_the_token(world):
    result = run(
        "token", "create", "--user", "alice@a.example.org", "--site", "SITEA", "--scope", "write"
    )
    assert result.exit_code == 0, result.stderr
    raw = result.stdout.strip()
    assert result.stdout == raw + "\n"
    token = services.authenticate_token(raw)
    assert (token.site.code, token.user.email, token.scope) == (
        "SITEA",
        "alice@a.example.org",
        "write",
    )


def test_token_create_with_redcap_prints_a_redcap_token(world):
    result = run("token", "create", "--user", "alice@a.example.org", "--site", "SITEA", "--redcap")
    assert result.exit_code == 0, result.stderr
    raw = result.stdout.strip()
    assert re.fullmatch(r"[0-9A-F]{32}", raw), raw
    token = services.authenticate_token(raw, kind="redcap")
    assert (token.site.code, token.kind, token.scope) == ("SITEA", "redcap", "read")
    assert services.authenticate_token(raw) is None


def test_token_create_refuses_a_non_member(world):
    result = run("token", "create", "--user", "carol@b.example.org", "--site", "SITEA")
    assert result.exit_code == 1
    assert result.stderr == "Error: carol@b.example.org is not a member of SITEA\n"
    assert ApiToken.objects.exists() is False


def test_token_revoke_by_prefix(world):
    token, raw = services.create_token(world.site_a, world.bob, name="R", scope="read")
    result = run("token", "revoke", raw[:10], "--site", "SITEA")
    assert result.exit_code == 0, result.stderr
    assert services.authenticate_token(raw) is None
