"""Demo sites, people and printers for ``registry3d init --demo``.

Everything here is invented; addresses use the reserved example.org domain.
"""

import random
import secrets
from datetime import date

from django.db import transaction

from registry3d.sites import services
from registry3d.sites.models import Membership, Printer, Site

DEMO_SITES = [
    ("DEMO01", "Demo University Hospital", "US", "Ohio", "academic", date(2024, 3, 1)),
    ("DEMO02", "Demo Children's Hospital", "US", "California", "childrens", date(2024, 9, 15)),
    ("DEMO03", "Demo Community Medical Center", "US", "Texas", "community", date(2025, 6, 2)),
    # Smaller sites, so the dashboard has enough sites to compare with.
    ("DEMO04", "Demo Lakeside Community Hospital", "US", "Ohio", "community", date(2024, 5, 6)),
    ("DEMO05", "Demo State University Hospital", "US", "Michigan", "academic", date(2024, 2, 12)),
    ("DEMO06", "Demo Veterans Medical Center", "US", "Virginia", "government", date(2024, 11, 4)),
    ("DEMO07", "Demo Orthopedic Practice", "US", "Ohio", "private_practice", date(2025, 1, 20)),
]

# Loaded hourly cost of clinician and non-clinician time (invented). DEMO06
# has set none, so its cases show no labour cost.
DEMO_STAFF_COSTS = {
    "DEMO01": (185, 68),
    "DEMO02": (170, 62),
    "DEMO03": (150, 55),
    "DEMO04": (145, 52),
    "DEMO05": (175, 64),
    "DEMO07": (160, 58),
}

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
    ("manager@demo04.example.org", "Flo Manager", "", [("DEMO04", "manager")]),
    ("manager@demo05.example.org", "Gus Manager", "", [("DEMO05", "manager")]),
    ("contributor@demo05.example.org", "Hal Engineer", "", [("DEMO05", "contributor")]),
    ("manager@demo06.example.org", "Ivy Manager", "", [("DEMO06", "manager")]),
    ("manager@demo07.example.org", "Jo Manager", "", [("DEMO07", "manager")]),
]

# Cases per demo site, and who enters them.
DEMO_CASES = {
    "DEMO01": (1500, "contributor@demo01.example.org"),
    "DEMO02": (1000, "contributor@demo01.example.org"),
    "DEMO03": (500, "manager@demo03.example.org"),
    "DEMO04": (300, "manager@demo04.example.org"),
    "DEMO05": (280, "contributor@demo05.example.org"),
    "DEMO06": (250, "manager@demo06.example.org"),
    "DEMO07": (230, "manager@demo07.example.org"),
}

