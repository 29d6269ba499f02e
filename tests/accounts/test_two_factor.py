import re
from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry3d.audit.models import AuditEvent
from tests.conftest import PASSWORD, client_for, csrf_post


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def turn_on_two_factor(user) -> TOTPDevice:
    client = client_for(user)
    page = client.get("/accounts/two-factor/")
    assert page.status_code == 200
    assert b"QR code of the two-factor secret" in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = csrf_post(client, "/accounts/two-factor/", {"code": current_code(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed is True
    return device


def test_staff_turn_on_two_factor_and_then_need_a_code_to_log_in(world):
    device = turn_on_two_factor(world.ada)
    assert AuditEvent.objects.filter(action="auth.two_factor_enabled", actor=world.ada).exists()

    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    step_one = csrf_post(
        client, "/accounts/login/", {"username": "ada@registry.example.org", "password": PASSWORD}
    )
    assert step_one.status_code == 302
    assert step_one["Location"] == "/accounts/login/code/"
    # The password alone does not open the registry.
    assert client.get("/audit/").status_code == 302

    bad = csrf_post(client, "/accounts/login/code/", {"code": "12345x"})
    assert bad.status_code == 400
    assert "Enter the 6 digits your authenticator app shows" in bad.content.decode()

    # A code is good once: the one used at setup is refused, the next one works.
    device.refresh_from_db()
    replay = csrf_post(client, "/accounts/login/code/", {"code": current_code(device)})
    assert replay.status_code == 400
    with time_machine.travel(timezone.now() + timedelta(seconds=60)):
        device.refresh_from_db()
        done = csrf_post(client, "/accounts/login/code/", {"code": current_code(device)})
        assert done.status_code == 302
        assert client.get("/audit/").status_code == 200


def test_five_wrong_codes_send_the_user_back_to_the_password_step(world):
    device = turn_on_two_factor(world.dan)
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    csrf_post(
        client, "/accounts/login/", {"username": "dan@registry.example.org", "password": PASSWORD}
    )
    good = current_code(device)
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(4):
        assert csrf_post(client, "/accounts/login/code/", {"code": wrong}).status_code == 400
    last = csrf_post(client, "/accounts/login/code/", {"code": wrong})
    assert last.status_code == 302
    assert last["Location"] == "/accounts/login/"
    # Even the right code no longer works without the password step.
    after = csrf_post(client, "/accounts/login/code/", {"code": good})
    assert after["Location"] == "/accounts/login/"


def test_the_setup_page_shows_the_secret_for_manual_entry(world):
    page = client_for(world.dan).get("/accounts/two-factor/")
    secret = re.search(rb"<code data-secret>([A-Z2-7]+)</code>", page.content).group(1)
    assert len(secret) >= 32


def test_a_wrong_code_at_setup_leaves_two_factor_off(world):
    client = client_for(world.bob)
    client.get("/accounts/two-factor/")
    device = TOTPDevice.objects.get(user=world.bob)
    wrong = "000000" if current_code(device) != "000000" else "111111"
    response = csrf_post(client, "/accounts/two-factor/", {"code": wrong})
    assert response.status_code == 400
    assert "That code is not correct; check the phone&#x27;s clock." in response.content.decode()
    assert TOTPDevice.objects.filter(user=world.bob, confirmed=True).exists() is False


def test_not_even_an_administrator_sees_someone_elses_two_factor_secret(world):
    device = turn_on_two_factor(world.bob)
    admin = client_for(world.ada)
    # The registry's administrator may use the admin, and see the device listed.
    change = admin.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert change.status_code == 200 and device.key not in change.content.decode()
    for page in ("config", "qrcode"):
        answer = admin.get(f"/admin/otp_totp/totpdevice/{device.pk}/{page}/")
        assert answer.status_code == 403, page
        assert device.key not in answer.content.decode()
    # A device that does not exist is the same refusal, not a server error.
    assert admin.get("/admin/otp_totp/totpdevice/999999/config/").status_code == 403
