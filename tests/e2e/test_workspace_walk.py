"""A walk through the whole workspace as a finance administrator, at 1280 px, on the demo
data: every change list, the change page of its first row and its add page.

A page fails when it answers a server error, when it scrolls sideways (the page itself or a
table inside it: a clerk must read a list without horizontal scrolling), or when it shows a
raw code (``amount_date_counterparty``) where words belong. Screenshots of every page are
kept in $E2E_SCREENSHOTS (or the test's temporary folder) to look at by hand.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import RequestFactory
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from core.admin_site import WORKSPACE_APPS
from core.roles import Role
from tests.conftest import verified_client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDTH = 1280

# Elements that scroll sideways inside the page, and the page itself.
OVERFLOW_JS = """
() => {
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) found.push(`page ${root.scrollWidth}px`);
  for (const el of document.querySelectorAll('#main *')) {
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowX)) continue;
    if (el.offsetParent === null) continue;  // hidden (closed filters, menus)
    if (el.scrollWidth > el.clientWidth + 2) {
      const name = el.id ? '#' + el.id : el.tagName.toLowerCase() + '.' +
        [...el.classList].slice(0, 3).join('.');
      found.push(`${name} ${el.scrollWidth}px in ${el.clientWidth}px`);
    }
  }
  return found;
}
"""

# Visible text only: icons (Material Symbols are written as words: "chevron_right"),
# scripts and hidden elements left out; form inputs' values are not text nodes.
TEXT_JS = """
() => {
  const main = document.querySelector('#main') || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('.material-symbols-outlined, script, style, template')) continue;
    if (!parent.checkVisibility({visibilityProperty: true})) continue;  // hidden, closed <details>
    parts.push(node.textContent);
  }
  return parts.join(' ');
}
"""

SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def raw_codes(text: str) -> set[str]:
    """snake_case words in visible text: codes shown instead of their labels. Dotted names
    (task paths), addresses and URLs are values, not codes."""
    codes = set()
    for word in text.split():
        token = word.strip(".,;:()[]\"'“”")
        if any(mark in word for mark in ("@", "/", ".")) and not word.endswith((".", ",")):
            continue
        if SNAKE.match(token):
            codes.add(token)
    return codes


def _pages(user: User) -> list[tuple[str, str]]:
    """(what, URL) for every finance change list this user may see."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = []
    for app in admin.site.get_app_list(request):
        if app["app_label"] not in WORKSPACE_APPS:
            continue
        for model in app["models"]:
            if model.get("admin_url"):
                pages.append((f"{app['app_label']}.{model['object_name']}", model["admin_url"]))
                if model.get("add_url"):
                    pages.append(
                        (f"{app['app_label']}.{model['object_name']} add", model["add_url"])
                    )
    return pages


def _shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS", "") or "/tmp/workspace_walk")  # noqa: S108
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_every_list_and_page_fits_and_speaks_plainly_at_1280(
    browser_page: Page, live_server: LiveServer, make_user: Callable[..., User]
) -> None:
    # given the demo data and a finance administrator's verified session in the browser
    call_command("seed_demo", "--scale", "0", stdout=io.StringIO())
    user = make_user(Role.FINANCE_ADMIN)
    session = verified_client(user).cookies["sessionid"].value
    page = browser_page
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    page.set_viewport_size({"width": WIDTH, "height": 900})
    shots = _shots()

    # when every list, the first row's page and the add page are opened
    problems: list[str] = []
    visited = 0

    def visit(what: str, url: str) -> None:
        nonlocal visited
        response = page.goto(url)
        visited += 1
        status = response.status if response else 0
        name = re.sub(r"[^a-z0-9]+", "_", what.lower())
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        if status >= 500:
            problems.append(f"{what}: server error {status} at {url}")
            return
        for overflow in page.evaluate(OVERFLOW_JS):
            problems.append(f"{what}: scrolls sideways ({overflow}) at {url}")
        codes = raw_codes(page.evaluate(TEXT_JS))
        if codes:
            problems.append(f"{what}: raw codes {sorted(codes)} at {url}")

    for what, url in _pages(user):
        visit(what, url)
        if what.endswith(" add"):
            continue
        first = page.locator("#result_list tbody tr a[href*='/change/']").first
        if first.count():
            href = first.get_attribute("href")
            if href:
                visit(f"{what} page", href)

    # then
    assert visited > 60
    assert problems == [], "\n".join(problems)
