"""Shared pieces of the REDCap tests: printers, tokens, and REDCap-style POSTs."""

import json
import random
from urllib.parse import urlencode

import pytest
from django.test import Client

from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.ratelimit import limiter
from registry3d.sites import services

API = "/redcap/api/"
PRINTERS = [
    ("J750-1", "Stratasys", "J750 Digital Anatomy", "material_jetting"),
    ("FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("MK4-1", "Prusa Research", "MK4", "material_extrusion"),
    ("P1-1", "EOS", "Formiga P 110", "powder_bed_fusion"),
    ("B1-1", "HP", "Jet Fusion 5200", "binder_jetting"),
]


def add_printers(site) -> dict[str, str]:
    """Give the site a printer of every technology the synthetic cases use."""
    labels = {}
    technologies = set(registry.current().dictionary.value_sets["print_technology"].active_codes())
    for label, maker, model, technology in PRINTERS:
        if technology in technologies:
            services.add_printer(
                site, label=label, manufacturer=maker, model=model, technology=technology
            )
            labels[technology] = label
    return labels


def case_data(seed: int, labels: dict[str, str], **options) -> dict:
    return synthetic_case(
        registry.current().dictionary, random.Random(seed), printer_labels=labels, **options
    )


def redcap_post(client: Client, **params):
    """POST form-encoded parameters as REDCap clients do (lists as name[0], name[1]…)."""
    fields = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            fields += [(f"{key}[{i}]", v) for i, v in enumerate(value)]
        else:
            fields.append((key, value))
    return client.post(API, urlencode(fields), content_type="application/x-www-form-urlencoded")


def error_of(response) -> str:
    return json.loads(response.content)["error"]


@pytest.fixture
def redcap_world(world):
    """The small world with printers at SITEA and REDCap tokens for Alice, Bob and Carol."""
    world.labels = add_printers(world.site_a)
    _, world.alice_token = services.create_token(
        world.site_a, world.alice, name="REDCap", scope="write", kind="redcap"
    )
    _, world.bob_token = services.create_token(
        world.site_a, world.bob, name="REDCap reader", scope="read", kind="redcap"
    )
    _, world.carol_token = services.create_token(
        world.site_b, world.carol, name="REDCap B", scope="write", kind="redcap"
    )
    limiter.clear()
    return world


@pytest.fixture
def api():
    """A client that keeps CSRF checks on: the REDCap API must not need them."""
    return Client(enforce_csrf_checks=True)
