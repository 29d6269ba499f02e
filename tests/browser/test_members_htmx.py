import pytest
from playwright.sync_api import expect

from registry3d.sites.models import Membership
from tests.browser.conftest import log_in

BOB = "bob@a.example.org"
MONA = "mona@a.example.org"


def role_of(world, user) -> str:
    return Membership.objects.get(site=world.site_a, user=user).role


def open_members_as_mona(page):
    log_in(page, MONA)
    expect(page.get_by_role("heading", level=1)).to_have_text("Site A Hospital")
    page.goto("/sites/SITEA/members/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Members of SITEA")


def mark_page_and_row(page, email):
    """Remember this page load and the row's node, to tell a swap from a reload."""
    page.evaluate(
        """email => {
            window.loadedOnce = true;
            window.oldRow = document.querySelector(`tr[data-email="${email}"]`);
        }""",
        email,
    )


@pytest.mark.browser
def test_it_changes_a_members_role_in_place(browser_world, page):
    open_members_as_mona(page)
    row = page.locator(f'tr[data-email="{BOB}"]')
    role = row.get_by_label(f"Role of {BOB}")
    expect(role).to_have_value("viewer")
    mark_page_and_row(page, BOB)

    with page.expect_response(
        lambda r: "/members/" in r.url and r.url.endswith("/role/")
    ) as answer:
        role.select_option("contributor")

    assert answer.value.status == 200
    assert answer.value.request.headers.get("hx-request") == "true"
    expect(row.get_by_label(f"Role of {BOB}")).to_have_value("contributor")
    assert page.evaluate("window.loadedOnce === true"), "the page was reloaded"
    assert page.evaluate("window.oldRow.isConnected === false"), "the row was not swapped"
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(row.get_by_role("alert")).to_have_count(0)
    assert role_of(browser_world, browser_world.bob) == "contributor"


@pytest.mark.browser
def test_it_shows_in_the_row_why_the_last_manager_cannot_step_down(browser_world, page):
    open_members_as_mona(page)
    row = page.locator(f'tr[data-email="{MONA}"]')

    with page.expect_response(
        lambda r: "/members/" in r.url and r.url.endswith("/role/")
    ) as answer:
        row.get_by_label(f"Role of {MONA}").select_option("viewer")

    assert answer.value.status == 400
    assert role_of(browser_world, browser_world.mona) == "manager"
    expect(row.get_by_role("alert")).to_have_text(
        f"{MONA} is the only manager of SITEA; make someone else manager first"
    )
    expect(row.get_by_label(f"Role of {MONA}")).to_have_value("manager")


@pytest.mark.browser
def test_it_fits_the_members_page_on_a_phone_without_sideways_scrolling(browser_world, new_page):
    page = new_page(viewport={"width": 390, "height": 844})
    open_members_as_mona(page)

    widths = page.evaluate(
        "({page: document.documentElement.scrollWidth, window: window.innerWidth})"
    )

    assert widths["page"] <= widths["window"], widths
