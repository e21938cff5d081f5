"""Billing admin: lists for each role, writes through the services, the invoice transition
buttons (issue, void, write-off), the PDF and the resend, read-only issued invoices and
payments."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.urls import reverse
from djmoney.money import Money

from billing.documents import invoice_email_send, invoice_pdf_store
from billing.enums import InvoiceStatus, PaymentMethodType
from billing.models import Customer, Invoice, Payment, TaxRate
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import payment_record
from core.ledger.models import JournalEntry
from core.roles import Role
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db

CUSTOMER_FORM = {
    "name": "Globex GmbH",
    "email": "ap@globex.example",
    "cc_emails": "",
    "currency": "EUR",
    "payment_terms": "",
    "address_line1": "",
    "address_line2": "",
    "postal_code": "",
    "city": "Berlin",
    "region": "",
    "country": "DE",
    "tax_jurisdiction": "",
    "tax_id": "",
    "acquisition_channel": "",
    "campaign": "",
}


# The customer page's tabs: open items, all invoices, payments (read-only inlines).
CUSTOMER_INLINES = {
    f"{prefix}-{key}": "0"
    for prefix in ("invoices", "invoices-2", "payments")
    for key in ("TOTAL_FORMS", "INITIAL_FORMS")
}


def change_url(invoice: Invoice) -> str:
    return reverse("admin:billing_invoice_change", args=[invoice.pk])


def tool_url(invoice: Invoice, name: str) -> str:
    return reverse(f"admin:billing_invoice_{name}", args=[invoice.pk])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def lines_formset(*lines: tuple[str, str, str, str], initial: list[int] | None = None) -> dict:
    """POST data of the line inline: (description, quantity, unit price, tax rate) per row."""
    initial = initial or []
    data = {
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": str(len(initial)),
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for n, (description, quantity, price, rate) in enumerate(lines):
        data |= {
            f"lines-{n}-description": description,
            f"lines-{n}-quantity": quantity,
            f"lines-{n}-price": price,
            f"lines-{n}-tax_rate": rate,
            f"lines-{n}-period_start": "",
            f"lines-{n}-period_end": "",
        }
        if n < len(initial):
            data[f"lines-{n}-id"] = str(initial[n])
    return data


@pytest.fixture
def admin_client_for(make_user: Callable[..., User]) -> Callable[[str], Any]:
    def make(role: str) -> Any:
        return verified_client(make_user(role))

    return make


@pytest.fixture
def draft(make_invoice: Callable[..., Invoice]) -> Invoice:
    return make_invoice("100.00", "20.50", issue=False)


@pytest.fixture
def issued(make_invoice: Callable[..., Invoice]) -> Invoice:
    return make_invoice("250.00")


# --- Lists --------------------------------------------------------------------------------


def _cells(html: str, field: str) -> list[str]:
    """The text of a change list's cells for one column."""
    return [
        re.sub(r"<[^>]+>|\s+", "", cell)
        for cell in re.findall(rf'<td class="field-{field}\b[^"]*"[^>]*>(.*?)</td>', html, re.S)
    ]


@pytest.mark.parametrize("role", [Role.FINANCE_ADMIN, Role.AR_CLERK])
def test_billing_changelists_render_with_data(
    role: str, admin_client_for, issued: Invoice, clerk: User, customer: Customer
) -> None:
    # given an issued invoice, a payment applied to it and a tax rate
    TaxRate.objects.create(jurisdiction="DE", name="Germany", rate=D("0.19"))
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("100.00"),
        currency="USD",
        method=PaymentMethodType.WIRE_TRANSFER,
        reference="WIRE-0001",
    )
    client = admin_client_for(role)

    # when
    pages = {
        name: client.get(f"/admin/billing/{name}/")
        for name in ("customer", "invoice", "payment", "taxrate")
    }

    # then
    assert {name: page.status_code for name, page in pages.items()} == {
        "customer": 200,
        "invoice": 200,
        "payment": 200,
        "taxrate": 200,
    }
    assert "Acme Corp" in pages["customer"].content.decode()
    invoice_html = pages["invoice"].content.decode()
    assert issued.number in invoice_html
    assert _cells(invoice_html, "total_amount") == ["250.00USD"]
    assert _cells(invoice_html, "amount_due_amount") == ["150.00USD"]  # after the payment
    assert _cells(invoice_html, "status_text") == ["Partlypaid"]
    assert "WIRE-0001" in pages["payment"].content.decode()
    assert "19 %" in pages["taxrate"].content.decode()


