"""Invoice documents: the PDF rendered once from the snapshot and stored with its hash, the
email that delivers it (once; again only when forced), the tasks, and the PDF endpoint."""

from __future__ import annotations

import hashlib
import shutil
import smtplib
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail import EmailMessage

from billing import documents
from billing.documents import (
    InvoiceNotIssued,
    InvoiceNotSendable,
    InvoicePdfIntegrityError,
    company_details,
    invoice_email_send,
    invoice_pdf_render,
    invoice_pdf_store,
)
from billing.models import Customer, Invoice
from billing.services.customers import customer_create, customer_update
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.links import invoice_url
from billing.tasks import invoice_deliver_task, invoice_render_pdf_task, invoice_send_email_task
from core.roles import Role

pytestmark = pytest.mark.django_db

ISSUED_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NUMBER = "INV-2026-000001"
PDF_URL = "/api/billing/invoices/{}/pdf"
PAYMENT_INSTRUCTIONS = (
    "Pay by ACH or wire to Back-office Demo Co., Demo Bank N.A., account 000123456789, "
    "routing (ABA) 110000000, SWIFT DEMOUS33, quoting the invoice number."
)


def pdf_text(content: bytes) -> str:
    """The PDF's text in reading order by rows, whitespace collapsed (poppler's pdftotext)."""
    assert shutil.which("pdftotext"), "pdftotext (Debian package poppler-utils) is required"
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"],
        input=content,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return " ".join(result.stdout.decode().split())


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def stored_bytes(invoice: Invoice) -> bytes:
    return Path(invoice.pdf.path).read_bytes()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(ISSUED_AT, tick=False)
    return time_machine


@pytest.fixture
def customer(finance_admin) -> Customer:
    return customer_create(
        actor=finance_admin,
        name="Acme Corporation",
        email="ap@acme.example",
        cc_emails=["controller@acme.example", "cfo@acme.example"],
        currency="USD",
        address_line1="1 Main Street",
        city="Springfield",
        region="IL",
        postal_code="62701",
        country="US",
    )


@pytest.fixture
def issue(finance_admin, django_capture_on_commit_callbacks, clock):
    """Issue a two-line invoice; ``deliver=False`` leaves the queued delivery unrun."""

    def make(customer: Customer, *, deliver: bool = True) -> Invoice:
        with django_capture_on_commit_callbacks(execute=deliver) as callbacks:
            invoice = invoice_create(
                actor=finance_admin,
                customer_id=customer.pk,
                lines=[
                    LineInput(
                        description="Consulting, March",
                        quantity=Decimal("2"),
                        unit_price=Decimal("50.00"),
                    ),
                    LineInput(
                        description="Support plan",
                        quantity=Decimal("1"),
                        unit_price=Decimal("1200.00"),
                    ),
                ],
                memo="PO 4500-77",
                issue=True,
            )
        assert len(callbacks) == 1
        return Invoice.objects.get(pk=invoice.pk)

    return make


# --- The PDF --------------------------------------------------------------------------------


def test_issuing_stores_a_pdf_of_the_invoice_with_its_hash(issue, customer) -> None:
    # given / when
    invoice = issue(customer)

    # then
    content = stored_bytes(invoice)
    assert content.startswith(b"%PDF-")
    assert invoice.pdf.name == f"invoices/2026/{NUMBER}.pdf"
    assert invoice.pdf_sha256 == sha256(content)
    assert len(invoice.pdf_sha256) == 64
    text = pdf_text(content)
    for expected in (
        NUMBER,
        "Acme Corporation",
        "1 Main Street",
        "62701 Springfield",
        "Consulting, March",
        "Support plan",
        "Subtotal 1,300.00",
        "Tax 113.75",
        "Total (USD) 1,413.75",
        "USD 1,413.75",
        "Issue date March 2, 2026",
        "Due date April 1, 2026",
        "PO 4500-77",
        "Back-office Demo Co.",
        "Tax ID: EIN 12-3456789",
        "Pay by ACH or wire to Back-office Demo Co.",
    ):
        assert expected in text, expected
    assert "Reverse charge" not in text


def test_the_pdf_is_the_rendering_of_the_snapshot_alone(issue, customer) -> None:
    # given
    invoice = issue(customer)

    # when
    rendered = invoice_pdf_render(invoice.snapshot, company=company_details())

    # then: rendering is deterministic and reads nothing but the snapshot
    assert sha256(rendered) == invoice.pdf_sha256
    assert invoice.snapshot["total"] == "1413.75"


