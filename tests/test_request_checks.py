"""Odd requests get a clear 4xx, never a server error."""

import pytest
from django.test import Client, override_settings

from registry3d.audit.models import AuditEvent
from registry3d.sites import services
from registry3d.sites.models import Printer
from tests.conftest import PASSWORD, client_for, csrf_post


@pytest.mark.parametrize(
    "path",
    [
        "/sites/SITE%00A/",
        "/sites/switch/?site=%00",
        "/audit/?action=%00",
        "/sites/SITEA/members/?x=a%00b",
    ],
)
def test_a_nul_character_in_the_address_gets_400(world, path):
    response = client_for(world.ada).get(path)
    assert response.status_code == 400
    assert response.content == b"The request contains a NUL character, which no field may hold."


def test_a_nul_character_in_api_json_gets_a_400_problem(world):
    _, raw = services.create_token(world.site_a, world.alice, name="W", scope="write")
    response = Client().post(
        "/api/v1/printers",
        data=(
            '{"label": "P1", "manufacturer": "a\\u0000b", "model": "X", '
            '"technology": "material_jetting"}'
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert Printer.objects.exists() is False


def test_a_very_long_site_code_is_a_plain_404(world):
    assert client_for(world.alice).get("/sites/" + "A" * 5000 + "/").status_code == 404


@override_settings(REGISTRY3D_PROXY_COUNT=1)
@pytest.mark.parametrize(
    "forwarded, recorded",
    [("1.2.3.4:5678", "1.2.3.4"), ("unknown", "10.0.0.9"), ("2001:db8::1", "2001:db8::1")],
)
def test_forwarded_addresses_are_checked_before_use(world, forwarded, recorded):
    client = Client(enforce_csrf_checks=True)
    response = csrf_post(
        client,
        "/accounts/login/",
        {"username": "alice@a.example.org", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR=forwarded,
        REMOTE_ADDR="10.0.0.9",
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="auth.login").ip == recorded
