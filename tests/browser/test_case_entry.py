"""Case entry in a real browser: the form, inline checks, drafts, submission,
history, the list's filters on a phone, two editors at once, and who may see what."""

import json
import random
import re

import pytest
from playwright.sync_api import expect

from registry3d.audit.models import AuditEvent
from registry3d.cases import services as case_services
from registry3d.cases.models import Case, CaseStatus, CaseVersion
from registry3d.dictionary import registry
from registry3d.dictionary.examples import synthetic_case
from registry3d.lib.pseudonym import patient_key
from registry3d.sites.services import add_printer
from tests.browser.conftest import log_in

ALICE = "alice@a.example.org"
BOB = "bob@a.example.org"
MONA = "mona@a.example.org"
CAROL = "carol@b.example.org"
PRINTER = "J750-A"
MRN = "MRN-4417-2093"
EFFORTS = [
    "effort_consultation_clinician",
    "effort_consultation_non_clinician",
    "effort_segmentation_clinician",
    "effort_segmentation_non_clinician",
    "effort_cad_clinician",
    "effort_cad_non_clinician",
    "effort_prep_post_processing_clinician",
    "effort_prep_post_processing_non_clinician",
]
MINIMAL = {"object_type": "anatomic_model", "case_year_month": "2026-05"}


def field(page, name):
    return page.locator(f'[id="i-{name}"]')


def errors_at(page, name):
    """The error container under the field ``name`` (inside its own field box)."""
    return page.locator(f'[id="f-{name}"] > [id="err-{name}"]')


def check_of(posted: str):
    """Match the response to the inline check whose form post holds ``posted``."""

    def matches(response) -> bool:
        request = response.request
        return (
            response.url.endswith("/cases/check/")
            and request.method == "POST"
            and posted in (request.post_data or "")
        )

    return matches


def fill_complete_model(page) -> None:
    """Fill every field a submitted anatomic model needs (one part, one print)."""
    field(page, "object_type").select_option("anatomic_model")
    field(page, "case_year_month").fill("2026-05")
    field(page, "is_point_of_care").select_option("yes")
    field(page, "exclusion_check").select_option("yes")
    field(page, "sex").select_option("female")
    field(page, "organ_system").select_option("cardiac")
    field(page, "imaging_1_modality").select_option("cardiac_ct")
    field(page, "ordering_service").select_option("congenital_cardiac_surgery")
    page.locator('input[name="intended_uses"][value="pre_procedural_planning"]').check()
    page.get_by_role("button", name="Add anatomic parts").click()
    field(page, "anatomic_parts_1_region").select_option("heart")
    field(page, "anatomic_parts_1_structure").select_option("myocardium")
    field(page, "prints_1_print_role").select_option("primary")
    field(page, "prints_1_part_numbers").fill("1")
    field(page, "prints_1_printer_label").fill(PRINTER)
    field(page, "prints_1_technology").select_option("material_jetting")
    field(page, "prints_1_material").select_option("photopolymer_rigid")
    field(page, "prints_1_scale_percent").fill("100")
    field(page, "prints_1_copies").fill("1")
    field(page, "prints_1_optical").select_option("opaque")
    field(page, "procedure_performed").select_option("not_yet")
    for number, name in enumerate(EFFORTS, start=1):
        field(page, name).fill(str(10 * number))


