import pytest
from playwright.sync_api import expect

from registry3d.sites.services import set_membership
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD


def heading(page):
    return page.get_by_role("heading", level=1)


@pytest.mark.browser
def test_it_logs_in_switches_site_and_logs_out(browser_world, page, live_server):
    set_membership(browser_world.site_b, browser_world.alice, "contributor")

    log_in(page, "alice@a.example.org")

    expect(page).to_have_url(f"{live_server.url}/sites/SITEA/")
    expect(heading(page)).to_have_text("Site A Hospital")
    picker = page.get_by_role("combobox", name="Site", exact=True)
    expect(picker).to_have_value("SITEA")

    # Choosing a site submits the picker at once (registry3d.js).
    picker.select_option("SITEB")

    expect(page).to_have_url(f"{live_server.url}/sites/SITEB/")
    expect(heading(page)).to_have_text("Site B Clinic")
    expect(page.get_by_role("combobox", name="Site", exact=True)).to_have_value("SITEB")

    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(heading(page)).to_have_text("Log in")
    expect(page.get_by_role("status")).to_have_text("You have logged out.")

    page.goto("/sites/SITEA/")

    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/sites/SITEA/")
    expect(heading(page)).to_have_text("Log in")
    expect(page.get_by_text("Site A Hospital")).to_have_count(0)


@pytest.mark.browser
def test_it_switches_site_with_the_go_button_when_javascript_is_off(
    browser_world, new_page, live_server
):
    set_membership(browser_world.site_b, browser_world.alice, "contributor")
    page = new_page(java_script_enabled=False)
    log_in(page, "alice@a.example.org")
    expect(heading(page)).to_have_text("Site A Hospital")

    page.get_by_role("combobox", name="Site", exact=True).select_option("SITEB")
    expect(page).to_have_url(f"{live_server.url}/sites/SITEA/")  # nothing submits by itself
    page.get_by_role("button", name="Go").click()

    expect(page).to_have_url(f"{live_server.url}/sites/SITEB/")
    expect(heading(page)).to_have_text("Site B Clinic")


@pytest.mark.browser
def test_it_says_only_that_email_or_password_is_wrong(browser_world, page, live_server):
    log_in(page, "alice@a.example.org", PASSWORD + "-wrong")

    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("alert")).to_have_text("E-mail or password is not correct.")
    expect(page.get_by_label("E-mail")).to_have_value("alice@a.example.org")
    expect(page.get_by_label("Password")).to_have_value("")


@pytest.mark.browser
def test_it_says_the_same_for_an_unknown_email(browser_world, page):
    log_in(page, "nobody@a.example.org")

    expect(page.get_by_role("alert")).to_have_text("E-mail or password is not correct.")
    expect(heading(page)).to_have_text("Log in")
