"""The hosted invoice page (issue 14 section 2): every issued invoice has a link from the
moment it is issued, given in the API and in the invoice, reminder and autopay emails; the
page shows the figures, the PDF, the payments so far and how to pay, with no script; forged,
expired and revoked links are refused without showing anything of the invoice."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.signing import Signer
from django.test import Client
from django.utils import timezone

from billing.documents import invoice_email_send
from billing.models import InvoiceLink
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.links import invoice_link_open, invoice_url
from billing.services.payments import AllocationInput, payment_record
from core.roles import Role

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def customer(finance_admin):
    return customer_create(
        actor=finance_admin, name="Hosted Ltd", email="ap@hosted.example", currency="USD"
    )


def issue(actor, customer, amount: str = "250.00", **kwargs):
    return invoice_create(
        actor=actor,
        customer_id=customer.pk,
        lines=[
            LineInput(description="Consulting", quantity=D(2), unit_price=D(amount), tax_rate=D(0))
        ],
        **{"issue": True, **kwargs},
    )


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_an_issued_invoice_has_a_page_the_api_gives(
    finance_admin, customer, client_for, settings
) -> None:
    # given an invoice just issued
    invoice = issue(finance_admin, customer)
    # when an integration reads it
    api = client_for(Role.AR_CLERK)
    body = api.get(f"/api/billing/invoices/{invoice.pk}").json()
    url = body["hosted_invoice_url"]
    # then the address is the public host's, and its page shows the invoice
    assert url.startswith(f"{settings.PUBLIC_BASE_URL}/pay/")
    page = Client().get(path_of(url))
    assert page.status_code == 200
    html = page.content.decode()
    assert invoice.number in html
    assert "500.00" in html  # the amount due, 2 x 250.00
    assert f"quote <strong>{invoice.number}</strong>" in html
    # and it runs nothing and loads nothing from elsewhere
    assert "<script" not in html
    assert "default-src 'none'" in page["Content-Security-Policy"]
    assert page["Cache-Control"].startswith("max-age=0")
    assert InvoiceLink.objects.get().view_count == 1
    # and the list gives the same address
    listed = api.get("/api/billing/invoices").json()["results"][0]
    assert listed["hosted_invoice_url"] == url


def test_the_pdf_is_served_through_the_link(finance_admin, customer) -> None:
    invoice = issue(finance_admin, customer)
    response = Client().get(path_of(invoice_url(invoice_id=invoice.pk)) + "pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_payments_so_far_and_the_amount_left_are_shown(finance_admin, customer) -> None:
    invoice = issue(finance_admin, customer)
    payment_record(
        actor=finance_admin,
        customer_id=customer.pk,
        amount=D("125.00"),
        currency="USD",
        method="wire_transfer",
        allocations=[AllocationInput(invoice_id=invoice.pk, amount=D("125.00"))],
    )
    html = Client().get(path_of(invoice_url(invoice_id=invoice.pk))).content.decode()
    assert "125.00" in html
    assert "375.00" in html
    assert "None yet." not in html


@pytest.mark.parametrize("how", ["altered", "signed_unknown", "truncated", "expired", "revoked"])
def test_a_bad_link_is_refused_and_shows_nothing_of_the_invoice(
    finance_admin, customer, client_for, how
) -> None:
    invoice = issue(finance_admin, customer)
    url = path_of(invoice_url(invoice_id=invoice.pk))
    token = url.split("/")[2]
    if how == "altered":
        url = url.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    elif how == "signed_unknown":
        url = url.replace(token, Signer(salt="billing.invoice-link").sign("not-a-nonce"))
    elif how == "truncated":
        url = url.replace(token, token.split(":")[0])
    elif how == "expired":
        InvoiceLink.objects.update(
            created_at=timezone.now() - timedelta(days=200),
            expires_at=timezone.now() - timedelta(seconds=1),
        )
    else:
        response = client_for(Role.AR_CLERK).post(
            f"/api/billing/invoices/{invoice.pk}/hosted-link/revoke"
        )
        assert response.json() == {"revoked": 1}
    for suffix in ("", "pdf"):
        response = Client().get(url + suffix)
        assert response.status_code == 404
        html = response.content.decode()
        assert invoice.number not in html
        assert "500.00" not in html
        assert "not available" in html


def test_revoking_needs_the_permission_and_a_new_link_replaces_the_old(
    finance_admin, customer, client_for
) -> None:
    invoice = issue(finance_admin, customer)
    old = invoice_url(invoice_id=invoice.pk)
    auditor = client_for(Role.AUDITOR)
    assert auditor.post(f"/api/billing/invoices/{invoice.pk}/hosted-link/revoke").status_code == 403
    clerk = client_for(Role.AR_CLERK)
    assert clerk.post(f"/api/billing/invoices/{invoice.pk}/hosted-link/revoke").status_code == 200
    # the revocation is in the link's history, with who did it
    link = InvoiceLink.objects.get()
    assert link.revoked_by is not None
    assert link.history.first().revoked_at is not None
    response = clerk.post(f"/api/billing/invoices/{invoice.pk}/hosted-link")
    new = response.json()["url"]
    assert new != old
    assert Client().get(path_of(new)).status_code == 200
    assert Client().get(path_of(old)).status_code == 404
    assert clerk.get(f"/api/billing/invoices/{invoice.pk}").json()["hosted_invoice_url"] == new


def test_a_draft_has_no_page(finance_admin, customer, client_for) -> None:
    draft = issue(finance_admin, customer, issue=False)
    response = client_for(Role.AR_CLERK).post(f"/api/billing/invoices/{draft.pk}/hosted-link")
    assert response.status_code == 400
    assert "draft" in response.json()["message"].lower()
    assert (
        client_for(Role.AR_CLERK)
        .get(f"/api/billing/invoices/{draft.pk}")
        .json()["hosted_invoice_url"]
        is None
    )


def test_the_invoice_email_carries_the_working_link(finance_admin, customer) -> None:
    invoice = issue(finance_admin, customer)
    assert invoice_email_send(invoice_id=invoice.pk)
    (email,) = mail.outbox
    (url,) = re.findall(r"https?://\S+/pay/\S+", email.body)
    assert url == invoice_url(invoice_id=invoice.pk)
    assert invoice_link_open(token=path_of(url).split("/")[2]).invoice_id == invoice.pk


def test_links_keep_working_across_a_secret_key_rotation(
    finance_admin, customer, client_for, settings
) -> None:
    # given a link given out under the old key
    invoice = issue(finance_admin, customer)
    old_url = invoice_url(invoice_id=invoice.pk)
    # when the key is rotated, the old one kept as a fallback
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "rotated-" + settings.SECRET_KEY
    # then the old address still opens, and the address given now (signed with the new
    # key, same link) opens too
    new_url = (
        client_for(Role.AR_CLERK)
        .get(f"/api/billing/invoices/{invoice.pk}")
        .json()["hosted_invoice_url"]
    )
    assert new_url != old_url
    for url in (old_url, new_url):
        assert Client().get(path_of(url)).status_code == 200
    # and once the old key is dropped, only the new address opens
    settings.SECRET_KEY_FALLBACKS = []
    assert Client().get(path_of(old_url)).status_code == 404
    assert Client().get(path_of(new_url)).status_code == 200