DEMO_PRINTERS = [
    ("DEMO01", "J750-1", "Stratasys", "J750 Digital Anatomy", "material_jetting"),
    ("DEMO01", "FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("DEMO01", "MK4-1", "Prusa Research", "MK4", "material_extrusion"),
    ("DEMO02", "J5-1", "Stratasys", "J5 DentaJet", "material_jetting"),
    ("DEMO02", "FORM3BL", "Formlabs", "Form 3BL", "vat_photopolymerization"),
    ("DEMO03", "F370", "Stratasys", "F370", "material_extrusion"),
    ("DEMO04", "FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("DEMO04", "UM-S5", "UltiMaker", "S5", "material_extrusion"),
    ("DEMO05", "J850-1", "Stratasys", "J850 Digital Anatomy", "material_jetting"),
    ("DEMO05", "FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("DEMO06", "F370", "Stratasys", "F370", "material_extrusion"),
    ("DEMO06", "FORM3BL", "Formlabs", "Form 3BL", "vat_photopolymerization"),
    ("DEMO07", "FUSE1", "Formlabs", "Fuse 1+", "powder_bed_fusion"),
    ("DEMO07", "FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
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
                if code in DEMO_STAFF_COSTS:
                    clinician, non_clinician = DEMO_STAFF_COSTS[code]
                    services.set_costs(
                        Site.objects.get(code=code),
                        clinician_cost_per_hour_usd=clinician,
                        non_clinician_cost_per_hour_usd=non_clinician,
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


def load_demo_cases(progress=None) -> int:
    """Fill each demo site with synthetic cases through the one write path.

    Sites that already hold cases are left alone. Returns the number of
    cases created.
    """
    from registry3d.cases.models import CaseStatus
    from registry3d.cases.services import save_case, withdraw_case
    from registry3d.dictionary import registry
    from registry3d.dictionary.examples import synthetic_case
    from registry3d.lib.pseudonym import patient_key

    dictionary = registry.current().dictionary
    created = 0
    for code, (count, email) in DEMO_CASES.items():
        site = Site.objects.get(code=code)
        if site.cases.exists():
            continue
        person = services.find_user(email)
        labels = {p.technology: p.label for p in site.printers.all()}
        rng = random.Random(code)
        months = [
            f"{y}-{m:02d}"
            for y in (2024, 2025, 2026)
            for m in range(1, 13)
            if f"{y}-{m:02d}" <= "2026-10"
        ]
        for start in range(0, count, 250):
            with transaction.atomic():
                for number in range(start, min(count, start + 250)):
                    data = synthetic_case(
                        dictionary,
                        rng,
                        year_months=months,
                        with_questionnaire=rng.random() < 0.4,
                    )
                    for item in data["prints"]:
                        # Print on a printer the site has, of the same technology if it can.
                        if item["technology"] not in labels:
                            item["technology"] = rng.choice(sorted(labels))
                        item["printer_label"] = labels[item["technology"]]
                    draft = rng.random() < 0.1
                    if draft:
                        for name in ("prints", "effort_cad_clinician", "procedure_performed"):
                            data.pop(name, None)
                    result = save_case(
                        site,
                        case_uid=f"{code}-{number + 1:05d}",
                        data=data,
                        status=CaseStatus.DRAFT if draft else CaseStatus.SUBMITTED,
                        patient_key=patient_key(code, f"MRN{rng.randint(1, count * 9 // 10)}"),
                        actor=person,
                        note="demo data",
                    )
                    if not draft and rng.random() < 0.02:
                        withdraw_case(result.case, "Duplicate of another case", actor=person)
                    elif not draft:
                        _demo_questionnaire(result.case, rng, person)
                    created += 1
                    if progress is not None:
                        progress()
    return created


def _demo_questionnaire(case, rng: random.Random, person) -> None:
    """Give a demo case the questionnaire history a real one would have.

    Cases that hold answers were answered; of the others some were never
    sent, some wait, some expired. Written directly: no e-mail leaves.
    """
    from datetime import UTC, datetime, timedelta

    from registry3d.dictionary import registry
    from registry3d.questionnaires.models import (
        QuestionnaireRequest,
        QuestionnaireResponse,
        RequestStatus,
        Specialty,
    )

    answered = "respondent_role" in case.data
    if not answered and rng.random() < 0.5:
        return
    year, month = map(int, case.case_month.split("-"))
    sent_at = datetime(year, month, 1, 9, tzinfo=UTC) + timedelta(days=rng.randint(5, 25))
    now = datetime.now(UTC)
    expires_at = sent_at + timedelta(days=30)
    if answered:
        status = RequestStatus.ANSWERED
    elif expires_at > now:
        status = RequestStatus.SENT
    else:
        status = RequestStatus.EXPIRED
    answered_at = sent_at + timedelta(days=rng.choice([0, 1, 2, 3, 6, 9, 15])) if answered else None
    questionnaire = QuestionnaireRequest.objects.create(
        site=case.site,
        case=case,
        status=status,
        email=f"physician{rng.randint(1, 40)}@{case.site.code.lower()}.example.org",
        specialty=rng.choice(Specialty.values[:-1]),
        created_by=person,
        sent_at=sent_at,
        expires_at=expires_at,
        last_sent_at=sent_at,
        reminders_sent=sum(
            1 for days in (7, 14) if sent_at + timedelta(days=days) <= (answered_at or now)
        ),
        opened_at=answered_at or (sent_at + timedelta(days=2) if rng.random() < 0.3 else None),
        answered_at=answered_at,
        closed_at=expires_at if status == RequestStatus.EXPIRED else None,
    )
    if answered:
        dictionary = registry.current().dictionary
        names = [e.name for s in dictionary.questionnaire_sections() for e in s.elements]
        QuestionnaireResponse.objects.create(
            request=questionnaire,
            answers={n: case.data[n] for n in names if n in case.data},
            case_version=case.version,
        )
