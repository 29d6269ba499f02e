"""Every URL pattern answers with the security headers, whoever asks.

The crawl walks the whole URL configuration (our pages, the API, FHIR,
REDCap, the admin), fills each pattern's parameters with real objects of
site A where they exist and made-up ones elsewhere, and fetches it as an
anonymous visitor, a site manager, a registry administrator and an API
token, with the production settings for HSTS and cookies. Whatever the
answer (a page, a redirect to log in, 403, 404, 405), it must carry the
headers: a strict Content Security Policy, no framing, nosniff, a referrer
policy, HSTS, no caching and a correlation id.
"""

import re
import uuid

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from registry3d.cases import services as case_services
from registry3d.sites import services
from tests.cases.conftest import a_case, printers_for
from tests.conftest import client_for

PRODUCTION_HEADERS = dict(
    SECURE_HSTS_SECONDS=31_536_000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
)


def url_patterns(patterns=None, prefix=""):
    """Yield (route, pattern) for every URL pattern, resolvers walked."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def concrete(route: str, values: dict) -> str:
    """Fill a route's parameters (``<uuid:code>``, ``<case_uid>``, regexes) with values."""
    route = route.lstrip("^").rstrip("$").replace("\\Z", "")

    def fill(match):
        converter, name = match.group(1), match.group(2)
        if converter == "uuid":
            return values.get(f"uuid:{name}", str(uuid.uuid4()))
        return values.get(name, "1")

    route = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: fill(m) if m.group(1) else fill(m), route)
    # Admin routes are regexes: named groups and the odd character class.
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), "1"), route)
    route = route.replace("\\", "")
    return "/" + route


@pytest.fixture
def crawl_world(world):
    labels = printers_for(world.site_a)
    case_services.save_case(
        world.site_a, case_uid="HDR-1", data=a_case(3, labels), status="submitted"
    )
    _, token = services.create_token(world.site_a, world.alice, name="crawl", scope="read")
    printer = world.site_a.printers.first()
    return (
        world,
        token,
        {
            "code": "SITEA",
            "case_uid": "HDR-1",
            "uuid:printer": str(printer.code),
            "filename": "case.csv",
            "name": "case",
            "token": "not-a-real-link-token",
            "uidb64": "MQ",
        },
    )


def check_headers(response, where: str) -> None:
    path = where.split()[0]
    where = f"{response.status_code} {where}"
    csp = response.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert directives.get("default-src") == ["'self'"], where
    assert directives.get("script-src") == ["'self'"], where
    assert directives.get("style-src") == ["'self'"], where
    assert directives.get("base-uri") == ["'none'"], where
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("object-src") == ["'none'"], where
    assert response.get("X-Frame-Options") == "DENY", where
    assert response.get("X-Content-Type-Options") == "nosniff", where
    # A physician's link page never sends its address (the secret) onwards.
    allowed = {"no-referrer"} if path.startswith("/q/") else {"same-origin", "no-referrer"}
    assert response.get("Referrer-Policy") in allowed, where
    assert response.get("Strict-Transport-Security", "").startswith("max-age=31536000"), where
    assert "no-store" in response.get("Cache-Control", ""), where
    assert re.fullmatch(r"[0-9a-f]{12}", response.get("X-Request-ID", "")), where
    assert response.status_code < 500, where


@override_settings(**PRODUCTION_HEADERS)
def test_every_url_pattern_answers_with_the_security_headers(crawl_world):
    world, token, values = crawl_world
    callers = {
        "anonymous": Client(),
        "site manager": client_for(world.mona),
        "registry admin": client_for(world.ada),
    }
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    crawled = set()
    for route, _pattern in url_patterns():
        path = concrete(route, values)
        if path in crawled:
            continue
        crawled.add(path)
        for caller, client in callers.items():
            check_headers(client.get(path, secure=True), f"{path} as {caller}")
        if path.startswith(("/api/", "/fhir/", "/redcap/")):
            check_headers(Client().get(path, secure=True, **bearer), f"{path} with a token")
    # The whole configuration was walked: our doors and the admin's.
    assert len(crawled) > 120
    for door in ("/sites/SITEA/cases/HDR-1/", "/exports/", "/api/v1/cases", "/redcap/api/"):
        assert door in crawled


@override_settings(**PRODUCTION_HEADERS)
def test_case_data_answers_are_never_stored_by_a_cache(crawl_world):
    world, token, _ = crawl_world
    page = client_for(world.mona).get("/sites/SITEA/cases/HDR-1/", secure=True)
    assert page.status_code == 200 and b"HDR-1" in page.content
    api = Client().get("/api/v1/cases/HDR-1", secure=True, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200 and api.json()["case_uid"] == "HDR-1"
    for response in (page, api):
        assert "no-store" in response["Cache-Control"]


def test_static_files_stay_cacheable_and_carry_no_case_data(live_server):
    """Static files skip the no-store rule (they hold no case data)."""
    import urllib.request

    with urllib.request.urlopen(f"{live_server.url}/static/registry3d/registry3d.css") as answer:
        assert answer.status == 200
        assert "no-store" not in (answer.headers.get("Cache-Control") or "")


@override_settings(**PRODUCTION_HEADERS)
def test_production_cookies_are_secure_http_only_and_same_site_lax(world):
    client = Client()
    login_page = client.get("/accounts/login/", secure=True)
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/",
        {"username": "alice@a.example.org", "password": "correct-horse-battery-9"},
        secure=True,
        HTTP_X_CSRFTOKEN=token,
    )
    assert login_page.status_code == 200 and response.status_code == 302
    for name in ("sessionid", "csrftoken"):
        cookie = client.cookies[name]
        assert cookie["secure"] is True, name
        assert cookie["httponly"] is True, name
        assert cookie["samesite"] == "Lax", name


def test_the_production_settings_turn_on_hsts_and_secure_cookies(monkeypatch):
    """The settings module itself, read with REGISTRY3D_PRODUCTION=1."""
    import importlib

    import registry3d.settings as settings_module

    monkeypatch.setenv("REGISTRY3D_PRODUCTION", "1")
    monkeypatch.setenv("ALLOWED_HOSTS", "registry.example.org")
    monkeypatch.setenv("SECRET_KEY", "x" * 50)
    production = importlib.reload(settings_module)
    try:
        assert production.SECURE_HSTS_SECONDS >= 31_536_000
        assert production.SESSION_COOKIE_SECURE and production.CSRF_COOKIE_SECURE
        assert production.SESSION_COOKIE_HTTPONLY and production.CSRF_COOKIE_HTTPONLY
        assert production.SESSION_COOKIE_SAMESITE == "Lax"
        assert production.SECURE_SSL_REDIRECT is True
        assert production.DEBUG is False
        assert production.REGISTRY3D_SESSION_IDLE_MINUTES == 30
    finally:
        monkeypatch.undo()
        importlib.reload(settings_module)
