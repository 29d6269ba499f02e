from django.test import Client

from tests.conftest import PASSWORD, client_for, csrf_post


def test_the_admins_own_log_in_form_is_never_offered(world):
    """The admin logs in through the registry's page, with lock-out and 2FA."""
    anonymous = Client(enforce_csrf_checks=True)
    response = anonymous.get("/admin/login/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"
    posted = csrf_post(
        anonymous, "/admin/login/", {"username": "ada@registry.example.org", "password": PASSWORD}
    )
    assert posted.status_code == 302
    assert posted["Location"].startswith("/accounts/login/")
    assert anonymous.get("/admin/").status_code == 302


def test_a_logged_in_non_admin_gets_403_from_the_admin_log_in(world):
    bob = client_for(world.bob)
    response = csrf_post(
        bob, "/admin/login/", {"username": "ada@registry.example.org", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert bob.get("/audit/").status_code == 403


def test_a_registry_admin_reaches_the_admin(world):
    assert client_for(world.ada).get("/admin/").status_code == 200