@pytest.mark.browser
def test_contributor_records_checks_drafts_and_submits_a_case(browser_world, page):
    site = browser_world.site_a
    add_printer(
        site, label=PRINTER, manufacturer="Stratasys", model="J750", technology="material_jetting"
    )
    for uid in ("OTHER-1", "OTHER-2"):
        case_services.save_case(site, case_uid=uid, data=MINIMAL, actor=browser_world.mona)

    log_in(page, ALICE)
    page.get_by_role("navigation", name="Site pages").get_by_role("link", name="Cases").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cases of SITEA")
    page.get_by_role("link", name="New case").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New case")

    page.get_by_label("Case ID").fill("HRT-2026-001")
    page.get_by_label("Medical record number").fill(MRN)
    fill_complete_model(page)

    # A wrong age is reported under the field as soon as it is checked, before any save.
    age = field(page, "age_years")
    with page.expect_response(check_of("age_years=300")) as checked:
        age.fill("300")
        age.blur()
    assert checked.value.status == 200
    age_errors = errors_at(page, "age_years").get_by_role("alert")
    expect(age_errors).to_have_count(1)
    expect(age_errors).to_contain_text("120")
    expect(page).to_have_url(re.compile(r"/sites/SITEA/cases/new/$"))
    assert not Case.objects.filter(case_uid="HRT-2026-001").exists()

    with page.expect_response(check_of("age_years=45")):
        age.fill("45")
        age.blur()
    expect(errors_at(page, "age_years").get_by_role("alert")).to_have_count(0)

    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(re.compile(r"/sites/SITEA/cases/HRT-2026-001/$"))
    expect(page.get_by_role("status")).to_contain_text("Draft HRT-2026-001 saved (version 1).")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Draft")

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit case HRT-2026-001")
    expect(age).to_have_value("45")
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/sites/SITEA/cases/HRT-2026-001/$"))
    expect(page.get_by_role("status")).to_contain_text(
        "Case HRT-2026-001 is submitted (version 2)."
    )

    # The list finds it through the search box, without reloading the page.
    page.get_by_role("navigation", name="Site pages").get_by_role("link", name="Cases").click()
    rows = page.locator("#case-table tbody tr")
    expect(rows).to_have_count(3)
    with page.expect_response(lambda r: "/sites/SITEA/cases/?" in r.url and "q=HRT" in r.url):
        page.get_by_label("Case ID").fill("HRT")
    expect(rows).to_have_count(1)
    expect(page.locator("#case-table [data-total]")).to_have_text("1 case")
    expect(page).to_have_url(re.compile(r"[?&]q=HRT"))
    row = rows.first
    expect(row).to_contain_text("Submitted")
    row.get_by_role("link", name="HRT-2026-001").click()

    history = page.locator("ol.history > li")
    expect(history).to_have_count(2)
    second = page.locator('ol.history > li[data-version="2"]')
    first = page.locator('ol.history > li[data-version="1"]')
    expect(second).to_contain_text("Version 2")
    expect(second).to_contain_text("Submitted")
    expect(second).to_contain_text(ALICE)
    expect(first).to_contain_text("Draft")
    expect(first).to_contain_text("age_years")

    # The MRN itself is stored nowhere; only its site-keyed pseudonym is.
    case = Case.objects.get(site=site, case_uid="HRT-2026-001")
    assert case.status == CaseStatus.SUBMITTED and case.version == 2
    assert case.data["age_years"] == 45
    assert case.patient_key == patient_key("SITEA", MRN)
    spellings = {MRN, MRN.replace("-", ""), MRN.lower()}
    texts = [json.dumps(case.data), case.patient_key, case.withdrawn_reason]
    for version in CaseVersion.objects.filter(case=case):
        texts += [json.dumps(version.data), json.dumps(version.changes), version.patient_key]
    events = AuditEvent.objects.filter(object_type="case", object_id="HRT-2026-001")
    assert events.count() == 2
    texts += [event.changes_json for event in AuditEvent.objects.all()]
    for text in texts:
        for spelling in spellings:
            assert spelling.lower() not in text.lower()


@pytest.mark.browser
def test_case_list_on_a_phone_scrolls_the_table_not_the_page(browser_world, new_page):
    site = browser_world.site_a
    for number in range(1, 26):
        case_services.save_case(
            site, case_uid=f"D-{number:03d}", data=MINIMAL, actor=browser_world.alice
        )
    add_printer(
        site, label=PRINTER, manufacturer="Stratasys", model="J750", technology="material_jetting"
    )
    dictionary = registry.current().dictionary
    rng = random.Random(7)
    for number in range(1, 6):
        data = synthetic_case(dictionary, rng, year_months=["2025-11"])
        for item in data["prints"]:
            item["printer_label"] = PRINTER
        case_services.save_case(
            site,
            case_uid=f"S-{number:03d}",
            data=data,
            status=CaseStatus.SUBMITTED,
            actor=browser_world.alice,
        )

    page = new_page(viewport={"width": 390, "height": 844})
    log_in(page, ALICE)
    page.goto("/sites/SITEA/cases/")
    count = page.locator("#case-table [data-total]")
    expect(count).to_have_text("30 cases")
    expect(page.locator("#case-table tbody tr")).to_have_count(30)

    def page_fits() -> bool:
        return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    assert page_fits()
    wrap = page.locator("#case-table .table-wrap")
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth"), "the table should be wider"
    assert wrap.evaluate("w => getComputedStyle(w).overflowX") in ("auto", "scroll")
    wrap.evaluate("w => { w.scrollLeft = 120; }")
    assert wrap.evaluate("w => w.scrollLeft") > 0
    assert page.evaluate("window.scrollX") == 0

    status = page.get_by_label("Status")
    status.scroll_into_view_if_needed()
    expect(status).to_be_visible()
    with page.expect_response(lambda r: "status=draft" in r.url):
        status.select_option(label="Draft")
    expect(count).to_have_text("25 cases")
    expect(page.locator("#case-table tbody tr")).to_have_count(25)
    expect(page.locator("#case-table .badge.status-submitted")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]status=draft"))
    assert page_fits()

    with page.expect_response(lambda r: "status=submitted" in r.url):
        status.select_option(label="Submitted")
    expect(count).to_have_text("5 cases")
    page.get_by_label("Year").select_option("2026")
    expect(count).to_have_text("0 cases")
    expect(page.locator("#case-table")).to_contain_text("No case matches these filters.")
    assert page_fits()


