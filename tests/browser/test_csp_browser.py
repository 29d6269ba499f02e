"""The browser enforces the Content Security Policy: an injected inline script does not run.

Every other browser test fails on any refusal the policy logs (see
``new_page`` in conftest), so the pages themselves need no inline script.
"""

import pytest

from tests.browser.conftest import log_in


@pytest.mark.browser
def test_an_injected_inline_script_is_refused_and_reported(browser_world, browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    refused = []
    context.on("console", lambda message: refused.append(message.text))
    page = context.new_page()
    try:
        log_in(page, "mona@a.example.org")
        page.goto("/sites/SITEA/cases/")
        # What an attacker's stored HTML would try: an inline script and a handler.
        page.evaluate(
            """() => {
                const s = document.createElement('script');
                s.textContent = 'window.injected = true';
                document.body.appendChild(s);
                const img = document.createElement('img');
                img.setAttribute('src', 'data:,');
                img.setAttribute('onerror', 'window.handler = true');
                document.body.appendChild(img);
            }"""
        )
        page.wait_for_timeout(300)
        assert page.evaluate("window.injected") is None
        assert page.evaluate("window.handler") is None
        assert any("Content Security Policy" in text for text in refused), refused
        # htmx and the registry's own script still work: the site picker is there.
        assert page.evaluate("typeof htmx") == "object"
    finally:
        context.close()