def test_storing_again_never_re_renders_even_after_the_customer_changes(
    issue, customer, finance_admin, monkeypatch
) -> None:
    # given an issued invoice with its PDF, and a customer renamed since
    invoice = issue(customer)
    original = stored_bytes(invoice)
    customer_update(actor=finance_admin, customer_id=customer.pk, name="Acme Holdings Inc.")

    def render_forbidden(*args, **kwargs):
        raise AssertionError("the stored PDF must not be rendered again")

    monkeypatch.setattr(documents, "invoice_pdf_render", render_forbidden)

    # when
    again = invoice_pdf_store(invoice_id=invoice.pk)
    twice = invoice_pdf_store(invoice_id=str(invoice.pk))

    # then
    assert again.pdf.name == twice.pdf.name == invoice.pdf.name
    assert again.pdf_sha256 == twice.pdf_sha256 == invoice.pdf_sha256
    assert stored_bytes(twice) == original
    text = pdf_text(original)
    assert "Acme Corporation" in text
    assert "Acme Holdings" not in text
    assert sorted(p.name for p in Path(invoice.pdf.path).parent.iterdir()) == [f"{NUMBER}.pdf"]


def test_a_stored_pdf_that_does_not_match_its_hash_is_refused_not_re_rendered(
    issue, customer
) -> None:
    # given a stored PDF altered on disk
    invoice = issue(customer)
    Path(invoice.pdf.path).write_bytes(b"%PDF-1.7 tampered")

    # when / then
    with pytest.raises(InvoicePdfIntegrityError, match="does not match its recorded SHA-256"):
        invoice_pdf_store(invoice_id=invoice.pk)
    after = Invoice.objects.get(pk=invoice.pk)
    assert after.pdf.name == invoice.pdf.name
    assert after.pdf_sha256 == invoice.pdf_sha256
    assert stored_bytes(after) == b"%PDF-1.7 tampered"


def test_a_missing_stored_pdf_is_refused(issue, customer) -> None:
    # given
    invoice = issue(customer)
    Path(invoice.pdf.path).unlink()

    # when / then
    with pytest.raises(InvoicePdfIntegrityError, match="is missing"):
        invoice_pdf_store(invoice_id=invoice.pk)


def test_a_draft_has_no_pdf(finance_admin, customer) -> None:
    # given
    draft = invoice_create(
        actor=finance_admin,
        customer_id=customer.pk,
        lines=[LineInput(description="Draft work", quantity=Decimal("1"), unit_price=Decimal("5"))],
    )

    # when / then
    with pytest.raises(InvoiceNotIssued):
        invoice_pdf_store(invoice_id=draft.pk)
    after = Invoice.objects.get(pk=draft.pk)
    assert after.pdf.name == ""
    assert after.pdf_sha256 == ""


def test_a_reverse_charge_customer_gets_the_reverse_charge_note(issue, finance_admin) -> None:
    # given
    customer = customer_create(
        actor=finance_admin,
        name="Müller & Söhne GmbH",
        email="ap@mueller.example",
        currency="USD",
        address_line1="Friedrichstraße 123",
        city="Berlin",
        postal_code="10117",
        country="DE",
        tax_id="DE136695976",
        reverse_charge=True,
    )

    # when
    invoice = issue(customer)

    # then
    text = pdf_text(stored_bytes(invoice))
    assert "Müller & Söhne GmbH" in text
    assert "Friedrichstraße 123" in text
    assert f"Tax ID: {customer.tax_id}" in text
    assert "Reverse charge: VAT to be accounted for by the recipient." in text
    assert "Tax 0.00" in text
    assert "Total (USD) 1,300.00" in text


def test_the_company_comes_from_the_backoffice_company_setting(issue, customer, settings) -> None:
    # given
    settings.BACKOFFICE_COMPANY = {
        "name": "Globex Ltd",
        "address": ["5 Harbour Road", "Bristol BS1 5TY"],
        "email": "accounts@globex.example",
        "tax_id": "GB123456789",
        "payment_instructions": "Wire to Globex Ltd, IBAN GB00 DEMO 0000 0000 0000 00.",
        "page_size": "A4",
    }

    # when
    invoice = issue(customer)

    # then
    text = pdf_text(stored_bytes(invoice))
    assert "Globex Ltd" in text
    assert "5 Harbour Road" in text
    assert "Bristol BS1 5TY" in text
    assert "Tax ID: GB123456789" in text
    assert "Wire to Globex Ltd, IBAN GB00 DEMO 0000 0000 0000 00." in text
    assert "Back-office Demo Co." not in text
    assert mail.outbox[0].subject == f"Invoice {NUMBER} from Globex Ltd"
    assert mail.outbox[0].reply_to == ["accounts@globex.example"]