def test_invoice_changelist_queries_do_not_grow_with_rows(
    admin_client_for, make_invoice: Callable[..., Invoice], django_assert_max_num_queries
) -> None:
    # given 20 invoices (10 drafts, 10 issued)
    for n in range(20):
        make_invoice(f"{n + 1}.00", issue=n % 2 == 0)
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when
    with django_assert_max_num_queries(9):
        response = client.get("/admin/billing/invoice/")

    # then
    assert response.status_code == 200
    assert response.context["cl"].result_count == 20


def test_overdue_flag_and_filter(
    admin_client_for, make_invoice: Callable[..., Invoice], time_machine
) -> None:
    # given an open invoice past its due date and one not yet due
    time_machine.move_to("2026-01-05 12:00Z", tick=False)
    late = make_invoice("10.00", due_date=None)
    Invoice.objects.filter(pk=late.pk).update(due_date="2026-01-31")
    time_machine.move_to("2026-02-20 12:00Z", tick=False)
    current = make_invoice("20.00")
    client = admin_client_for(Role.AR_CLERK)

    # when
    overdue = client.get("/admin/billing/invoice/?overdue=yes")
    not_overdue = client.get("/admin/billing/invoice/?overdue=no")

    # then
    assert [i.pk for i in overdue.context["cl"].result_list] == [late.pk]
    assert '<strong style="color: var(--error-fg)">20 days</strong>' in overdue.content.decode()
    assert [i.pk for i in not_overdue.context["cl"].result_list] == [current.pk]


# --- Customers ----------------------------------------------------------------------------


def test_customer_add_with_an_invalid_vat_id_is_a_form_error_and_creates_nothing(
    admin_client_for,
) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.post(
        "/admin/billing/customer/add/", {**CUSTOMER_FORM, "tax_id": "DE123456789"}
    )

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "&#x27;DE123456789&#x27; is not a valid EU VAT number: "
        "The number&#x27;s checksum or check digit is invalid." in html
    )
    assert 'value="Globex GmbH"' in html
    assert Customer.objects.count() == 0


def test_customer_add_goes_through_the_service(admin_client_for) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.post(
        "/admin/billing/customer/add/",
        {
            **CUSTOMER_FORM,
            "tax_id": "136 695 976",
            "country": "de",
            "reverse_charge": "on",
            "cc_emails": "cfo@globex.example, controller@globex.example",
        },
    )

    # then
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.name, customer.country, customer.tax_id, customer.reverse_charge) == (
        "Globex GmbH",
        "DE",
        "DE136695976",
        True,
    )
    assert customer.cc_emails == ["cfo@globex.example", "controller@globex.example"]
    assert customer.credit_balance == Money("0", "EUR")
    assert customer.history.count() == 1


def test_customer_change_is_refused_by_the_service_once_invoices_exist(
    admin_client_for, issued: Invoice, customer: Customer
) -> None:
    # given a customer with an issued invoice
    client = admin_client_for(Role.FINANCE_ADMIN)
    url = f"/admin/billing/customer/{customer.pk}/change/"
    data = {
        **CUSTOMER_FORM,
        "name": "Acme Corp",
        "email": "ap@acme.example",
        "country": "",
        "city": "",
        "currency": "EUR",
        **CUSTOMER_INLINES,
    }

    # when
    page = client.get(url)
    response = client.post(url, data)

    # then
    assert page.status_code == 200
    assert issued.number in page.content.decode()  # the invoices inline
    assert 'name="_save"' in page.content.decode()
    assert response.status_code == 200
    assert (
        "The customer&#x27;s currency cannot change once it has invoices or payments."
        in response.content.decode()
    )
    customer.refresh_from_db()
    assert customer.currency == "USD"
    assert client.get(f"/admin/billing/customer/{customer.pk}/delete/").status_code == 403


