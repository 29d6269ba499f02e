"""Who opens a case page: the site's members and registry admins, nobody else.

Every URL pattern under a site's cases is tried with a real case of Site A,
so a page added later is covered without a change here. A registry analyst
sees aggregates only and gets the same 404 as another site's manager;
every read of a case page by registry staff is recorded as ``case.viewed``.
"""

import re

import pytest
from django.urls import URLPattern, get_resolver

from registry3d.audit.models import AuditEvent
from registry3d.cases import services
from tests.cases.conftest import a_case
from tests.conftest import client_for, csrf_post

SECRET_COMMENT = "Segmented twice: the first run missed the vessels"


def case_urls(case_uid: str) -> list[str]:
    """Every URL under /sites/SITEA/cases/, filled with Site A's code and ``case_uid``."""
    urls = []
    for pattern in get_resolver().url_patterns:
        if not str(pattern.pattern).startswith("sites/"):
            continue
        for inner in pattern.url_patterns:
            assert isinstance(inner, URLPattern)
            route = str(inner.pattern)
            if not route.startswith("<str:code>/cases/"):
                continue
            path = route.replace("<str:code>", "SITEA").replace("<str:case_uid>", case_uid)
            assert "<" not in path, f"fill in the new parameter of {route}"
            urls.append("/sites/" + path)
    return urls


@pytest.fixture
def case_a(world, printers):
    data = a_case(3, printers[0])
    data["ua_comment"] = SECRET_COMMENT
    return services.save_case(
        world.site_a, case_uid="ACCESS-1", data=data, status="submitted", actor=world.alice
    ).case


def test_the_case_pages_are_all_found():
    urls = case_urls("ACCESS-1")
    for expected in (
        "/sites/SITEA/cases/",
        "/sites/SITEA/cases/new/",
        "/sites/SITEA/cases/check/",
        "/sites/SITEA/cases/ACCESS-1/",
        "/sites/SITEA/cases/ACCESS-1/edit/",
        "/sites/SITEA/cases/ACCESS-1/withdraw/",
        "/sites/SITEA/cases/ACCESS-1/questionnaire/",
    ):
        assert expected in urls


@pytest.mark.parametrize("who", ["dan", "carol"])
def test_an_analyst_gets_the_same_404_as_another_site_on_every_case_page(world, case_a, who):
    client = client_for(getattr(world, who))
    for url in case_urls(case_a.case_uid):
        answers = [client.get(url), csrf_post(client, url, {"action": "send"})]
        # A page that takes only POST (or only GET) says so for the other
        # method before anyone is asked who they are: that tells nothing.
        codes = [r.status_code for r in answers]
        assert set(codes) <= {404, 405} and 404 in codes, (who, url, codes)
        for response in answers:
            assert SECRET_COMMENT not in response.content.decode()
            assert case_a.case_uid not in response.content.decode()
    case_a.refresh_from_db()
    assert case_a.status == "submitted" and case_a.version == 1
    assert not AuditEvent.objects.filter(action="case.viewed").exists()


def test_an_analyst_keeps_the_sites_aggregate_pages_without_links_to_cases(world, case_a):
    client = client_for(world.dan)
    home = client.get("/sites/SITEA/")
    assert home.status_code == 200
    page = home.content.decode()
    assert "/sites/SITEA/cases/" not in page
    assert re.search(r"data-cases>\s*1\s*<", page)
    assert client.get("/sites/SITEA/dashboard/").status_code == 200
    for url in ("/sites/SITEA/members/", "/sites/SITEA/export/", "/sites/SITEA/audit/"):
        assert client.get(url).status_code == 404, url


def test_site_members_and_admins_still_open_case_pages(world, case_a):
    for person in (world.alice, world.bob, world.mona, world.ada):
        client = client_for(person)
        assert client.get("/sites/SITEA/cases/").status_code == 200
        page = client.get("/sites/SITEA/cases/ACCESS-1/")
        assert page.status_code == 200
        assert SECRET_COMMENT in page.content.decode()
    # The site's own members read as members: nothing to account for.
    assert list(
        AuditEvent.objects.filter(action="case.viewed").values_list("actor", flat=True)
    ) == [world.ada.pk]


def test_an_admins_read_of_a_case_is_recorded_once_without_its_values(world, case_a):
    client = client_for(world.ada)
    assert client.get("/sites/SITEA/cases/ACCESS-1/").status_code == 200
    viewed = AuditEvent.objects.filter(action="case.viewed")
    assert viewed.count() == 1
    event = viewed.get()
    assert (event.actor, event.site, event.object_type, event.object_id) == (
        world.ada,
        world.site_a,
        "case",
        "ACCESS-1",
    )
    assert event.changes == {}
    assert event.via == "web"
    assert SECRET_COMMENT not in event.changes_json
    # The form shows every value too; a read of it is recorded as well.
    assert client.get("/sites/SITEA/cases/ACCESS-1/edit/").status_code == 200
    assert viewed.count() == 2
    # A missing case records nothing.
    assert client.get("/sites/SITEA/cases/NOPE/").status_code == 404
    assert viewed.count() == 2


def test_an_admins_read_of_the_case_list_records_the_case_ids_it_showed(world, case_a):
    assert client_for(world.ada).get("/sites/SITEA/cases/").status_code == 200
    listed = AuditEvent.objects.get(action="case.listed")
    assert (listed.actor, listed.site, listed.object_id) == (world.ada, world.site_a, "SITEA")
    assert listed.changes == {"cases": ["ACCESS-1"]}
    # The site's own people read their list unrecorded.
    assert client_for(world.bob).get("/sites/SITEA/cases/").status_code == 200
    assert AuditEvent.objects.filter(action="case.listed").count() == 1
