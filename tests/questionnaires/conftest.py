import re

import pytest
from django.core import mail

from registry3d.cases import services as cases
from registry3d.dictionary import registry
from registry3d.lib.pseudonym import patient_key
from tests.cases.conftest import TECHNOLOGIES, a_case, printers_for

LINK_RE = re.compile(r"https?://[^\s\"<>]+/q/([A-Za-z0-9_\-]+)/")


def link_in(message) -> str:
    """The questionnaire link's path in an e-mail, from its text part."""
    match = LINK_RE.search(message.body)
    assert match, message.body
    return f"/q/{match.group(1)}/"


def submitted_case(world, uid="QX-0417", site=None, actor=None, seed=11):
    site = site or world.site_a
    labels = (
        {t: f"P-{t[:10]}" for t in TECHNOLOGIES} if site.printers.exists() else printers_for(site)
    )
    data = a_case(seed, labels)
    dictionary = registry.current().dictionary
    for name in [e.name for s in dictionary.questionnaire_sections() for e in s.elements]:
        data.pop(name, None)
    return cases.save_case(
        site,
        case_uid=uid,
        data=data,
        status="submitted",
        actor=actor or world.alice,
        patient_key=patient_key(site.code, f"MRN{seed:07d}"),
    ).case


@pytest.fixture
def case(world):
    mail.outbox.clear()
    return submitted_case(world)


GOOD_ANSWERS = {
    "respondent_role": "surgeon_or_proceduralist",
    "ua_important": "5",
    "ua_plan_altered": "4",
    "est_procedure_time_saved_min": "25",
    "plan_change_type": ["approach_changed"],
    "ua_comment": "Helped us choose the approach.",
}