def test_customer_change_is_recorded_in_history(
    admin_client_for, customer: Customer, finance_admin: User
) -> None:
    # given
    client = verified_client(finance_admin)

    # when
    response = client.post(
        f"/admin/billing/customer/{customer.pk}/change/",
        {
            **CUSTOMER_FORM,
            "name": "Acme Corporation",
            "email": "ap@acme.example",
            "currency": "USD",
            "country": "",
            "city": "",
            "payment_terms": "45",
            **CUSTOMER_INLINES,
        },
    )
    history = client.get(f"/admin/billing/customer/{customer.pk}/history/")

    # then
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.payment_terms) == ("Acme Corporation", 45)
    assert history.status_code == 200
    latest = customer.history.first()
    assert (latest.name, latest.history_user) == ("Acme Corporation", finance_admin)


# --- Drafts ---------------------------------------------------------------------------------


def test_invoice_add_creates_a_draft_through_the_service(
    admin_client_for, customer: Customer
) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.post(
        "/admin/billing/invoice/add/",
        {
            "customer": str(customer.pk),
            "currency": "",
            "issue_date": "",
            "due_date": "",
            "memo": "PO 77",
            **lines_formset(("Consulting", "3", "19.99", "8.75"), ("Setup", "1", "50", "")),
        },
    )

    # then
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.number, invoice.currency, invoice.memo) == (
        InvoiceStatus.DRAFT,
        None,
        "USD",
        "PO 77",
    )
    assert list(invoice.lines.values_list("description", "amount", "tax_amount")) == [
        ("Consulting", D("59.9700"), D("5.2500")),
        ("Setup", D("50.0000"), D("4.3800")),  # the default rate 0.0875
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Money("109.97", "USD"),
        Money("9.63", "USD"),
        Money("119.60", "USD"),
    )


def test_invoice_add_without_lines_is_refused_on_the_form(
    admin_client_for, customer: Customer
) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.post(
        "/admin/billing/invoice/add/",
        {"customer": str(customer.pk), "currency": "", "memo": "", **lines_formset()},
    )

    # then
    assert response.status_code == 200
    assert "An invoice needs at least one line." in response.content.decode()
    assert Invoice.objects.count() == 0


def test_draft_edit_replaces_its_lines_through_the_service(
    admin_client_for, draft: Invoice
) -> None:
    # given a draft with two lines
    client = admin_client_for(Role.AR_CLERK)
    first, second = draft.lines.values_list("pk", flat=True)
    data = {
        "currency": "USD",
        "issue_date": "",
        "due_date": "",
        "memo": "Revised",
        **lines_formset(
            ("Item 1", "2", "100.00", "0"), ("Item 2", "1", "20.50", "0"), initial=[first, second]
        ),
        "lines-1-DELETE": "on",
    }

    # when
    page = client.get(change_url(draft))
    response = client.post(change_url(draft), data)

    # then
    assert page.status_code == 200
    assert 'name="lines-0-price" value="100.0000"' in page.content.decode()
    assert f'href="{tool_url(draft, "issue")}"' in page.content.decode()
    assert response.status_code == 302
    draft.refresh_from_db()
    assert list(draft.lines.values_list("description", "quantity", "amount")) == [
        ("Item 1", D("2.0000"), D("200.0000"))
    ]
    assert (draft.total, draft.memo, draft.status) == (
        Money("200.00", "USD"),
        "Revised",
        InvoiceStatus.DRAFT,
    )


# --- Issue ------------------------------------------------------------------------------------


def test_issue_button_issues_the_draft(
    admin_client_for, draft: Invoice, django_capture_on_commit_callbacks
) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(tool_url(draft, "issue"), {"confirm": "1"}, follow=True)

    # then
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.OPEN
    assert draft.number is not None
    assert draft.number.startswith("INV-")
    assert messages_of(response) == [
        f"Invoice {draft.number} issued; its PDF and email to ap@acme.example follow."
    ]
    entry = JournalEntry.objects.get(pk=draft.ledger_entry_id)
    assert entry.source == f"billing.invoice:{draft.pk}"
    assert len(callbacks) == 1  # the PDF and the email, queued after commit
    html = response.content.decode()
    assert 'name="_save"' not in html
    assert tool_url(draft, "issue") not in html


