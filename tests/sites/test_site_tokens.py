import re

from registry3d.audit.models import AuditEvent
from registry3d.sites import services
from registry3d.sites.models import ApiToken
from tests.conftest import client_for, csrf_post


def test_a_manager_creates_a_token_that_is_shown_once_and_stored_as_a_hash(world):
    client = client_for(world.mona)
    response = csrf_post(
        client,
        "/sites/SITEA/tokens/",
        {"name": "Lab tracker", "scope": "write", "user": "alice@a.example.org"},
    )
    assert response.status_code == 201
    raw = (
        re.search(rb"<p class=\"token\" data-new-token>(r3d_[\w-]+)</p>", response.content)
        .group(1)
        .decode()
    )
    token = ApiToken.objects.get(name="Lab tracker")
    assert token.user == world.alice and token.scope == "write"
    assert token.token_hash != raw and raw not in token.token_hash
    assert services.authenticate_token(raw).pk == token.pk
    # Shown once: the list page does not show it again.
    assert raw.encode() not in client.get("/sites/SITEA/tokens/").content
    event = AuditEvent.objects.get(action="token.created")
    assert raw not in str(event.changes)


def test_a_write_token_for_a_viewer_is_refused(world):
    response = csrf_post(
        client_for(world.mona),
        "/sites/SITEA/tokens/",
        {"name": "Sneaky", "scope": "write", "user": "bob@a.example.org"},
    )
    assert response.status_code == 400
    assert (
        "bob@a.example.org is a viewer at SITEA; a write token needs a contributor or manager"
        in response.content.decode()
    )
    assert ApiToken.objects.exists() is False


def test_a_token_can_only_act_as_a_member_of_the_site(world):
    response = csrf_post(
        client_for(world.mona),
        "/sites/SITEA/tokens/",
        {"name": "Other", "scope": "read", "user": "carol@b.example.org"},
    )
    assert response.status_code == 400
    assert ApiToken.objects.exists() is False


def test_a_manager_revokes_a_token(world):
    token, raw = services.create_token(world.site_a, world.alice, name="Old", scope="read")
    response = csrf_post(client_for(world.mona), f"/sites/SITEA/tokens/{token.code}/revoke/")
    assert response.status_code == 302
    assert services.authenticate_token(raw) is None
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_another_sites_manager_gets_404_for_the_token_list_and_cannot_revoke(world):
    token, raw = services.create_token(world.site_a, world.alice, name="Tracker", scope="read")
    carol = client_for(world.carol)
    assert carol.get("/sites/SITEA/tokens/").status_code == 404
    assert csrf_post(carol, f"/sites/SITEA/tokens/{token.code}/revoke/").status_code == 404
    # Nor through her own site's address.
    assert csrf_post(carol, f"/sites/SITEB/tokens/{token.code}/revoke/").status_code == 404
    assert services.authenticate_token(raw) is not None


def test_a_viewer_may_not_see_tokens(world):
    assert client_for(world.bob).get("/sites/SITEA/tokens/").status_code == 403


def test_a_manager_creates_a_redcap_token_of_32_hexadecimal_characters(world):
    client = client_for(world.mona)
    response = csrf_post(
        client,
        "/sites/SITEA/tokens/",
        {"name": "PyCap export", "scope": "read", "kind": "redcap", "user": "bob@a.example.org"},
    )
    assert response.status_code == 201
    raw = (
        re.search(rb"<p class=\"token\" data-new-token>([^<]+)</p>", response.content)
        .group(1)
        .decode()
    )
    assert re.fullmatch(r"[0-9A-F]{32}", raw)
    assert "send it as the <code>token</code> parameter to" in response.content.decode()
    token = ApiToken.objects.get(name="PyCap export")
    assert (token.kind, token.prefix, token.user) == ("redcap", raw[:6], world.bob)
    assert raw not in token.token_hash
    assert services.authenticate_token(raw, kind="redcap").pk == token.pk
    # A REDCap token is not an API token, and the list says where each works.
    assert services.authenticate_token(raw) is None
    assert "REDCap API (/redcap/api/)" in client.get("/sites/SITEA/tokens/").content.decode()


def test_carol_cannot_open_or_post_site_as_tokens_page(world):
    client = client_for(world.carol)
    assert client.get("/sites/SITEA/tokens/").status_code == 404
    response = csrf_post(
        client,
        "/sites/SITEA/tokens/",
        {"name": "Mine", "scope": "read", "kind": "redcap", "user": "carol@b.example.org"},
    )
    assert response.status_code == 404
    assert ApiToken.objects.exists() is False


def test_a_token_named_with_a_name_and_a_phone_number_is_refused_without_echo(world):
    """The name is written into the token.created event, kept for good (#15)."""
    client = client_for(world.mona)
    typed = "John Smith 617-555-0100"
    response = csrf_post(
        client,
        "/sites/SITEA/tokens/",
        {"name": typed, "scope": "read", "user": "alice@a.example.org"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert (
        "Token name: this looks like a phone number; the registry never stores patient "
        "identifiers, so remove it"
    ) in page
    assert typed not in page and "617-555-0100" not in page
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="token.created").exists()
