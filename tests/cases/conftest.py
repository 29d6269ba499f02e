import random

import pytest

from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.sites import services

TECHNOLOGIES = [
    "material_jetting",
    "vat_photopolymerization",
    "material_extrusion",
    "powder_bed_fusion",
    "binder_jetting",
]


def printers_for(site):
    """Give a site one printer of each technology the examples use."""
    for technology in TECHNOLOGIES:
        services.add_printer(
            site,
            label=f"P-{technology[:10]}",
            manufacturer="Maker",
            model="Model",
            technology=technology,
        )
    return {t: f"P-{t[:10]}" for t in TECHNOLOGIES}


def a_case(seed: int = 1, labels=None, **changes) -> dict:
    data = synthetic_case(registry.current().dictionary, random.Random(seed), printer_labels=labels)
    data.update(changes)
    return data


@pytest.fixture
def printers(world):
    return printers_for(world.site_a), printers_for(world.site_b)