def test_issue_confirmation_shows_the_posting_and_a_get_changes_nothing(
    admin_client_for, draft: Invoice
) -> None:
    # given a draft of 100.00 + 20.50 USD
    client = admin_client_for(Role.AR_CLERK)

    # when the clerk opens the issue page
    response = client.get(tool_url(draft, "issue"))

    # then it shows the posting the service would make, account by account
    assert response.status_code == 200
    [entry] = response.context["preview"].entries
    assert [(line.debit, line.credit) for line in entry.lines] == [
        ("120.50 USD", ""),
        ("", "120.50 USD"),
    ]
    html = response.content.decode()
    assert "What will be posted to the ledger" in html
    assert "Issue the invoice" in html
    # and nothing was issued: no number, no entry
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, None)
    assert JournalEntry.objects.count() == 0


def test_issue_refused_for_a_role_without_the_permission(admin_client_for, draft: Invoice) -> None:
    # given a controller: may see invoices and void them, not issue them
    client = admin_client_for(Role.CONTROLLER)

    # when
    page = client.get(change_url(draft))
    response = client.post(tool_url(draft, "issue"), {"confirm": "1"})

    # then
    assert page.status_code == 200
    assert tool_url(draft, "issue") not in page.content.decode()
    assert response.status_code == 403
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, None)
    assert JournalEntry.objects.count() == 0


def test_issuing_twice_reports_the_refusal(admin_client_for, issued: Invoice) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.post(tool_url(issued, "issue"), {"confirm": "1"})

    # then the service's refusal is on the confirmation page
    assert response.status_code == 200
    assert response.context["error"] == f"Invoice {issued.number} is open; only drafts are issued."
    assert JournalEntry.objects.count() == 1


def test_bulk_issue_reports_each_success_and_failure(
    admin_client_for, make_invoice: Callable[..., Invoice]
) -> None:
    # given two drafts and an invoice already issued
    first = make_invoice("10.00", issue=False)
    second = make_invoice("20.00", issue=False)
    already = make_invoice("30.00")
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.post(
        "/admin/billing/invoice/",
        {
            "action": "issue_drafts",
            "_selected_action": [str(first.pk), str(second.pk), str(already.pk)],
        },
        follow=True,
    )

    # then
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (InvoiceStatus.OPEN, InvoiceStatus.OPEN)
    assert messages_of(response) == [
        f"{already.number}: Invoice {already.number} is open; only drafts are issued.",
        f"Issued 2 invoices: {first.number}, {second.number}.",
    ]


def test_bulk_issue_is_not_offered_without_the_permission(admin_client_for, draft: Invoice) -> None:
    # given
    client = admin_client_for(Role.AUDITOR)

    # when
    page = client.get("/admin/billing/invoice/")
    response = client.post(
        "/admin/billing/invoice/", {"action": "issue_drafts", "_selected_action": [draft.pk]}
    )

    # then
    assert 'value="issue_drafts"' not in page.content.decode()
    assert response.status_code == 200  # no action to run: the list again
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT


# --- Issued invoices are read-only ------------------------------------------------------------


def test_issued_invoice_has_no_save_and_a_post_changes_nothing(
    admin_client_for, issued: Invoice
) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)
    line = issued.lines.get()

    # when
    page = client.get(change_url(issued))
    post = client.post(
        change_url(issued),
        {
            "currency": "EUR",
            "memo": "edited",
            **lines_formset(("Edited", "9", "1.00", "0"), initial=[line.pk]),
            "_save": "Save",
        },
    )

    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert 'name="lines-0-price"' not in html
    assert "250.00 USD" in html
    assert post.status_code == 403
    issued.refresh_from_db()
    assert (issued.currency, issued.memo, issued.total) == ("USD", "", Money("250.00", "USD"))
    assert list(issued.lines.values_list("description", "amount")) == [("Item 1", D("250.0000"))]
    assert client.get(f"/admin/billing/invoice/{issued.pk}/delete/").status_code == 403
    assert client.get(f"/admin/billing/invoice/{issued.pk}/history/").status_code == 200
    version = issued.history.order_by("history_id").first()
    version_url = f"/admin/billing/invoice/{issued.pk}/history/{version.history_id}/"
    assert client.get(version_url).status_code == 200
    assert client.post(version_url, {"memo": "reverted"}).status_code == 403


