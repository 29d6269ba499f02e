"""The small world every test starts from.

Site A (SITEA): Alice contributes, Bob reads, Mona manages.
Site B (SITEB): Carol manages.
Dan is a registry analyst, Ada a registry administrator.
"""

import re
from dataclasses import dataclass

import pytest
from django.test import Client
from hypothesis import HealthCheck, settings

from registry3d.sites import services
from registry3d.sites.models import Site

PASSWORD = "correct-horse-battery-9"


@dataclass
class World:
    site_a: Site
    site_b: Site
    alice: object
    bob: object
    mona: object
    carol: object
    dan: object
    ada: object


def make_world() -> World:
    site_a = services.add_site("SITEA", "Site A Hospital", region="Ohio", facility_type="academic")
    site_b = services.add_site("SITEB", "Site B Clinic", region="Texas", facility_type="community")

    def person(email, role=None, site=None, registry_role=""):
        user = services.add_user(email, PASSWORD, registry_role=registry_role)
        if site is not None:
            services.set_membership(site, user, role)
        return user

    return World(
        site_a=site_a,
        site_b=site_b,
        alice=person("alice@a.example.org", "contributor", site_a),
        bob=person("bob@a.example.org", "viewer", site_a),
        mona=person("mona@a.example.org", "manager", site_a),
        carol=person("carol@b.example.org", "manager", site_b),
        dan=person("dan@registry.example.org", registry_role="analyst"),
        ada=person("ada@registry.example.org", registry_role="admin"),
    )


@pytest.fixture
def world(db) -> World:
    return make_world()


def client_for(user) -> Client:
    """A test client with CSRF checks on, logged in as ``user``."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, path: str, data: dict | None = None, **extra):
    """POST as a browser would: fetch a page for the CSRF cookie, then send it."""
    if "csrftoken" not in client.cookies:
        client.get("/accounts/")  # the account page, or the log-in page
        if "csrftoken" not in client.cookies:
            client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    return client.post(path, data or {}, HTTP_X_CSRFTOKEN=token, **extra)


def without_csrf(content: bytes) -> bytes:
    """Return a page without its CSRF tokens, which differ on every render."""
    content = re.sub(rb'"X-CSRFToken": "[^"]+"', b"", content)
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def bounded(examples: int, **extra):
    """Hypothesis settings: a fixed number of examples, the same ones every run."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        **extra,
    )
