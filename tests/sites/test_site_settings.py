from decimal import Decimal

import pytest

from registry3d.audit.models import AuditEvent
from registry3d.sites import services
from registry3d.sites.errors import InvalidValue
from registry3d.sites.models import Printer
from tests.conftest import client_for, csrf_post

J750 = {
    "action": "printer",
    "label": "J750-1",
    "manufacturer": "Stratasys",
    "model": "J750 Digital Anatomy",
    "technology": "material_jetting",
}


def test_a_manager_adds_a_printer_with_a_technology_from_the_dictionary(world):
    client = client_for(world.mona)
    page = client.get("/sites/SITEA/settings/").content.decode()
    assert '<option value="vat_photopolymerization">' in page
    response = csrf_post(client, "/sites/SITEA/settings/", J750)
    assert response.status_code == 302
    printer = Printer.objects.get(site=world.site_a)
    assert (printer.label, printer.technology_label) == ("J750-1", "Material jetting")
    assert AuditEvent.objects.filter(action="printer.added", actor=world.mona).count() == 1


def test_a_duplicate_or_malformed_label_is_refused_next_to_the_field(world):
    client = client_for(world.mona)
    csrf_post(client, "/sites/SITEA/settings/", J750)
    again = csrf_post(client, "/sites/SITEA/settings/", J750)
    assert again.status_code == 400
    assert "SITEA already has a printer labelled J750-1" in again.content.decode()
    bad = csrf_post(client, "/sites/SITEA/settings/", dict(J750, label="J750 #1"))
    assert "Use 1 to 64 letters, digits, - or _" in bad.content.decode()
    assert Printer.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        (
            "label",
            "Smith_John_1950-03-03",
            "Printer label: this looks like a full date; the registry never stores patient "
            "identifiers, so remove it",
        ),
        (
            "manufacturer",
            "John Smith",
            "Manufacturer: this looks like a person&#x27;s name; the registry never stores "
            "patient identifiers, so remove it",
        ),
        (
            "model",
            "617-555-0100",
            "Model: this looks like a phone number; the registry never stores patient "
            "identifiers, so remove it",
        ),
    ],
)
def test_a_printer_whose_label_manufacturer_or_model_holds_an_identifier_is_refused(
    world, field, typed, message
):
    """Each is written into the printer.added event, which is kept for good (#15)."""
    client = client_for(world.mona)
    response = csrf_post(client, "/sites/SITEA/settings/", {**J750, field: typed})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert typed not in page
    assert not Printer.objects.exists()
    assert not AuditEvent.objects.filter(action="printer.added").exists()


def test_the_printer_service_refuses_a_label_that_holds_a_name_and_a_record_number(world):
    with pytest.raises(InvalidValue) as refused:
        services.add_printer(
            world.site_a,
            label="Smith_John_MRN1234567",
            manufacturer="Stratasys",
            model="J750",
            technology="material_jetting",
        )
    assert str(refused.value) == (
        "Printer label: this looks like a medical record or account number; the registry "
        "never stores patient identifiers, so remove it"
    )


def test_a_printer_taken_out_of_service_stays_on_record(world):
    printer = services.add_printer(
        world.site_a,
        label="MK4",
        manufacturer="Prusa",
        model="MK4",
        technology="material_extrusion",
    )
    client = client_for(world.mona)
    csrf_post(client, f"/sites/SITEA/printers/{printer.code}/active/", {"active": "no"})
    printer.refresh_from_db()
    assert printer.active is False
    assert AuditEvent.objects.filter(action="printer.retired").count() == 1
    assert "out of service" in client.get("/sites/SITEA/settings/").content.decode()


def test_the_operating_room_cost_defaults_to_the_registry_value_with_its_source(world):
    page = client_for(world.mona).get("/sites/SITEA/settings/").content.decode()
    assert "<strong data-or-cost>$37.45</strong> per minute (registry default: Childers" in page


def test_a_manager_sets_the_sites_operating_room_cost(world):
    client = client_for(world.mona)
    response = csrf_post(
        client, "/sites/SITEA/settings/", {"action": "cost", "or_cost_per_minute_usd": "62"}
    )
    assert response.status_code == 302
    world.site_a.refresh_from_db()
    assert world.site_a.or_cost == (62.0, "set by the site")
    event = AuditEvent.objects.get(action="site.settings_changed")
    assert event.changes == {"or_cost_per_minute_usd": [None, "62.00"]}
    refused = csrf_post(
        client, "/sites/SITEA/settings/", {"action": "cost", "or_cost_per_minute_usd": "0"}
    )
    assert refused.status_code == 400
    world.site_a.refresh_from_db()
    assert world.site_a.or_cost_per_minute_usd == Decimal("62.00")