# --- Void and write-off -----------------------------------------------------------------------


def test_void_asks_for_a_reason_then_voids(admin_client_for, issued: Invoice) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)
    url = tool_url(issued, "void")

    # when
    page = client.get(change_url(issued)).content.decode()
    confirm = client.get(url)
    without_reason = client.post(url, {"reason": "", "confirm": "1"})
    done = client.post(url, {"reason": "Sent to the wrong customer", "confirm": "1"}, follow=True)

    # then
    assert f'href="{url}"' in page
    assert confirm.status_code == 200
    assert "Void the invoice" in confirm.content.decode()
    assert without_reason.status_code == 200
    assert "This field is required." in without_reason.content.decode()
    assert messages_of(done) == [f"Invoice {issued.number} voided."]
    issued.refresh_from_db()
    assert (issued.status, issued.close_reason) == (
        InvoiceStatus.VOID,
        "Sent to the wrong customer",
    )
    assert JournalEntry.objects.filter(reversal_of_id=issued.ledger_entry_id).count() == 1


def test_void_is_refused_for_an_ar_clerk(admin_client_for, issued: Invoice) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)
    url = tool_url(issued, "void")

    # when
    page = client.get(change_url(issued)).content.decode()
    confirm = client.get(url)
    post = client.post(url, {"reason": "Not allowed", "confirm": "1"})

    # then
    assert url not in page
    assert tool_url(issued, "write_off") not in page
    assert (confirm.status_code, post.status_code) == (403, 403)
    issued.refresh_from_db()
    assert (issued.status, issued.close_reason) == (InvoiceStatus.OPEN, "")
    assert JournalEntry.objects.count() == 1


def test_mark_uncollectible_writes_off_what_is_due(admin_client_for, issued: Invoice) -> None:
    # given
    client = admin_client_for(Role.CONTROLLER)
    url = tool_url(issued, "write_off")

    # when
    confirm = client.get(url)
    done = client.post(url, {"reason": "Customer insolvent", "confirm": "1"}, follow=True)

    # then
    assert "What is left to collect (250.00 USD) is written off" in confirm.content.decode()
    assert messages_of(done) == [f"Invoice {issued.number} marked uncollectible."]
    issued.refresh_from_db()
    assert (issued.status, issued.close_reason) == (
        InvoiceStatus.UNCOLLECTIBLE,
        "Customer insolvent",
    )
    assert JournalEntry.objects.filter(source=f"billing.invoice:{issued.pk}").count() == 2


# --- PDF and resend ---------------------------------------------------------------------------


def test_pdf_link_returns_the_stored_pdf_inline(admin_client_for, issued: Invoice) -> None:
    # given
    client = admin_client_for(Role.AUDITOR)
    page = client.get(change_url(issued)).content.decode()

    # when
    response = client.get(tool_url(issued, "pdf"))

    # then
    assert f'href="{tool_url(issued, "pdf")}"' in page
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="{issued.number}.pdf"'
    assert response.content.startswith(b"%PDF-")
    issued.refresh_from_db()
    assert issued.pdf.name == f"invoices/{issued.issued_at:%Y}/{issued.number}.pdf"
    assert response.content == issued.pdf.read()


def test_a_draft_has_no_pdf(admin_client_for, draft: Invoice) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    response = client.get(tool_url(draft, "pdf"), follow=True)

    # then
    assert messages_of(response) == [f"Invoice Draft #{draft.pk} is a draft: it has no PDF yet."]


