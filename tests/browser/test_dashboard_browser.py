"""The site dashboard in a browser: a filter reloads the figures and plots in place."""

import pytest
from playwright.sync_api import expect

from registry3d.reports import snapshot
from tests.browser.conftest import log_in
from tests.reports.test_dashboard import add_cases

BOB = "bob@a.example.org"


@pytest.fixture
def dashboard_world(browser_world):
    """SITEA with 3 cases in 2025Q1 and 2 in 2025Q2, in a fresh snapshot."""
    path = snapshot.snapshot_path()
    for stale in (path, path.with_suffix(".json")):
        stale.unlink(missing_ok=True)
    add_cases(browser_world.site_a, 3, month="2025-02")
    add_cases(browser_world.site_a, 2, first=10, month="2025-05")
    snapshot.build(full=True)
    yield browser_world
    for left in (path, path.with_suffix(".json")):
        left.unlink(missing_ok=True)


def trend_of_cases(page):
    return page.locator('figure[data-metric="cases"] svg[data-plot="trend"]')


@pytest.mark.browser
def test_changing_the_period_redraws_the_plots_without_a_reload(dashboard_world, page):
    log_in(page, BOB)
    page.goto("/sites/SITEA/dashboard/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard of SITEA")
    expect(page.locator("[data-period]")).to_have_attribute("data-period", "2024Q3-2025Q2")
    plot = trend_of_cases(page)
    expect(plot).to_have_attribute("data-values", ",,3,2")
    before = plot.evaluate("svg => svg.outerHTML")
    page.evaluate("window.loadedOnce = true")

    with page.expect_response(lambda r: "/dashboard/" in r.url) as answer:
        page.get_by_label("From quarter").select_option("2025Q2")

    assert answer.value.request.headers.get("hx-request") == "true"
    expect(page.locator("[data-period]")).to_have_attribute("data-period", "2025Q2-2025Q2")
    expect(plot).to_have_attribute("data-values", "2")
    assert plot.evaluate("svg => svg.outerHTML") != before
    expect(page.locator('tr[data-metric="cases"] .dash-value')).to_have_text("2")
    expect(plot).to_have_attribute(
        "aria-label",
        "Cases by quarter. Your site: 2025Q2: 2 cases. Registry median: 2025Q2: suppressed.",
    )
    assert page.evaluate("window.loadedOnce === true"), "the page was reloaded"
    assert "start=2025Q2" in page.url, "the address does not keep the filter"
    # The address opens the same figures.
    page.reload()
    expect(trend_of_cases(page)).to_have_attribute("data-values", "2")


@pytest.mark.browser
def test_the_filters_work_without_javascript(dashboard_world, new_page):
    page = new_page(java_script_enabled=False)
    log_in(page, BOB)
    page.goto("/sites/SITEA/dashboard/")
    expect(trend_of_cases(page)).to_have_attribute("data-values", ",,3,2")

    page.get_by_label("To quarter").select_option("2025Q1")
    page.get_by_role("button", name="Show").click()

    expect(page.locator("[data-period]")).to_have_attribute("data-period", "2024Q3-2025Q1")
    expect(trend_of_cases(page)).to_have_attribute("data-values", ",,3")
    expect(page.locator('tr[data-metric="cases"] .dash-value')).to_have_text("3")