@pytest.mark.parametrize(
    "who, status", [("carol", 404), ("dan", 404), ("bob", 403), ("alice", 403)]
)
def test_only_the_sites_managers_reach_its_settings(world, who, status):
    client = client_for(getattr(world, who))
    assert client.get("/sites/SITEA/settings/").status_code == status
    response = csrf_post(client, "/sites/SITEA/settings/", J750)
    assert response.status_code == status
    assert Printer.objects.exists() is False


def test_another_site_cannot_retire_a_printer(world):
    printer = services.add_printer(
        world.site_a,
        label="MK4",
        manufacturer="Prusa",
        model="MK4",
        technology="material_extrusion",
    )
    for path in (
        f"/sites/SITEA/printers/{printer.code}/active/",
        f"/sites/SITEB/printers/{printer.code}/active/",
    ):
        assert csrf_post(client_for(world.carol), path, {"active": "no"}).status_code == 404
    printer.refresh_from_db()
    assert printer.active is True


def test_staff_costs_start_unset_and_say_what_that_means(world):
    page = client_for(world.mona).get("/sites/SITEA/settings/").content.decode()
    assert '<strong data-staff-cost="clinician">no rate</strong> per hour (not set)' in page
    assert "Cases that spent time of a kind without a rate have no labour cost" in page


def test_staff_costs_fall_back_to_the_registry_default(world, settings):
    settings.REGISTRY3D_NON_CLINICIAN_COST_PER_HOUR = 55.0
    page = client_for(world.mona).get("/sites/SITEA/settings/").content.decode()
    assert (
        '<strong data-staff-cost="non_clinician">$55.00</strong> per hour (registry default)'
        in page
    )


def test_a_manager_sets_the_staff_costs_in_one_audited_change(world):
    client = client_for(world.mona)
    response = csrf_post(
        client,
        "/sites/SITEA/settings/",
        {
            "action": "staff_cost",
            "clinician_cost_per_hour_usd": "185.5",
            "non_clinician_cost_per_hour_usd": "62",
        },
    )
    assert response.status_code == 302
    world.site_a.refresh_from_db()
    assert world.site_a.staff_costs == {
        "clinician": (185.5, "set by the site"),
        "non_clinician": (62.0, "set by the site"),
    }
    event = AuditEvent.objects.get(action="site.settings_changed")
    assert event.changes == {
        "clinician_cost_per_hour_usd": [None, "185.50"],
        "non_clinician_cost_per_hour_usd": [None, "62.00"],
    }
    # The operating-room cost form leaves the staff costs alone.
    csrf_post(client, "/sites/SITEA/settings/", {"action": "cost", "or_cost_per_minute_usd": "40"})
    world.site_a.refresh_from_db()
    assert world.site_a.clinician_cost_per_hour_usd == Decimal("185.50")


def test_a_bad_staff_cost_is_refused_next_to_the_field_and_nothing_changes(world):
    client = client_for(world.mona)
    response = csrf_post(
        client,
        "/sites/SITEA/settings/",
        {
            "action": "staff_cost",
            "clinician_cost_per_hour_usd": "150",
            "non_clinician_cost_per_hour_usd": "9000",
        },
    )
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 5000." in response.content.decode()
    world.site_a.refresh_from_db()
    assert world.site_a.clinician_cost_per_hour_usd is None
    assert not AuditEvent.objects.filter(action="site.settings_changed").exists()


def test_the_staff_cost_service_refuses_out_of_range_values_before_saving_any(world):
    from registry3d.sites.errors import InvalidValue

    with pytest.raises(InvalidValue, match="The non-clinician cost per hour must be between 1"):
        services.set_costs(
            world.site_a, clinician_cost_per_hour_usd=100, non_clinician_cost_per_hour_usd=0
        )
    world.site_a.refresh_from_db()
    assert world.site_a.clinician_cost_per_hour_usd is None


def test_another_sites_manager_cannot_set_the_staff_costs(world):
    response = csrf_post(
        client_for(world.carol),
        "/sites/SITEA/settings/",
        {"action": "staff_cost", "clinician_cost_per_hour_usd": "1"},
    )
    assert response.status_code == 404
    world.site_a.refresh_from_db()
    assert world.site_a.clinician_cost_per_hour_usd is None
