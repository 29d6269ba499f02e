"""The accounting of disclosures: who read or exported which cases, and when (admins only)."""

import re

import pytest
import time_machine

from registry3d.audit.models import AuditEvent
from registry3d.exports import services as exports
from registry3d.exports.models import ExportCase
from tests.conftest import client_for, csrf_post
from tests.exports.conftest import exportable  # noqa: F401 - the fixture


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-event="\d+" data-action="([^"]+)">', page)


def export_codes(page: str) -> set[str]:
    return set(re.findall(r'<code class="small">([0-9a-f-]{36})</code>', page))


@pytest.fixture
def disclosed(exportable, world):  # noqa: F811 - the fixture above
    """Ada reads a case of Site A and makes an identifiable export; Dan a Safe Harbor one;
    Mona exports her site."""
    case = next(c for c in exportable.cases if c.status == "submitted")
    # Each a day apart; a session is logged in on the day (sessions last 12 hours).
    with time_machine.travel("2027-01-02 10:00Z"):
        assert client_for(world.ada).get(f"/sites/SITEA/cases/{case.case_uid}/").status_code == 200
    with time_machine.travel("2027-01-03 10:00Z"):
        response = csrf_post(
            client_for(world.ada), "/exports/", {"format": "csv", "identifiers": "on"}
        )
        assert response.status_code == 302
    with time_machine.travel("2027-01-04 10:00Z"):
        assert csrf_post(client_for(world.dan), "/exports/", {"format": "csv"}).status_code == 302
        site = csrf_post(client_for(world.mona), "/sites/SITEA/export/", {"format": "csv"})
        assert site.status_code == 302
    identifiable = exports.Export.objects.get(identifiable=True)
    safe = exports.Export.objects.get(identifiable=False, kind="research")
    return case, identifiable, safe


def test_only_registry_admins_open_the_disclosures(world):
    for person in (world.alice, world.bob, world.mona, world.carol, world.dan):
        assert client_for(person).get("/audit/disclosures/").status_code == 404
    response = client_for(world.ada).get("/audit/disclosures/")
    assert response.status_code == 200
    assert 'href="/audit/disclosures/"' in response.content.decode()  # in the top bar
    assert "/audit/disclosures/" not in client_for(world.dan).get("/").content.decode()


def test_the_disclosures_list_case_reads_and_exports_with_their_cases(disclosed, world):
    case, identifiable, safe = disclosed
    page = client_for(world.ada).get("/audit/disclosures/").content.decode()
    assert rows(page).count("case.viewed") == 1
    assert "viewed a case&#x27;s page as registry staff" in page
    assert f"<code>{case.case_uid}</code>" in page
    assert {str(identifiable.code), str(safe.code)} <= export_codes(page)
    assert "Identifiable export (limited data set)" in page
    assert "Research (de-identified) export" in page
    held = ExportCase.objects.filter(export=identifiable).count()
    assert held == 14
    assert f"<code>SITEA/{case.case_uid}</code>" in page  # the export's cases


def test_who_received_a_case(disclosed, world):
    case, identifiable, safe = disclosed
    client = client_for(world.ada)
    page = client.get(f"/audit/disclosures/?case={case.case_uid}&site=SITEA").content.decode()
    # Read by Ada, held by her identifiable export, and in Mona's export of her site.
    assert rows(page).count("case.viewed") == 1
    assert str(identifiable.code) in export_codes(page)
    assert str(safe.code) not in export_codes(page)
    assert "Export of SITEA&#x27;s own cases" in page
    # A read of the site's case list that showed the case is a disclosure too.
    with time_machine.travel("2027-01-05 10:00Z"):
        assert client_for(world.ada).get("/sites/SITEA/cases/").status_code == 200
    page = client.get(f"/audit/disclosures/?case={case.case_uid}").content.decode()
    assert rows(page).count("case.listed") == 1
    # A case of another site was neither read nor in a site export.
    other = next(c for c in disclosed_cases(world) if c.site.code == "SITEB")
    page = client.get(f"/audit/disclosures/?case={other.case_uid}").content.decode()
    assert "case.viewed" not in rows(page)
    assert export_codes(page) == {str(identifiable.code)}


def disclosed_cases(world):
    from registry3d.cases.models import Case

    return Case.objects.filter(status="submitted").select_related("site")


def test_the_disclosures_filter_by_person_site_and_period(disclosed, world):
    case, identifiable, safe = disclosed
    client = client_for(world.ada)
    page = client.get("/audit/disclosures/?person=dan@").content.decode()
    assert export_codes(page) == {str(safe.code)} and "case.viewed" not in rows(page)
    page = client.get("/audit/disclosures/?start=2027-01-02&end=2027-01-02").content.decode()
    assert rows(page) == ["case.viewed"]
    page = client.get("/audit/disclosures/?site=SITEB").content.decode()
    assert export_codes(page) == {str(identifiable.code)}
    page = client.get("/audit/disclosures/?start=not-a-date").content.decode()
    assert (
        len(rows(page))
        == AuditEvent.objects.filter(
            action__in=("case.viewed", "export.requested", "export.downloaded")
        ).count()
    )


def test_the_disclosures_are_paginated(exportable, world):  # noqa: F811
    client = client_for(world.ada)
    case = next(c for c in exportable.cases if c.status == "submitted")
    for _ in range(51):
        client.get(f"/sites/SITEA/cases/{case.case_uid}/")
    first = client.get("/audit/disclosures/").content.decode()
    assert len(rows(first)) == 50 and "Page 1 of 2" in first
    second = client.get("/audit/disclosures/?page=2&site=SITEA").content.decode()
    assert len(rows(second)) == 1
