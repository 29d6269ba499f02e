#!/usr/bin/env python3
"""Take the documentation's screenshots from a running registry.

Logs in as a site manager with Playwright and Debian's Chromium
(/usr/bin/chromium; no browser is downloaded) at 1280x800 and saves

    docs/screenshots/login.png       the log-in page
    docs/screenshots/site-home.png   the manager's site home
    docs/screenshots/members.png     the site's members page
    docs/screenshots/dashboard.png   the site's dashboard against the registry

Example, on a demo registry:

    REGISTRY3D_VAR_DIR=/tmp/demo/var registry3d init --demo --demo-password demo-pass-2026
    REGISTRY3D_VAR_DIR=/tmp/demo/var registry3d serve --port 8000 &
    .venv/bin/python scripts/screenshots.py --password demo-pass-2026
"""

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

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
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default="http://127.0.0.1:8000", help="the running registry (%(default)s)"
    )
    parser.add_argument(
        "--email", default="manager@demo01.example.org", help="a site manager (%(default)s)"
    )
    parser.add_argument("--password", required=True, help="that person's password")
    parser.add_argument(
        "--out-dir", type=Path, default=DEFAULT_OUT, help="where the PNGs go (%(default)s)"
    )
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


def take_screenshots(base_url: str, email: str, password: str, out_dir: Path) -> list[Path]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    base_url = base_url.rstrip("/")
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []

    def shot(page, name):
        path = out_dir / name
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            try:
                page.goto("/accounts/login/")
            except PlaywrightError as exc:
                fail(f"cannot open {base_url}/accounts/login/: {exc.message.splitlines()[0]}")
            page.get_by_role("heading", name="Log in").wait_for()
            shot(page, "login.png")

            page.get_by_label("E-mail").fill(email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state()
            path = urlsplit(page.url).path
            if path.startswith("/accounts/login"):
                alert = page.get_by_role("alert")
                why = alert.inner_text() if alert.count() else "still on the log-in page"
                fail(f"could not log in as {email}: {why}")
            if path.startswith("/accounts/login/code"):
                fail(f"{email} has two-factor log-in on; use a demo person without it")
            if not path.startswith("/sites/"):
                fail(f"{email} did not land on a site home but on {path}")
            site_home = path
            shot(page, "site-home.png")

            page.goto(site_home + "members/")
            if not page.get_by_role("heading", name="Members of").count():
                fail(f"{email} cannot open {site_home}members/; log in as a site manager")
            shot(page, "members.png")

            page.goto(site_home + "dashboard/")
            page.get_by_role("heading", name="Dashboard of").wait_for()
            shot(page, "dashboard.png")
        finally:
            browser.close()
    return saved


def main(argv=None) -> int:
    args = parse_args(argv)
    if not CHROMIUM.is_file():
        fail(f"Debian's Chromium is missing at {CHROMIUM}; install it: apt-get install chromium")
    for path in take_screenshots(args.base_url, args.email, args.password, args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
