import re

from django.core import mail
from django.test import Client

from registry3d.audit.models import AuditEvent
from tests.conftest import PASSWORD, client_for, csrf_post


def test_a_user_resets_their_password_through_the_emailed_link(world):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/password-reset/")
    response = csrf_post(client, "/accounts/password-reset/", {"email": "alice@a.example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@a.example.org"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)

    page = client.get(link, follow=True)
    assert b"Choose a password" in page.content
    set_url = page.redirect_chain[-1][0]
    done = csrf_post(
        client,
        set_url,
        {"new_password1": "brand-new-secret-42", "new_password2": "brand-new-secret-42"},
    )
    assert done.status_code == 302
    world.alice.refresh_from_db()
    assert world.alice.check_password("brand-new-secret-42") is True
    assert AuditEvent.objects.filter(action="auth.password_reset", actor=world.alice).count() == 1
    # The link works once.
    again = client.get(link, follow=True)
    assert b"This link no longer works" in again.content


def test_an_unknown_address_gets_the_same_answer_and_no_mail(world):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/password-reset/")
    response = csrf_post(client, "/accounts/password-reset/", {"email": "nobody@a.example.org"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []


def test_a_user_changes_their_password_and_it_is_recorded(world):
    client = client_for(world.bob)
    response = csrf_post(
        client,
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-secret-7",
            "new_password2": "another-long-secret-7",
        },
    )
    assert response.status_code == 302
    world.bob.refresh_from_db()
    assert world.bob.check_password("another-long-secret-7") is True
    assert AuditEvent.objects.filter(action="auth.password_changed", actor=world.bob).count() == 1
    # The session that changed it stays logged in.
    assert client.get("/sites/SITEA/").status_code == 200
