"""Browser tests: Playwright's sync API driving Debian's Chromium against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Page, sync_playwright
from pytest_django.live_server_helper import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(
    live_server: LiveServer, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Page]:
    """A fresh Chromium page pointed at the live server.

    Playwright is started per test, after the database is set up, and stopped before it is
    flushed: while its event loop runs, Django hands the test thread other connections
    (asgiref treats the thread as async), so the loop must not outlive the test.
    """
    # Django's ORM refuses to run while an event loop runs in the thread, though nothing here
    # is async. Set only during the test: a subprocess started by another test (e.g.
    # `check --deploy`) must not inherit it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's Chromium is required at {CHROMIUM} for the e2e tests: "
            "run `apt-get install -y chromium` (not `playwright install`)."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(base_url=live_server.url).new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            # Close the connections opened while the loop ran, or they outlive the test.
            connections.close_all()
            browser.close()