@pytest.mark.browser
def test_a_second_editor_is_told_of_the_first_ones_change_and_overwrites_nothing(
    browser_world, new_page
):
    site = browser_world.site_a
    case_services.save_case(site, case_uid="TWO-EDITORS", data=MINIMAL, actor=browser_world.alice)
    alice_page, mona_page = new_page(), new_page()
    log_in(alice_page, ALICE)
    log_in(mona_page, MONA)
    for page in (alice_page, mona_page):
        page.goto("/sites/SITEA/cases/TWO-EDITORS/edit/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Edit case TWO-EDITORS")

    field(alice_page, "age_years").fill("40")
    alice_page.get_by_role("button", name="Save draft").click()
    expect(alice_page.get_by_role("status")).to_contain_text("Draft TWO-EDITORS saved (version 2).")

    field(mona_page, "sex").select_option("male")
    mona_page.get_by_role("button", name="Save draft").click()
    stale = mona_page.get_by_role("alert").filter(has_text="Someone else changed this case")
    expect(stale).to_be_visible()
    expect(stale).to_contain_text("now version 2")
    expect(stale).to_contain_text("Nothing was saved")
    expect(stale.locator("li")).to_have_count(1)
    expect(stale.locator("li")).to_contain_text("age_years")
    expect(stale.locator("li")).to_contain_text("40")
    # Mona's own change is still in her form, and Alice's is merged into it.
    expect(field(mona_page, "sex")).to_have_value("male")
    expect(field(mona_page, "age_years")).to_have_value("40")
    expect(mona_page).to_have_url(re.compile(r"/TWO-EDITORS/edit/$"))

    case = Case.objects.get(site=site, case_uid="TWO-EDITORS")
    assert case.version == 2
    assert case.data.get("age_years") == 40
    assert "sex" not in case.data
    assert case.updated_by == browser_world.alice
    assert CaseVersion.objects.filter(case=case).count() == 2


@pytest.mark.browser
def test_viewers_read_without_edit_buttons_and_other_sites_see_nothing(browser_world, new_page):
    site = browser_world.site_a
    case_services.save_case(site, case_uid="READ-ONLY", data=MINIMAL, actor=browser_world.alice)

    bob = new_page()
    log_in(bob, BOB)
    bob.goto("/sites/SITEA/cases/")
    expect(bob.get_by_role("heading", level=1)).to_have_text("Cases of SITEA")
    expect(bob.locator("#case-table tbody tr")).to_have_count(1)
    expect(bob.get_by_role("link", name="New case")).to_have_count(0)
    bob.get_by_role("link", name="READ-ONLY").click()
    expect(bob.get_by_role("heading", level=1)).to_contain_text("Case READ-ONLY")
    expect(bob.locator("ol.history > li")).to_have_count(1)
    expect(bob.get_by_role("link", name="Edit")).to_have_count(0)
    expect(bob.get_by_role("button", name="Withdraw")).to_have_count(0)
    assert bob.goto("/sites/SITEA/cases/new/").status == 403
    assert bob.goto("/sites/SITEA/cases/READ-ONLY/edit/").status == 403

    carol = new_page()
    log_in(carol, CAROL)
    expect(carol.get_by_role("heading", level=1)).to_have_text("Site B Clinic")
    for path in (
        "/sites/SITEA/cases/",
        "/sites/SITEA/cases/READ-ONLY/",
        "/sites/SITEA/cases/new/",
        "/sites/SITEA/cases/READ-ONLY/edit/",
    ):
        response = carol.goto(path)
        assert response.status == 404, path
        expect(carol.locator("body")).not_to_contain_text("READ-ONLY")


@pytest.mark.browser
def test_saving_again_after_a_conflict_keeps_both_changes(browser_world, new_page):
    site = browser_world.site_a
    case_services.save_case(site, case_uid="MERGE", data=MINIMAL, actor=browser_world.alice)
    alice_page, mona_page = new_page(), new_page()
    log_in(alice_page, ALICE)
    log_in(mona_page, MONA)
    for page in (alice_page, mona_page):
        page.goto("/sites/SITEA/cases/MERGE/edit/")
    field(alice_page, "age_years").fill("40")
    alice_page.get_by_role("button", name="Save draft").click()
    expect(alice_page.get_by_role("status")).to_contain_text("saved (version 2)")
    field(mona_page, "sex").select_option("male")
    mona_page.get_by_role("button", name="Save draft").click()
    expect(mona_page.get_by_role("alert").first).to_contain_text("Someone else changed")
    mona_page.get_by_role("button", name="Save draft").click()
    expect(mona_page.get_by_role("status")).to_contain_text("saved (version 3)")
    case = Case.objects.get(site=site, case_uid="MERGE")
    assert (case.version, case.data.get("age_years"), case.data.get("sex")) == (3, 40, "male")
