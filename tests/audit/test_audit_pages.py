from tests.conftest import client_for


def test_a_manager_sees_their_sites_trail_only(world):
    response = client_for(world.mona).get("/sites/SITEA/audit/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "membership.added" in page
    assert "carol@b.example.org" not in page
    assert "site.created" in page


def test_another_sites_manager_gets_404_for_the_trail(world):
    assert client_for(world.carol).get("/sites/SITEA/audit/").status_code == 404


def test_a_viewer_may_not_see_the_trail(world):
    assert client_for(world.bob).get("/sites/SITEA/audit/").status_code == 403


def test_only_registry_admins_see_the_whole_trail(world):
    assert client_for(world.mona).get("/audit/").status_code == 403
    assert client_for(world.dan).get("/audit/").status_code == 403
    response = client_for(world.ada).get("/audit/?action=membership.")
    assert response.status_code == 200
    assert "carol@b.example.org" in response.content.decode()


def test_the_admin_offers_no_way_to_change_or_delete_events(world):
    from registry3d.audit.models import AuditEvent

    client = client_for(world.ada)
    event = AuditEvent.objects.first()
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403


def test_the_site_home_tells_managers_recent_activity_in_words(world):
    from registry3d.sites import services

    services.add_printer(
        world.site_a,
        label="J750-1",
        manufacturer="Stratasys",
        model="J750",
        technology="material_jetting",
        actor=world.mona,
    )
    page = client_for(world.mona).get("/sites/SITEA/").content.decode()
    assert "mona@a.example.org added a printer (J750-1)" in page
    assert "added a member (bob@a.example.org)" in page
    # Viewers do not see who did what.
    assert "added a printer" not in client_for(world.bob).get("/sites/SITEA/").content.decode()


def test_the_trail_pages_show_digests_of_case_values_never_the_values(world):
    from registry3d.audit.digests import digest
    from registry3d.audit.models import AuditEvent
    from registry3d.cases import services

    comment = "Reviewed with the cardiology team"
    services.save_case(
        world.site_a,
        case_uid="T-1",
        data={"anatomic_parts": [{"region": "head", "structure": "bone", "comment": comment}]},
    )
    event = AuditEvent.objects.get(object_id="T-1")
    for user, path in ((world.mona, "/sites/SITEA/audit/"), (world.ada, "/audit/?action=case.")):
        page = client_for(user).get(path).content.decode()
        assert digest(comment) in page and comment not in page
    admin = client_for(world.ada).get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert admin.status_code == 200
    assert comment not in admin.content.decode()
