"""Browser tests: Debian's Chromium driven through Playwright's sync API.

Playwright's sync API runs an asyncio event loop in the test's thread, and
Django refuses ORM calls while a loop runs there unless told it is safe; it
is safe here because the test waits for the browser, never the other way.

Pages are served by pytest-django's ``live_server`` (a thread of this
process on a test database that every thread sees), so tests need
``transactional_db`` instead of ``db``: data must be committed for the
server thread to read it.
"""

import os
import sys
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from tests.conftest import PASSWORD, World, make_world  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run, or a skip that says why."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = (
            f"browser tests need Debian's Chromium at {CHROMIUM}; "
            "install it with: apt-get install chromium"
        )
        print(f"\nSKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, live_server):
    """Open a page in a fresh browser context (own cookies) on the live server.

    ``new_page(viewport={"width": 390, "height": 844})`` passes its keyword
    arguments on to ``browser.new_context``. Contexts close after the test.
    Every browser test also checks the Content Security Policy: anything the
    browser refused under it (an inline script or style, another origin)
    fails the test.
    """
    contexts = []
    refused = []

    def note(message):
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    def open_page(**context_args):
        context = browser.new_context(base_url=live_server.url, **context_args)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        context.on("console", note)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
    assert refused == [], "the Content Security Policy refused: " + "; ".join(refused)


@pytest.fixture
def page(new_page):
    """A page in a new browser context, 1280x720, 10-second timeouts."""
    return new_page()


@pytest.fixture
def browser_world(transactional_db, live_server) -> World:
    """The world of tests/conftest.py, committed so the live server sees it."""
    return make_world()


def log_in(page, email: str, password: str = PASSWORD) -> None:
    """Log in through the real form, as a person would."""
    page.goto("/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
