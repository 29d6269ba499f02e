"""A small registry to export: cases at two sites, with identifiers planted where they may be.

The MRNs behind the patient keys, the sites' case IDs, the keys themselves,
the exact months and the sites' codes are what a de-identified export must
never hold; each test scans every exported file for them.
"""

import random
from dataclasses import dataclass, field

import pytest

from registry3d.cases.models import Case
from registry3d.cases.services import save_case, withdraw_case
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.pseudonym import patient_key
from tests.cases.conftest import printers_for

# A formula that spreadsheets would run; without a web address, which the
# identifier screen refuses in free text.
FORMULA = '=HYPERLINK("#Sheet1!A1","x")'


@dataclass
class Registry:
    cases: list[Case]
    mrns: list[str] = field(default_factory=list)
    months: set[str] = field(default_factory=set)

    @property
    def secrets(self) -> list[str]:
        """Strings no research export may hold."""
        out = list(self.mrns)
        for case in self.cases:
            out += [case.case_uid, case.patient_key]
        return out


@pytest.fixture
def exportable(world):
    """12 cases at SITEA and 6 at SITEB over 2024-2026; at each site one is 95
    years old, one has a formula as comment, one is withdrawn, one a draft."""
    dictionary = registry.current().dictionary
    rng = random.Random(8)
    made = Registry([])
    for site, count, prefix in ((world.site_a, 12, "ALPHA"), (world.site_b, 6, "BRAVO")):
        labels = printers_for(site)
        formula_placed = False
        for n in range(count):
            months = [f"{2024 + n % 3}-{1 + n % 12:02d}"]
            data = synthetic_case(
                dictionary,
                rng,
                printer_labels=labels,
                year_months=months,
                with_questionnaire=n % 2 == 0,
            )
            if n == 0:
                data["age_years"] = 95  # stored as 90
                data.pop("age_under_1_months", None)
            if n not in (2, 3) and data.get("anatomic_parts") and not formula_placed:
                data["anatomic_parts"][0]["comment"] = FORMULA  # once a site, submitted
                formula_placed = True
            mrn = f"MRN{site.code}{n:05d}X"
            status = "draft" if n == 2 else "submitted"
            case = save_case(
                site,
                case_uid=f"{prefix}-CASE-{n:03d}",
                data=data,
                status=status,
                patient_key=patient_key(site.code, mrn),
                actor=world.alice,
            ).case
            if n == 3:
                withdraw_case(case, "Entered twice", actor=world.alice)
            made.cases.append(case)
            made.mrns.append(mrn)
            made.months.add(data["case_year_month"])
    for case in made.cases:
        case.refresh_from_db()
    return made
