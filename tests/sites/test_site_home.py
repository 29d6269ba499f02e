from tests.conftest import client_for, without_csrf


def test_a_member_sees_their_site_home(world):
    response = client_for(world.alice).get("/sites/SITEA/")
    assert response.status_code == 200
    assert b"Site A Hospital" in response.content
    assert b"No cases are recorded for this site yet." in response.content
    assert b'<div class="stat" data-cases>0</div>' in response.content


def test_another_sites_member_gets_404_for_site_home(world):
    response = client_for(world.carol).get("/sites/SITEA/")
    assert response.status_code == 404
    assert b"Site A Hospital" not in response.content


def test_an_unknown_site_looks_the_same_as_a_forbidden_one(world):
    unknown = client_for(world.carol).get("/sites/NOSUCH/")
    forbidden = client_for(world.carol).get("/sites/SITEA/")
    assert unknown.status_code == forbidden.status_code == 404
    assert without_csrf(unknown.content) == without_csrf(forbidden.content)


def test_an_analyst_can_read_any_site_home(world):
    response = client_for(world.dan).get("/sites/SITEB/")
    assert response.status_code == 200
    assert b"Site B Clinic" in response.content


def test_home_sends_a_member_to_their_site(world):
    response = client_for(world.bob).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/sites/SITEA/"


def test_home_lists_every_site_for_registry_staff(world):
    response = client_for(world.dan).get("/")
    assert response.status_code == 200
    assert b"SITEA" in response.content and b"SITEB" in response.content


def test_home_of_someone_without_a_site_says_so(world):
    from registry3d.sites import services

    loner = services.add_user("loner@example.org", "some-password-123")
    response = client_for(loner).get("/")
    assert response.status_code == 200
    assert b"You do not belong to any site yet." in response.content


def test_anonymous_visitors_are_sent_to_log_in(db):
    from django.test import Client

    response = Client().get("/sites/SITEA/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/sites/SITEA/"


def test_the_site_home_counts_the_sites_cases_only(world):
    from registry3d.cases import services as cases

    cases.save_case(world.site_a, case_uid="A-1", status="draft", data={})
    cases.save_case(world.site_b, case_uid="B-1", status="draft", data={})
    cases.save_case(world.site_b, case_uid="B-2", status="draft", data={})
    page = client_for(world.alice).get("/sites/SITEA/").content.decode()
    assert '<div class="stat" data-cases>1</div>' in page
    assert "0 submitted · 1 draft" in page
