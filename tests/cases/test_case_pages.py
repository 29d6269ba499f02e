import io
import logging

import pytest
from django.core.management import call_command

from registry3d.cases import services
from registry3d.cases.models import Case
from registry3d.dictionary import flat, registry
from registry3d.lib.pseudonym import patient_key
from tests.cases.conftest import a_case
from tests.conftest import client_for, csrf_post

MRN = "MRN-99887766"


def form_post(world, labels, **extra):
    row = flat.write_row(registry.current().dictionary, {}, a_case(11, labels))
    return {**row, **extra}


def test_a_contributor_records_a_case_with_an_mrn_that_is_never_stored(world, printers, caplog):
    caplog.set_level(logging.DEBUG)
    client = client_for(world.alice)
    response = csrf_post(
        client,
        "/sites/SITEA/cases/new/",
        form_post(world, printers[0], case_uid="WEB-1", mrn=MRN, action="submit"),
    )
    assert response.status_code == 302
    assert response["Location"] == "/sites/SITEA/cases/WEB-1/"
    case = Case.objects.get(case_uid="WEB-1")
    assert case.status == "submitted"
    assert case.patient_key == patient_key("SITEA", MRN)
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    for text in (dump.getvalue(), caplog.text):
        assert MRN not in text and "99887766" not in text
    page = client.get("/sites/SITEA/cases/WEB-1/").content.decode()
    assert "99887766" not in page
    assert "Case WEB-1 is submitted (version 1)." in page


