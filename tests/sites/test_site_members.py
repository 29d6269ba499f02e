import re

import pytest
from django.core import mail
from django.test import Client

from registry3d.accounts.models import User
from registry3d.audit.models import AuditEvent
from registry3d.sites.models import Membership
from tests.conftest import client_for, csrf_post


def member_url(site, user, action):
    code = Membership.objects.get(site=site, user=user).code
    return f"/sites/{site.code}/members/{code}/{action}/"


def role_of(site, user):
    return Membership.objects.get(site=site, user=user).role


def test_a_manager_sees_the_members_of_their_site(world):
    response = client_for(world.mona).get("/sites/SITEA/members/")
    assert response.status_code == 200
    page = response.content.decode()
    for email in ("alice@a.example.org", "bob@a.example.org", "mona@a.example.org"):
        assert email in page
    assert "carol@b.example.org" not in page


@pytest.mark.parametrize("who", ["carol", "dan"])
def test_another_sites_manager_and_an_analyst_get_404_for_the_members_page(world, who):
    assert client_for(getattr(world, who)).get("/sites/SITEA/members/").status_code == 404


def test_a_contributor_may_not_manage_members(world):
    response = client_for(world.alice).get("/sites/SITEA/members/")
    assert response.status_code == 403
    assert "This page needs the manager role at SITEA" in response.content.decode()


def test_a_registry_admin_may_manage_any_sites_members(world):
    assert client_for(world.ada).get("/sites/SITEB/members/").status_code == 200


def test_inviting_a_new_person_creates_an_account_without_password_and_mails_a_link(
    world, django_capture_on_commit_callbacks
):
    client = client_for(world.mona)
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(
            client, "/sites/SITEA/members/", {"email": "New.Person@A.example.org", "role": "viewer"}
        )
    assert response.status_code == 302
    newcomer = User.objects.get(email="new.person@a.example.org")
    assert newcomer.has_usable_password() is False
    assert role_of(world.site_a, newcomer) == "viewer"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@a.example.org"]
    assert message.subject == "You have been added to Site A Hospital on registry3d"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    # The link lets them choose a password.
    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(link, follow=True)
    assert b"Choose a password" in page.content
    actions = list(AuditEvent.objects.filter(site=world.site_a).values_list("action", flat=True))
    assert "membership.invitation_sent" in actions and "membership.added" in actions


def test_inviting_an_existing_account_adds_the_membership(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_post(
            client_for(world.mona),
            "/sites/SITEA/members/",
            {"email": "carol@b.example.org", "role": "viewer"},
        )
    assert response.status_code == 302
    assert role_of(world.site_a, world.carol) == "viewer"
    assert "Log in with your existing account" in mail.outbox[0].body


def test_inviting_someone_already_a_member_is_refused_next_to_the_field(world):
    response = csrf_post(
        client_for(world.mona),
        "/sites/SITEA/members/",
        {"email": "bob@a.example.org", "role": "manager"},
    )
    assert response.status_code == 400
    assert "bob@a.example.org is already a member of SITEA" in response.content.decode()
    assert role_of(world.site_a, world.bob) == "viewer"
    assert mail.outbox == []


def test_an_invalid_email_is_refused(world):
    response = csrf_post(
        client_for(world.mona),
        "/sites/SITEA/members/",
        {"email": "not an address", "role": "viewer"},
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()


def test_a_manager_changes_a_role_with_htmx_and_it_is_audited(world):
    response = csrf_post(
        client_for(world.mona),
        member_url(world.site_a, world.bob, "role"),
        {"role": "contributor"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith("<tr")
    assert role_of(world.site_a, world.bob) == "contributor"
    event = AuditEvent.objects.get(action="membership.role_changed")
    assert event.actor == world.mona
    assert event.changes == {"role": ["viewer", "contributor"]}


def test_an_unknown_role_is_refused(world):
    response = csrf_post(
        client_for(world.mona),
        member_url(world.site_a, world.bob, "role"),
        {"role": "overlord"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert role_of(world.site_a, world.bob) == "viewer"


def test_the_last_manager_cannot_step_down_or_be_removed(world):
    client = client_for(world.mona)
    demote = csrf_post(
        client,
        member_url(world.site_a, world.mona, "role"),
        {"role": "viewer"},
        HTTP_HX_REQUEST="true",
    )
    assert demote.status_code == 400
    assert "mona@a.example.org is the only manager of SITEA" in demote.content.decode()
    remove = csrf_post(client, member_url(world.site_a, world.mona, "remove"), follow=True)
    assert "mona@a.example.org is the only manager of SITEA" in remove.content.decode()
    assert role_of(world.site_a, world.mona) == "manager"


def test_removing_a_member_revokes_their_tokens_and_is_audited(world):
    from registry3d.sites import services

    token, raw = services.create_token(world.site_a, world.alice, name="Lab tracker", scope="write")
    response = csrf_post(client_for(world.mona), member_url(world.site_a, world.alice, "remove"))
    assert response.status_code == 302
    assert Membership.objects.filter(site=world.site_a, user=world.alice).exists() is False
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert services.authenticate_token(raw) is None
    event = AuditEvent.objects.get(action="membership.removed")
    assert event.changes == {"role": ["contributor", None], "tokens_revoked": 1}


@pytest.mark.parametrize("action", ["role", "remove"])
def test_another_sites_manager_cannot_change_or_remove_members(world, action):
    path = member_url(world.site_a, world.bob, action)
    response = csrf_post(client_for(world.carol), path, {"role": "manager"})
    assert response.status_code == 404
    # Nor through her own site's address.
    mine = path.replace("/SITEA/", "/SITEB/")
    assert csrf_post(client_for(world.carol), mine, {"role": "manager"}).status_code == 404
    assert role_of(world.site_a, world.bob) == "viewer"


def test_a_role_change_without_csrf_token_is_refused(world):
    response = client_for(world.mona).post(
        member_url(world.site_a, world.bob, "role"), {"role": "manager"}
    )
    assert response.status_code == 403
    assert role_of(world.site_a, world.bob) == "viewer"


@pytest.mark.parametrize(
    "email",
    [
        "lab/printing@a.example.org",
        "a-very-long-name.for-the-3d-printing-laboratory.team@a.example.org",
    ],
)
def test_unusual_but_valid_addresses_can_be_invited_and_removed(world, email):
    client = client_for(world.mona)
    response = csrf_post(client, "/sites/SITEA/members/", {"email": email, "role": "viewer"})
    assert response.status_code == 302
    page = client.get("/sites/SITEA/members/")
    assert page.status_code == 200
    newcomer = User.objects.get(email=email)
    assert csrf_post(client, member_url(world.site_a, newcomer, "remove")).status_code == 302
    assert Membership.objects.filter(user=newcomer).exists() is False


def test_an_invited_person_whose_link_expired_can_ask_for_a_new_one(world):
    from registry3d.sites import services

    services.invite_member(world.site_a, "late@a.example.org", "viewer", actor=world.mona)
    mail.outbox.clear()
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/password-reset/")
    csrf_post(client, "/accounts/password-reset/", {"email": "late@a.example.org"})
    assert [m.to for m in mail.outbox] == [["late@a.example.org"]]