def test_rendering_reaches_no_external_url() -> None:
    # given a snapshot whose text looks like markup pointing outside
    snapshot = {
        "number": "INV-2026-000009",
        "currency": "USD",
        "issue_date": "2026-03-02",
        "due_date": "2026-04-01",
        "customer": {"name": '<img src="http://203.0.113.1/x.png">', "address": []},
        "lines": [],
        "subtotal": "0.00",
        "tax": "0.00",
        "total": "0.00",
        "memo": '<link rel="stylesheet" href="https://203.0.113.1/x.css">',
    }

    # when
    text = pdf_text(invoice_pdf_render(snapshot, company=company_details()))

    # then: it is printed as text, escaped, not fetched
    assert '<img src="http://203.0.113.1/x.png">' in text
    assert '<link rel="stylesheet" href="https://203.0.113.1/x.css">' in text


# --- The email ------------------------------------------------------------------------------


def test_issuing_emails_the_pdf_to_the_customer_and_cc(issue, customer) -> None:
    # given / when
    invoice = issue(customer)

    # then
    assert invoice.emailed_at == ISSUED_AT
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == f"Invoice {NUMBER} from Back-office Demo Co."
    assert message.from_email == "billing@backoffice.localhost"
    assert message.to == ["ap@acme.example"]
    assert message.cc == ["controller@acme.example", "cfo@acme.example"]
    assert message.recipients() == [
        "ap@acme.example",
        "controller@acme.example",
        "cfo@acme.example",
    ]
    assert message.reply_to == ["billing@backoffice.example"]
    assert message.attachments == [(f"{NUMBER}.pdf", stored_bytes(invoice), "application/pdf")]
    assert message.body == (
        "Hello Acme Corporation,\n\n"
        f"Please find attached invoice {NUMBER} from Back-office Demo Co., issued March 2, 2026, "
        "for USD 1,413.75.\n\n"
        "Amount due: USD 1,413.75\n"
        "Due date: April 1, 2026\n\n"
        f"View and pay it online: {invoice_url(invoice_id=invoice.pk)}\n\n"
        f"{PAYMENT_INSTRUCTIONS}\n"
        f"Please quote {NUMBER} as the payment reference.\n\n"
        "If you have any questions about this invoice, reply to this email or write to "
        "billing@backoffice.example.\n\n"
        "Thank you for your business,\n"
        "Back-office Demo Co.\n"
    )


def test_a_second_send_does_nothing(issue, customer, clock) -> None:
    # given
    invoice = issue(customer)
    clock.move_to(datetime(2026, 3, 3, 9, 0, tzinfo=UTC), tick=False)

    # when
    sent = invoice_email_send(invoice_id=invoice.pk)

    # then
    assert sent is False
    assert len(mail.outbox) == 1
    assert Invoice.objects.get(pk=invoice.pk).emailed_at == ISSUED_AT


def test_force_resends_the_same_pdf(issue, customer, clock) -> None:
    # given
    invoice = issue(customer)
    resent_at = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)
    clock.move_to(resent_at, tick=False)

    # when
    sent = invoice_email_send(invoice_id=invoice.pk, force=True)

    # then
    assert sent is True
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == ["ap@acme.example"]
    assert mail.outbox[1].attachments == mail.outbox[0].attachments
    after = Invoice.objects.get(pk=invoice.pk)
    assert after.emailed_at == resent_at
    assert after.pdf_sha256 == invoice.pdf_sha256


