import pytest

from registry3d.audit.models import AuditEvent
from registry3d.sites import services
from registry3d.sites.models import Printer

PROBLEM = "application/problem+json"
J750 = {
    "label": "J750-1",
    "manufacturer": "Stratasys",
    "model": "J750 Digital Anatomy",
    "technology": "material_jetting",
}


def test_no_token_gets_401_with_a_problem_body(http_world, http):
    reply = http.call("GET", "/api/v1/whoami")
    assert reply.status == 401
    assert reply.headers["Content-Type"] == PROBLEM
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="registry3d"'
    problem = reply.json()
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert "Authorization: Bearer <token>" in problem["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer r3d_" + "A" * 43, "Basic dXNlcjpwYXNz", "Bearer", "r3d_abc"],
)
def test_a_malformed_or_unknown_token_gets_401(http_world, http, header):
    reply = http.call("GET", "/api/v1/whoami", headers={"Authorization": header})
    assert reply.status == 401
    assert reply.headers["Content-Type"] == PROBLEM


def test_a_read_token_reads_its_own_site(http_world, http):
    _, raw = services.create_token(http_world.site_a, http_world.bob, name="Reader", scope="read")
    reply = http.call("GET", "/api/v1/whoami", token=raw)
    assert reply.status == 200
    assert reply.json() == {
        "site": {"code": "SITEA", "name": "Site A Hospital"},
        "user": "bob@a.example.org",
        "scope": "read",
        "can_write": False,
        "token_name": "Reader",
        "token_prefix": raw[:10],
        "api_version": "0.1.0",
    }


def test_a_read_token_used_to_write_gets_403_and_nothing_changes(http_world, http):
    _, raw = services.create_token(http_world.site_a, http_world.alice, name="Reader", scope="read")
    reply = http.call("POST", "/api/v1/printers", token=raw, body=J750)
    assert reply.status == 403
    assert reply.headers["Content-Type"] == PROBLEM
    assert reply.json()["detail"] == (
        "This token may only read; ask the site manager for a write token"
    )
    assert Printer.objects.exists() is False


def test_a_write_token_adds_a_printer_and_the_trail_records_it(http_world, http):
    _, raw = services.create_token(
        http_world.site_a, http_world.alice, name="Writer", scope="write"
    )
    reply = http.call("POST", "/api/v1/printers", token=raw, body=J750)
    assert reply.status == 201
    assert reply.json()["label"] == "J750-1"
    printer = Printer.objects.get()
    assert printer.site == http_world.site_a
    event = AuditEvent.objects.get(action="printer.added")
    assert event.actor == http_world.alice
    assert event.ip == "127.0.0.1"


def test_a_write_token_loses_writing_when_its_owner_becomes_a_viewer(http_world, http):
    _, raw = services.create_token(
        http_world.site_a, http_world.alice, name="Writer", scope="write"
    )
    services.set_membership(http_world.site_a, http_world.alice, "viewer")
    reply = http.call("POST", "/api/v1/printers", token=raw, body=J750)
    assert reply.status == 403


def test_a_revoked_token_gets_401(http_world, http):
    token, raw = services.create_token(http_world.site_a, http_world.bob, name="Old", scope="read")
    services.revoke_token(token)
    assert http.call("GET", "/api/v1/whoami", token=raw).status == 401


def test_a_token_of_a_removed_member_gets_401(http_world, http):
    _, raw = services.create_token(http_world.site_a, http_world.bob, name="Bob's", scope="read")
    services.remove_membership(http_world.site_a, http_world.bob)
    assert http.call("GET", "/api/v1/whoami", token=raw).status == 401


def test_a_token_only_ever_sees_its_own_sites_printers(http_world, http):
    services.add_printer(
        http_world.site_a,
        label="A1",
        manufacturer="Formlabs",
        model="Form 3B+",
        technology="vat_photopolymerization",
    )
    services.add_printer(
        http_world.site_b,
        label="B1",
        manufacturer="Prusa",
        model="MK4",
        technology="material_extrusion",
    )
    _, raw = services.create_token(http_world.site_b, http_world.carol, name="B", scope="read")
    reply = http.call("GET", "/api/v1/printers", token=raw)
    assert [p["label"] for p in reply.json()] == ["B1"]


def test_invalid_printer_data_gets_422_naming_each_field(http_world, http):
    _, raw = services.create_token(http_world.site_a, http_world.alice, name="W", scope="write")
    reply = http.call(
        "POST",
        "/api/v1/printers",
        token=raw,
        body={"label": "bad label!", "manufacturer": "", "model": "X", "technology": "laser_magic"},
    )
    assert reply.status == 422
    assert reply.headers["Content-Type"] == PROBLEM
    fields = sorted(e["field"] for e in reply.json()["errors"])
    assert fields == ["label", "manufacturer", "technology"]
    assert Printer.objects.exists() is False


def test_a_duplicate_printer_label_gets_422(http_world, http):
    _, raw = services.create_token(http_world.site_a, http_world.alice, name="W", scope="write")
    assert http.call("POST", "/api/v1/printers", token=raw, body=J750).status == 201
    reply = http.call("POST", "/api/v1/printers", token=raw, body=J750)
    assert reply.status == 422
    assert reply.json()["errors"][0] == {
        "field": "label",
        "code": "invalid",
        "message": "SITEA already has a printer labelled J750-1",
    }


def test_malformed_json_gets_a_4xx_problem(http_world, http):
    _, raw = services.create_token(http_world.site_a, http_world.alice, name="W", scope="write")
    reply = http.call("POST", "/api/v1/printers", token=raw, raw=b'{"label": ')
    assert 400 <= reply.status < 500
    assert Printer.objects.exists() is False


def test_the_openapi_schema_is_served_and_names_the_bearer_scheme(http_world, http):
    reply = http.call("GET", "/api/openapi.json")
    assert reply.status == 200
    schema = reply.json()
    assert "/api/v1/printers" in schema["paths"]
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_the_last_used_time_is_recorded(http_world, http):
    token, raw = services.create_token(http_world.site_a, http_world.bob, name="R", scope="read")
    assert token.last_used_at is None
    http.call("GET", "/api/v1/whoami", token=raw)
    token.refresh_from_db()
    assert token.last_used_at is not None