def test_resend_email_sends_the_invoice_again(admin_client_for, issued: Invoice) -> None:
    # given an issued invoice already emailed once
    invoice_email_send(invoice_id=issued.pk)
    assert len(mail.outbox) == 1
    client = admin_client_for(Role.AR_CLERK)

    # when
    page = client.get(change_url(issued)).content.decode()
    response = client.post(tool_url(issued, "resend"), {"confirm": "1"}, follow=True)

    # then
    assert f'href="{tool_url(issued, "resend")}"' in page
    assert messages_of(response) == [f"Invoice {issued.number} emailed again to ap@acme.example."]
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == ["ap@acme.example"]
    assert mail.outbox[1].subject == mail.outbox[0].subject
    assert mail.outbox[1].attachments == mail.outbox[0].attachments


def test_resend_is_refused_without_the_issue_permission(admin_client_for, issued: Invoice) -> None:
    # given
    invoice_pdf_store(invoice_id=issued.pk)
    client = admin_client_for(Role.AUDITOR)

    # when
    page = client.get(change_url(issued)).content.decode()
    response = client.post(tool_url(issued, "resend"), {"confirm": "1"})
    get = admin_client_for(Role.AR_CLERK).get(tool_url(issued, "resend"))

    # then the auditor is refused, and the clerk's GET only asks for confirmation
    assert tool_url(issued, "resend") not in page
    assert response.status_code == 403
    assert get.status_code == 200
    assert "Send the email" in get.content.decode()
    assert mail.outbox == []


# --- Payments ---------------------------------------------------------------------------------


def test_payment_admin_is_read_only_with_links_to_invoices(
    admin_client_for, issued: Invoice, clerk: User, customer: Customer
) -> None:
    # given a payment applied to an invoice
    payment = payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("300.00"),
        currency="USD",
        method=PaymentMethodType.ACH,
        reference="ACH-77",
    )
    client = admin_client_for(Role.FINANCE_ADMIN)
    url = f"/admin/billing/payment/{payment.pk}/change/"

    # when
    page = client.get(url)
    post = client.post(url, {"reference": "changed", "allocations-TOTAL_FORMS": "0"})
    add = client.get("/admin/billing/payment/add/")
    delete = client.get(f"/admin/billing/payment/{payment.pk}/delete/")

    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html
    assert f'<a href="{change_url(issued)}">{issued.number}</a>' in html
    assert "250.00 USD" in html  # allocated
    assert "50.00 USD" in html  # to customer credit
    assert (post.status_code, delete.status_code) == (403, 403)
    assert add.status_code == 200  # recording a payment: admin_payments
    assert Payment.objects.get().reference == "ACH-77"


# --- Tax rates ----------------------------------------------------------------------------


def test_tax_rate_add_for_finance_admin_only(admin_client_for) -> None:
    # given
    finance = admin_client_for(Role.FINANCE_ADMIN)
    clerk = admin_client_for(Role.AR_CLERK)
    data = {"jurisdiction": "DE", "name": "Germany", "rate": "19"}

    # when
    refused = clerk.post("/admin/billing/taxrate/add/", data)
    added = finance.post("/admin/billing/taxrate/add/", data)

    # then
    assert (refused.status_code, added.status_code) == (403, 302)
    rate = TaxRate.objects.get()
    assert (rate.jurisdiction, rate.rate) == ("DE", D("0.190000"))
    assert rate.history.count() == 1


def test_a_tax_inclusive_line_keeps_its_price_when_the_draft_is_saved(
    clerk: User, customer: Customer
) -> None:
    # given a draft with a tax-inclusive line, as the API can write it
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[
            LineInput(
                description="Shelf price",
                quantity=D(1),
                unit_price=D("10.00"),
                tax_rate=D("0.0875"),
                tax_inclusive=True,
            )
        ],
    )
    client = verified_client(clerk)

    # when the draft is saved unchanged through the admin
    line = invoice.lines.get()
    page = client.get(change_url(invoice)).content.decode()
    response = client.post(
        change_url(invoice),
        {
            "currency": "USD",
            "memo": "",
            **lines_formset(("Shelf price", "1", "10.00", "8.75"), initial=[line.pk]),
            "lines-0-tax_inclusive": "on",
        },
    )

    # then the tax-inclusive price is kept: same totals
    assert re.search(r'<input type="checkbox" name="lines-0-tax_inclusive"[^>]* checked', page)
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Money("9.20", "USD"),
        Money("0.80", "USD"),
        Money("10.00", "USD"),
    )
