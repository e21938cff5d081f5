"""Invoice delivery over real SMTP: an aiosmtpd server on loopback receives the message."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage as ParsedMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from billing.models import Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create

pytestmark = pytest.mark.django_db


class CollectingHandler:
    """Keeps every message the server accepts, with its envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server(settings) -> Iterator[CollectingHandler]:
    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_loopback_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = controller.hostname
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    try:
        yield handler
    finally:
        controller.stop()


def test_issuing_delivers_the_pdf_over_smtp(
    smtp_server,
    settings,
    tmp_path: Path,
    finance_admin,
    django_capture_on_commit_callbacks,
    time_machine,
) -> None:
    # given a customer with a cc address and a real mail server on loopback
    settings.MEDIA_ROOT = tmp_path / "media"
    time_machine.move_to(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), tick=False)
    customer = customer_create(
        actor=finance_admin,
        name="Acme Corporation",
        email="ap@acme.example",
        cc_emails=["controller@acme.example"],
        currency="USD",
    )

    # when the invoice is issued and its delivery runs
    with django_capture_on_commit_callbacks(execute=True):
        issued = invoice_create(
            actor=finance_admin,
            customer_id=customer.pk,
            lines=[
                LineInput(
                    description="Consulting", quantity=Decimal("2"), unit_price=Decimal("50.00")
                )
            ],
            issue=True,
        )

    # then the server received one message, for both recipients, carrying the stored PDF
    invoice = Invoice.objects.get(pk=issued.pk)
    assert len(smtp_server.envelopes) == 1
    envelope = smtp_server.envelopes[0]
    assert envelope.mail_from == "billing@backoffice.localhost"
    assert envelope.rcpt_tos == ["ap@acme.example", "controller@acme.example"]
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(message, ParsedMessage)
    assert message["Subject"] == "Invoice INV-2026-000001 from Back-office Demo Co."
    assert message["To"] == "ap@acme.example"
    assert message["Cc"] == "controller@acme.example"
    attachments = list(message.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        ("INV-2026-000001.pdf", "application/pdf")
    ]
    content = attachments[0].get_content()
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == invoice.pdf_sha256
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Amount due: USD 108.75" in body.get_content()
    assert invoice.emailed_at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