def test_the_form_never_echoes_a_typed_mrn_back(world, printers):
    response = csrf_post(
        client_for(world.alice),
        "/sites/SITEA/cases/new/",
        {"case_uid": "bad id!", "mrn": MRN, "action": "draft"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Case ID: use 1 to 64 letters, digits, - or _" in page
    assert "99887766" not in page


def test_a_draft_is_saved_incomplete_and_submitted_later(world, printers):
    client = client_for(world.alice)
    response = csrf_post(
        client,
        "/sites/SITEA/cases/new/",
        {"case_uid": "D-1", "object_type": "anatomic_model", "action": "draft"},
    )
    assert response.status_code == 302
    case = Case.objects.get(case_uid="D-1")
    assert (case.status, case.version) == ("draft", 1)
    incomplete = csrf_post(
        client,
        "/sites/SITEA/cases/D-1/edit/",
        {"object_type": "anatomic_model", "version": "1", "action": "submit"},
    )
    assert incomplete.status_code == 400
    assert "Sex is required" in incomplete.content.decode()
    done = csrf_post(
        client,
        "/sites/SITEA/cases/D-1/edit/",
        form_post(world, printers[0], version="1", action="submit"),
    )
    assert done.status_code == 302
    case.refresh_from_db()
    assert (case.status, case.version) == ("submitted", 2)


def test_a_stale_edit_shows_what_changed_and_overwrites_nothing(world, printers):
    data = a_case(12, printers[0])
    services.save_case(world.site_a, case_uid="S-1", data=data, status="submitted")
    services.save_case(
        world.site_a, case_uid="S-1", data=dict(data, age_years=33), status="submitted"
    )
    response = csrf_post(
        client_for(world.alice),
        "/sites/SITEA/cases/S-1/edit/",
        form_post(world, printers[0], version="1", action="submit", turnaround_days="44"),
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "Someone else changed this case while you were editing it (now version 2)." in page
    assert f"<code>age_years</code>: {data['age_years']} → 33" in page
    assert Case.objects.get(case_uid="S-1").data["age_years"] == 33


def test_the_inline_check_returns_each_fields_problems(world, printers):
    response = csrf_post(
        client_for(world.alice),
        "/sites/SITEA/cases/check/",
        {"age_years": "300", "prints_1_copies": "0"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        '<div class="field-errors" id="err-age_years" hx-swap-oob="true">'
        '<p class="errorlist" role="alert">Patient age (years): the value is out of range'
    ) in page
    assert 'id="err-prints_1_copies" hx-swap-oob="true"><p class="errorlist"' in page
    # Only what was typed is checked while typing: no "is required" noise.
    assert "is required" not in page


def test_the_list_filters_and_searches(world, printers):
    for n, month in enumerate(["2025-03", "2026-04", "2026-05"]):
        services.save_case(
            world.site_a,
            case_uid=f"L-{n}",
            status="draft",
            data={"object_type": "anatomic_model", "case_year_month": month},
        )
    client = client_for(world.bob)
    page = client.get("/sites/SITEA/cases/?year=2026").content.decode()
    assert "L-1" in page and "L-2" in page and "L-0" not in page
    page = client.get("/sites/SITEA/cases/?q=L-2").content.decode()
    assert '<p class="muted" data-total="1">1 case</p>' in page
    partial = client.get("/sites/SITEA/cases/?status=draft", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'data-total="3"' in partial.content


def test_the_detail_shows_values_in_words_and_the_history(world, printers):
    data = a_case(13, printers[0])
    services.save_case(
        world.site_a, case_uid="H-1", data=data, status="submitted", actor=world.alice
    )
    services.save_case(
        world.site_a,
        case_uid="H-1",
        data=dict(data, sex="unknown"),
        status="submitted",
        actor=world.mona,
    )
    page = client_for(world.bob).get("/sites/SITEA/cases/H-1/").content.decode()
    assert "<strong>Version 2</strong>" in page and "mona@a.example.org" in page
    assert f"<code>sex</code>: {data['sex']} → unknown" in page
    assert "<dt>Sex</dt><dd>Unknown</dd>" in page


@pytest.mark.parametrize(
    "path",
    [
        "/sites/SITEA/cases/",
        "/sites/SITEA/cases/X-1/",
        "/sites/SITEA/cases/X-1/edit/",
        "/sites/SITEA/cases/new/",
    ],
)
def test_another_sites_user_gets_404_for_every_case_page(world, printers, path):
    services.save_case(world.site_a, case_uid="X-1", status="draft", data={})
    assert client_for(world.carol).get(path).status_code == 404


def test_another_sites_user_cannot_write_through_any_door(world, printers):
    services.save_case(world.site_a, case_uid="X-1", status="draft", data={"age_years": 5})
    carol = client_for(world.carol)
    for path, data in [
        ("/sites/SITEA/cases/new/", {"case_uid": "X-2", "action": "draft"}),
        ("/sites/SITEA/cases/X-1/edit/", {"age_years": "6", "version": "1", "action": "draft"}),
        ("/sites/SITEA/cases/X-1/withdraw/", {"reason": "mine now"}),
        ("/sites/SITEA/cases/check/", {"age_years": "6"}),
        ("/sites/SITEB/cases/X-1/edit/", {"age_years": "6", "action": "draft"}),
    ]:
        assert csrf_post(carol, path, data).status_code == 404, path
    case = Case.objects.get(case_uid="X-1")
    assert (case.version, case.status, case.data) == (1, "draft", {"age_years": 5})
    assert Case.objects.count() == 1


def test_a_viewer_reads_but_cannot_write(world, printers):
    services.save_case(world.site_a, case_uid="V-1", status="draft", data={})
    bob = client_for(world.bob)
    assert bob.get("/sites/SITEA/cases/V-1/").status_code == 200
    assert b"/sites/SITEA/cases/V-1/edit/" not in bob.get("/sites/SITEA/cases/V-1/").content
    assert bob.get("/sites/SITEA/cases/new/").status_code == 403
    assert csrf_post(bob, "/sites/SITEA/cases/V-1/withdraw/", {"reason": "no"}).status_code == 403


def test_a_contributor_withdraws_a_case_with_a_reason(world, printers):
    services.save_case(world.site_a, case_uid="W-1", status="draft", data={})
    client = client_for(world.alice)
    response = csrf_post(
        client,
        "/sites/SITEA/cases/W-1/withdraw/",
        {"reason": "Duplicate of W-2", "version": "1"},
        follow=True,
    )
    assert "Case W-1 was withdrawn." in response.content.decode()
    assert Case.objects.get(case_uid="W-1").status == "withdrawn"


def test_saving_again_after_a_conflict_keeps_both_peoples_changes(world, printers):
    data = a_case(14, printers[0])
    services.save_case(world.site_a, case_uid="M-1", data=data, status="submitted")
    dictionary = registry.current().dictionary
    mine = {
        **flat.write_row(dictionary, {}, data),
        "version": "1",
        "action": "submit",
        "turnaround_days": "21",
    }
    # Meanwhile someone else changes another field.
    services.save_case(
        world.site_a, case_uid="M-1", data=dict(data, rush_case=True), status="submitted"
    )
    client = client_for(world.alice)
    conflict = csrf_post(client, "/sites/SITEA/cases/M-1/edit/", mine)
    assert conflict.status_code == 409
    page = conflict.content.decode()
    assert "You both changed" not in page
    # The form now holds their change and ours; saving it keeps both.
    assert 'name="turnaround_days" value="21"' in page
    import re

    row = dict(re.findall(r'name="([a-z0-9_]+)" value="([^"]*)"', page))
    selected = dict(
        re.findall(
            r'<select id="i-([a-z0-9_]+)" name="[a-z0-9_]+">(?:(?!</select>).)*?'
            r'<option value="([^"]+)" selected>',
            page,
            re.S,
        )
    )
    checked = re.findall(r'name="([a-z0-9_]+)" value="([^"]+)" checked', page)
    post_data = {**row, **selected}
    for name, value in checked:
        post_data.setdefault(name + "__multi", []).append(value)
    for key in [k for k in post_data if k.endswith("__multi")]:
        post_data[key[:-7]] = post_data.pop(key)
    post_data.pop("csrfmiddlewaretoken", None)
    post_data["action"] = "submit"
    saved = csrf_post(client, "/sites/SITEA/cases/M-1/edit/", post_data)
    assert saved.status_code == 302, saved.content.decode()[:3000]
    case = Case.objects.get(case_uid="M-1")
    assert (case.version, case.data["turnaround_days"], case.data["rush_case"]) == (3, 21, True)


def test_submitting_shows_the_status_change_in_the_history(world, printers):
    services.save_case(world.site_a, case_uid="ST-1", data=a_case(15, printers[0]), status="draft")
    case = services.save_case(
        world.site_a, case_uid="ST-1", data=a_case(15, printers[0]), status="submitted"
    ).case
    assert case.versions.get(version=2).changes == {"status": ["draft", "submitted"]}
