"""Content-Security-Policy (django-csp): enforced on every page. Staff pages (the workspace,
its login, approval screens, the API and its docs) share the site's policy; the pages
customers open without a login replace it with their own, stricter one."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from billing.services.customers import customer_create
from core.roles import Role

pytestmark = pytest.mark.django_db

CSP = "Content-Security-Policy"
REPORT_ONLY = "Content-Security-Policy-Report-Only"

# The staff pages' policy, directive by directive (django-csp writes them in no fixed order).
STAFF_POLICY = {
    "default-src": ["'none'"],
    # 'unsafe-eval': Alpine.js (django-unfold) evaluates its attribute expressions.
    "script-src": ["'self'", "'unsafe-eval'"],
    # 'unsafe-inline': style attributes and <style> blocks of unfold's templates and ours.
    "style-src": ["'self'", "'unsafe-inline'"],
    # data:: the icons of Swagger UI (the API docs).
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "object-src": ["'none'"],
}


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} given twice in {header}"
        parsed[name] = sources
    return parsed


def assert_staff_policy(response) -> None:
    assert directives(response[CSP]) == STAFF_POLICY
    assert REPORT_ONLY not in response  # enforced, not only reported


def customer_policy(origins: list[str]) -> str:
    targets = " ".join(["'self'", *origins])
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


def test_the_admin_login_page_has_the_staff_policy(client: Client) -> None:
    # when someone opens the login page (password and second factor)
    response = client.get("/admin/login/")
    # then
    assert response.status_code == 200
    assert_staff_policy(response)


def test_workspace_pages_have_the_staff_policy(client_for, finance_admin) -> None:
    # given a finance administrator's verified session and a customer
    staff = client_for(Role.FINANCE_ADMIN)
    customer = customer_create(
        actor=finance_admin, name="Policy Ltd", email="ap@policy.example", currency="USD"
    )
    # when the dashboard, a change list, a change form and a report are opened
    pages = [
        "/admin/",
        "/admin/billing/invoice/",
        f"/admin/billing/customer/{customer.pk}/change/",
        "/admin/reporting/ar-aging/",
    ]
    for url in pages:
        response = staff.get(url)
        # then each answers with the staff policy
        assert response.status_code == 200, url
        assert_staff_policy(response)


def test_the_approval_screens_have_the_staff_policy(client_for) -> None:
    response = client_for(Role.APPROVER).get("/approvals/")
    assert response.status_code == 200
    assert_staff_policy(response)


def test_api_answers_have_the_staff_policy(integration_client) -> None:
    # a JSON answer opened in a browser runs nothing either
    response = integration_client.get("/api/billing/invoices")
    assert response.status_code == 200
    assert_staff_policy(response)


def test_the_api_docs_run_no_inline_script(client: Client) -> None:
    # when the Swagger page is opened
    response = client.get("/api/docs/")
    # then it has the staff policy and every script of it is a file
    assert response.status_code == 200
    assert_staff_policy(response)
    html = response.content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    # and its start-up script is served from the page's own address
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_the_hosted_invoice_page_keeps_its_own_policy(client: Client, settings) -> None:
    # given the processors' checkout pages
    settings.HOSTED_CHECKOUT_ORIGINS = ["https://checkout.example", "https://wallet.example"]
    # when a customer opens a link that is not valid
    response = client.get("/pay/forged-token/")
    # then the page has the customer pages' policy, exactly, and nothing of the staff one
    assert response.status_code == 404
    assert response[CSP] == customer_policy(settings.HOSTED_CHECKOUT_ORIGINS)
    assert REPORT_ONLY not in response
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_the_portal_keeps_the_customer_pages_policy(client: Client, settings) -> None:
    # when a customer opens the portal's start page
    response = client.get("/portal/")
    # then
    assert response.status_code == 200
    assert response[CSP] == customer_policy(settings.HOSTED_CHECKOUT_ORIGINS)
    assert REPORT_ONLY not in response
    assert response["X-Robots-Tag"] == "noindex, nofollow"
