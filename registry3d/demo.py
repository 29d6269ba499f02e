"""Demo sites, people and printers for ``registry3d init --demo``.

Everything here is invented; addresses use the reserved example.org domain.
"""

import secrets
from datetime import date

from django.db import transaction

from registry3d.sites import services
from registry3d.sites.models import Membership, Printer, Site

DEMO_SITES = [
    ("DEMO01", "Demo University Hospital", "US", "Ohio", "academic", date(2024, 3, 1)),
    ("DEMO02", "Demo Children's Hospital", "US", "California", "childrens", date(2024, 9, 15)),
    ("DEMO03", "Demo Community Medical Center", "US", "Texas", "community", date(2025, 6, 2)),
]

# e-mail, full name, registry role, [(site, role), ...]
DEMO_PEOPLE = [
    ("admin@registry.example.org", "Ada Admin", "admin", []),
    ("analyst@registry.example.org", "Dan Analyst", "analyst", []),
    ("manager@demo01.example.org", "Mona Manager", "", [("DEMO01", "manager")]),
    (
        "contributor@demo01.example.org",
        "Alice Engineer",
        "",
        [("DEMO01", "contributor"), ("DEMO02", "contributor")],
    ),
    ("viewer@demo01.example.org", "Bob Viewer", "", [("DEMO01", "viewer")]),
    ("manager@demo02.example.org", "Carol Manager", "", [("DEMO02", "manager")]),
    ("manager@demo03.example.org", "Ed Manager", "", [("DEMO03", "manager")]),
]

DEMO_PRINTERS = [
    ("DEMO01", "J750-1", "Stratasys", "J750 Digital Anatomy", "material_jetting"),
    ("DEMO01", "FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("DEMO01", "MK4-1", "Prusa Research", "MK4", "material_extrusion"),
    ("DEMO02", "J5-1", "Stratasys", "J5 DentaJet", "material_jetting"),
    ("DEMO02", "FORM3BL", "Formlabs", "Form 3BL", "vat_photopolymerization"),
    ("DEMO03", "F370", "Stratasys", "F370", "material_extrusion"),
]


def load_demo(password: str | None = None) -> list[tuple[str, str, str]]:
    """Create the demo data (again); return (e-mail, password, role) per person.

    Running it twice keeps what exists and gives each demo person a new
    password, which is printed again.
    """
    credentials = []
    with transaction.atomic():
        for code, name, country, region, kind, joined in DEMO_SITES:
            if not Site.objects.filter(code=code).exists():
                services.add_site(
                    code,
                    name,
                    country=country,
                    region=region,
                    facility_type=kind,
                    joined_on=joined,
                )
        for email, full_name, registry_role, memberships in DEMO_PEOPLE:
            secret = password or secrets.token_urlsafe(12)
            person = services.User.objects.filter(email=email).first()
            if person is None:
                person = services.add_user(
                    email, secret, full_name=full_name, registry_role=registry_role
                )
            else:
                person.set_password(secret)
                person.save()
            for code, role in memberships:
                site = Site.objects.get(code=code)
                if not Membership.objects.filter(site=site, user=person).exists():
                    services.set_membership(site, person, role)
            described = registry_role or ", ".join(f"{r} at {c}" for c, r in memberships)
            credentials.append((email, secret, described))
        for code, label, maker, model, technology in DEMO_PRINTERS:
            site = Site.objects.get(code=code)
            if not Printer.objects.filter(site=site, label=label).exists():
                services.add_printer(
                    site, label=label, manufacturer=maker, model=model, technology=technology
                )
    return credentials
