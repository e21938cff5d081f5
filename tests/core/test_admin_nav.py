"""The workspace sidebar (core.admin_nav): one entry highlighted for the page shown, saved
filters before their plain list, and the report screens each role may open."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from core.admin_nav import navigation
from core.roles import Role

pytestmark = pytest.mark.django_db


def _sidebar(user: User, url: str) -> dict[str, list[tuple[str, bool]]]:
    request = RequestFactory().get(url)
    request.user = user
    return {
        group.get("title", ""): [(item["title"], item["active"]) for item in group["items"]]
        for group in navigation(request)
    }


def _active(sidebar: dict[str, list[tuple[str, bool]]]) -> list[str]:
    return [title for items in sidebar.values() for title, active in items if active]


def test_a_saved_filter_is_highlighted_instead_of_its_list(make_user: Callable[..., User]):
    clerk = make_user(Role.AR_CLERK)
    # the overdue view of the invoice list: the queue, not "Invoices" too
    assert _active(_sidebar(clerk, "/admin/billing/invoice/?overdue=yes")) == ["Overdue invoices"]
    # the plain list, or an invoice of it: "Invoices"
    assert _active(_sidebar(clerk, "/admin/billing/invoice/")) == ["Invoices"]
    assert _active(_sidebar(clerk, "/admin/billing/invoice/12/change/")) == ["Invoices"]
    # the start page: only the dashboard
    assert _active(_sidebar(clerk, "/admin/")) == ["Dashboard"]


def test_report_screens_follow_the_role(make_user: Callable[..., User]):
    controller = _sidebar(make_user(Role.CONTROLLER), "/admin/")
    assert [title for title, _ in controller["Reports"]][:4] == [
        "Trial balance",
        "Profit and loss",
        "Balance sheet",
        "Cash-flow statement",
    ]
    ap_clerk = _sidebar(make_user(Role.AP_CLERK), "/admin/")
    assert [title for title, _ in ap_clerk["Reports"]] == ["AP aging"]
    # an approver decides on bills: no financial statement, no compliance report
    approver = _sidebar(make_user(Role.APPROVER), "/admin/")
    assert "Trial balance" not in [title for title, _ in approver.get("Reports", [])]
    assert "Compliance reports" not in [title for title, _ in approver.get("Reports", [])]