def test_a_failed_send_leaves_the_invoice_unsent_so_a_retry_sends_it(
    issue, customer, monkeypatch
) -> None:
    # given an issued invoice whose first delivery meets a mail server failure
    def refuse(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    with monkeypatch.context() as patch:
        patch.setattr(EmailMessage, "send", refuse)
        # the failure is logged and retried by the task; the issue itself stands
        issued = issue(customer)
    assert issued.status == "open"
    invoice = Invoice.objects.get(number=NUMBER)
    assert invoice.emailed_at is None
    assert invoice.pdf_sha256 == sha256(stored_bytes(invoice))
    assert mail.outbox == []

    # when the task is retried
    sent = invoice_deliver_task.delay(invoice_id=str(invoice.pk)).get()

    # then
    assert sent is True
    assert len(mail.outbox) == 1
    assert Invoice.objects.get(pk=invoice.pk).emailed_at == ISSUED_AT


def test_a_void_invoice_is_not_resent(issue, customer, finance_admin) -> None:
    # given
    invoice = issue(customer)
    invoice_void(actor=finance_admin, invoice_id=invoice.pk, reason="Billed twice")

    # when / then
    with pytest.raises(InvoiceNotSendable):
        invoice_email_send(invoice_id=invoice.pk, force=True)
    assert len(mail.outbox) == 1
    assert Invoice.objects.get(pk=invoice.pk).emailed_at == ISSUED_AT


# --- Tasks ----------------------------------------------------------------------------------


def test_tasks_have_stable_names_and_retry_transient_failures_only() -> None:
    for task, name in (
        (invoice_deliver_task, "billing.invoice_deliver"),
        (invoice_render_pdf_task, "billing.invoice_render_pdf"),
        (invoice_send_email_task, "billing.invoice_send_email"),
    ):
        assert task.name == name
        assert task.acks_late is True
        assert task.autoretry_for == (smtplib.SMTPException, ConnectionError, OSError)
        assert task.retry_backoff is True
        assert task.max_retries == 5


def test_render_and_send_tasks_do_their_work_once(issue, customer) -> None:
    # given an issued invoice whose delivery has not run
    invoice = issue(customer, deliver=False)
    assert invoice.pdf.name == ""
    assert invoice.emailed_at is None

    # when
    first_hash = invoice_render_pdf_task.delay(invoice_id=str(invoice.pk)).get()
    second_hash = invoice_render_pdf_task.delay(invoice_id=str(invoice.pk)).get()
    first_send = invoice_send_email_task.delay(invoice_id=str(invoice.pk)).get()
    second_send = invoice_send_email_task.delay(invoice_id=str(invoice.pk)).get()
    forced = invoice_send_email_task.delay(invoice_id=str(invoice.pk), force=True).get()

    # then
    after = Invoice.objects.get(pk=invoice.pk)
    assert first_hash == second_hash == after.pdf_sha256 == sha256(stored_bytes(after))
    assert (first_send, second_send, forced) == (True, False, True)
    assert len(mail.outbox) == 2


# --- GET /api/billing/invoices/{id}/pdf -----------------------------------------------------


@pytest.mark.urls("tests.billing.urls_pdf")
def test_the_api_returns_the_stored_pdf(issue, customer, client_for) -> None:
    # given
    invoice = issue(customer)

    # when
    response = client_for(Role.AR_CLERK).get(
        PDF_URL.format(invoice.pk), HTTP_ACCEPT="application/pdf"
    )

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{NUMBER}.pdf"'
    assert response.content == stored_bytes(invoice)


@pytest.mark.urls("tests.billing.urls_pdf")
def test_the_api_renders_a_pdf_not_stored_yet(issue, customer, client_for) -> None:
    # given an issued invoice whose delivery has not run
    invoice = issue(customer, deliver=False)

    # when
    response = client_for(Role.AUDITOR).get(PDF_URL.format(invoice.pk))

    # then
    assert response.status_code == 200
    after = Invoice.objects.get(pk=invoice.pk)
    assert after.pdf.name == f"invoices/2026/{NUMBER}.pdf"
    assert sha256(response.content) == after.pdf_sha256
    assert mail.outbox == []


@pytest.mark.urls("tests.billing.urls_pdf")
def test_the_api_refuses_a_draft_with_409(finance_admin, customer, client_for) -> None:
    # given
    draft = invoice_create(
        actor=finance_admin,
        customer_id=customer.pk,
        lines=[LineInput(description="Draft work", quantity=Decimal("1"), unit_price=Decimal("5"))],
    )

    # when
    response = client_for(Role.FINANCE_ADMIN).get(PDF_URL.format(draft.pk))

    # then
    assert response.status_code == 409
    assert response.json()["code"] == "invoice_not_issued"
    assert Invoice.objects.get(pk=draft.pk).pdf.name == ""


@pytest.mark.urls("tests.billing.urls_pdf")
def test_the_api_answers_404_in_json_for_an_unknown_invoice(client_for) -> None:
    # when
    response = client_for(Role.FINANCE_ADMIN).get(PDF_URL.format(999_999))

    # then
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "errors": {}}


@pytest.mark.urls("tests.billing.urls_pdf")
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.FINANCE_ADMIN, 200),
        (Role.CONTROLLER, 200),
        (Role.AR_CLERK, 200),
        (Role.AUDITOR, 200),
        (Role.AP_CLERK, 403),
        (Role.APPROVER, 403),
    ],
)
def test_the_api_is_open_to_roles_that_view_invoices(
    issue, customer, client_for, role, expected
) -> None:
    # given
    invoice = issue(customer)

    # when
    response = client_for(role).get(PDF_URL.format(invoice.pk))

    # then
    assert response.status_code == expected


@pytest.mark.urls("tests.billing.urls_pdf")
def test_the_api_refuses_anonymous_and_unverified_users(
    issue, customer, client, make_user, integration_client
) -> None:
    # given
    invoice = issue(customer)
    unverified = make_user(Role.FINANCE_ADMIN, mfa=False)
    url = PDF_URL.format(invoice.pk)

    # when
    anonymous = client.get(url)
    client.force_login(unverified)
    without_second_factor = client.get(url)
    integration = integration_client.get(url)

    # then
    assert anonymous.status_code == 401
    assert without_second_factor.status_code == 403
    assert integration.status_code == 200
