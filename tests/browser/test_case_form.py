import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

ALICE = "alice@a.example.org"


def open_form(page):
    log_in(page, ALICE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Site A Hospital")
    page.goto("/dictionary/form/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Case form dictionary 1.1.0")


def items_of(page, group):
    return page.locator(f'.group[data-group="{group}"] .group-items > .group-item')


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


@pytest.mark.browser
def test_added_anatomic_parts_are_numbered_and_named_in_order(browser_world, page):
    open_form(page)
    parts = items_of(page, "anatomic_parts")
    expect(parts).to_have_count(0)
    add = page.get_by_role("button", name="Add anatomic parts")

    add.click()
    add.click()

    expect(parts).to_have_count(2)
    for number in (1, 2):
        item = parts.nth(number - 1)
        expect(item.locator("[data-item-number]")).to_have_text(str(number))
        expect(item).to_have_attribute("data-number", str(number))
        region = item.locator(f'select[name="anatomic_parts_{number}_region"]')
        expect(region).to_have_count(1)
        expect(region).to_have_attribute("id", f"i-anatomic_parts_{number}_region")
        label = item.locator(f'label[for="i-anatomic_parts_{number}_region"]')
        expect(label).to_have_text("Region required")
    # The template stays as it was, for the next item.
    template_names = page.evaluate(
        """() => [...document.querySelector('.group[data-group="anatomic_parts"] template')
                   .content.querySelectorAll('[name]')].map(e => e.name)"""
    )
    assert "anatomic_parts___N___region" in template_names


@pytest.mark.browser
def test_removing_the_first_part_renumbers_the_others(browser_world, page):
    open_form(page)
    parts = items_of(page, "anatomic_parts")
    add = page.get_by_role("button", name="Add anatomic parts")
    add.click()
    add.click()
    add.click()
    page.locator('select[name="anatomic_parts_2_region"]').select_option("heart")
    page.locator('select[name="anatomic_parts_3_region"]').select_option("pelvis")

    parts.nth(0).get_by_role("button", name="Remove").click()

    expect(parts).to_have_count(2)
    expect(parts.locator("[data-item-number]")).to_have_text(["1", "2"])
    expect(page.locator('select[name="anatomic_parts_1_region"]')).to_have_value("heart")
    expect(page.locator('select[name="anatomic_parts_2_region"]')).to_have_value("pelvis")
    expect(page.locator('select[name="anatomic_parts_3_region"]')).to_have_count(0)
    expect(page.locator('[id="f-anatomic_parts_1_region"]')).to_have_count(1)


@pytest.mark.browser
def test_renumbered_parts_are_read_back_by_the_server(browser_world, page):
    open_form(page)
    add = page.get_by_role("button", name="Add anatomic parts")
    add.click()
    add.click()
    page.locator('select[name="anatomic_parts_2_region"]').select_option("heart")
    items_of(page, "anatomic_parts").nth(0).get_by_role("button", name="Remove").click()

    page.get_by_role("button", name="Check as submitted").click()

    # The one part left was posted as part 1: its missing structure is reported there.
    expect(page.locator(".problems")).to_contain_text(
        "anatomic_parts[1].structure: Structure is required"
    )
    parts = items_of(page, "anatomic_parts")
    expect(parts).to_have_count(1)
    expect(page.locator('select[name="anatomic_parts_1_region"]')).to_have_value("heart")
    expect(page.locator('[id="f-anatomic_parts_1_structure"]').get_by_role("alert")).to_have_text(
        "Structure is required"
    )


@pytest.mark.browser
def test_prints_stop_at_their_maximum_of_five(browser_world, page):
    open_form(page)
    prints = items_of(page, "prints")
    expect(prints).to_have_count(1)  # prints are required: one is shown at once
    add = page.get_by_role("button", name="Add prints")
    for _ in range(6):
        if add.is_enabled():
            add.click()
    expect(prints).to_have_count(5)
    expect(prints.locator("[data-item-number]")).to_have_text(["1", "2", "3", "4", "5"])
    expect(page.locator('select[name="prints_5_material"]')).to_have_count(1)
    expect(add).to_be_disabled()
    prints.nth(4).get_by_role("button", name="Remove").click()
    expect(add).to_be_enabled()


@pytest.mark.browser
def test_a_guide_without_a_guide_type_shows_the_error_at_the_guide_type(browser_world, page):
    open_form(page)
    page.locator("#i-object_type").select_option(label="Anatomic guide")

    page.get_by_role("button", name="Check as submitted").click()

    field = page.locator('[id="f-guide_type"]')
    expect(field).to_have_class("field has-error")
    expect(field.get_by_role("alert")).to_have_text(
        "Type of anatomic guide is required when Type of 3D printed object is Anatomic guide"
    )
    expect(page.locator("#i-object_type")).to_have_value("anatomic_guide")
    summary = page.locator(".problems")
    expect(summary.get_by_role("link", name="guide_type")).to_have_attribute(
        "href", "#f-guide_type"
    )


@pytest.mark.browser
def test_the_form_page_has_no_horizontal_scroll_on_a_phone(browser_world, new_page):
    page = new_page(viewport={"width": 390, "height": 844})
    open_form(page)
    assert no_horizontal_scroll(page)
    page.get_by_role("button", name="Add anatomic parts").click()
    page.get_by_role("button", name="Add prints").click()
    expect(items_of(page, "prints")).to_have_count(2)
    assert no_horizontal_scroll(page)


@pytest.mark.browser
def test_the_checked_form_page_has_no_horizontal_scroll_on_a_phone(browser_world, new_page):
    page = new_page(viewport={"width": 390, "height": 844})
    open_form(page)
    page.get_by_role("button", name="Check as submitted").click()
    expect(page.locator(".problems")).to_be_visible()
    assert no_horizontal_scroll(page)


@pytest.mark.browser
def test_the_dictionary_page_has_no_horizontal_scroll_on_a_phone(browser_world, new_page):
    page = new_page(viewport={"width": 390, "height": 844})
    page.goto("/dictionary/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Data dictionary version 1.1.0")
    assert no_horizontal_scroll(page)
