"""Staff read the file a customer attached to a dispute on the portal: from the dispute's admin
page (and the portal messages' own), as a download with the checked type and a safe name,
for those who may view disputes only, each read logged in the portal's access log."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.roles import Role
from portal.models import DisputeMessage, PortalAccess
from portal.services import portal_dispute_open, portal_enter, portal_link_send
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db
D = Decimal
IP = "203.0.113.9"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def invoice(admin_user, django_capture_on_commit_callbacks):
    customer = customer_create(
        actor=admin_user, name="Portal Co", email="ap@portal.example", currency="USD"
    )
    with django_capture_on_commit_callbacks(execute=False):
        return invoice_create(
            actor=admin_user,
            customer_id=customer.pk,
            issue=True,
            lines=[
                LineInput(description="Plan", quantity=D(1), unit_price=D("120.00"), tax_rate=D(0))
            ],
        )


@pytest.fixture
def dispute_with(admin_user, invoice, django_capture_on_commit_callbacks):
    """A dispute the customer raised on the portal with ``content`` attached as ``name``."""

    def make(content: bytes | None, name: str = "seats.pdf") -> DisputeMessage:
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            portal_link_send(actor=admin_user, customer_id=invoice.customer_id)
        token = re.search(r"/portal/enter/([A-Za-z0-9_-]+)", mail.outbox[-1].body).group(1)
        entered = portal_enter(token=token, ip=IP)
        with django_capture_on_commit_callbacks(execute=False):
            return portal_dispute_open(
                session=entered.session,
                invoice_id=invoice.pk,
                amount_text="40.00",
                message="We were billed for 3 seats;\nwe have 2. <b>Really</b>.",
                attachment=SimpleUploadedFile(name, content) if content is not None else None,
                ip=IP,
            )

    return make


def url_of(note: DisputeMessage) -> str:
    return reverse("admin:portal_disputemessage_attachment", args=[note.pk])


def reads() -> list[PortalAccess]:
    return list(PortalAccess.objects.filter(action="attachment_read").order_by("pk"))


@pytest.mark.parametrize("role", [Role.FINANCE_ADMIN, Role.AR_CLERK, Role.CONTROLLER, Role.AUDITOR])
def test_staff_who_may_view_disputes_download_the_file_and_the_read_is_logged(
    role, make_user, dispute_with
):
    # given a dispute raised on the portal with a PDF
    note = dispute_with(PDF, name="Seats Q3.pdf")
    user = make_user(role)
    # when a person in the role downloads it
    answer = verified_client(user).get(url_of(note), REMOTE_ADDR="198.51.100.4")
    # then the stored bytes come back as a PDF download that nothing renders or runs
    assert answer.status_code == 200
    assert answer.content == PDF
    assert answer["Content-Type"] == "application/pdf"
    assert answer["Content-Disposition"] == (
        f'attachment; filename="dispute-{note.dispute_id}-Seats-Q3.pdf"'
    )
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Content-Security-Policy"].startswith("default-src 'none';")
    assert "sandbox" in answer["Content-Security-Policy"]
    assert {"private", "no-store"} <= set(answer["Cache-Control"].split(", "))
    # and the read is in the access log: who, from where, which file, whose
    (read,) = reads()
    assert read.customer_id == note.dispute.customer_id
    assert read.ip == "198.51.100.4"
    assert read.path == url_of(note)
    assert read.detail == (
        f"dispute {note.dispute_id} message {note.pk} ({note.attachment.name}) by {user.username}"
    )


@pytest.mark.parametrize(
    ("content", "name", "content_type", "filename"),
    [
        (PNG, "screenshot.png", "image/png", "screenshot.png"),
        (JPEG, "photo.jpeg", "image/jpeg", "photo.jpg"),
        # the type is the bytes', never the name's; the name is cut to safe characters
        (PNG, 'C:\\Users\\me\\..\\"evil"; x=.html', "image/png", "evil-x.png"),
        (PDF, "../../etc/passwd", "application/pdf", "passwd.pdf"),
        (JPEG, "<script>alert(1)</script>.pdf", "image/jpeg", "script.jpg"),
        (PDF, "ÜBERSICHT €.pdf", "application/pdf", "BERSICHT.pdf"),
        (PDF, "....pdf", "application/pdf", "attachment.pdf"),
    ],
)
def test_the_type_comes_from_the_checked_bytes_and_the_name_is_safe(
    admin_user, dispute_with, content, name, content_type, filename
):
    # given
    note = dispute_with(content, name=name)
    # when
    answer = verified_client(admin_user).get(url_of(note))
    # then
    assert answer.status_code == 200
    assert answer.content == content
    assert answer["Content-Type"] == content_type
    assert answer["Content-Disposition"] == (
        f'attachment; filename="dispute-{note.dispute_id}-{filename}"'
    )


@pytest.mark.parametrize("role", [Role.AP_CLERK, Role.APPROVER])
def test_staff_who_may_not_view_disputes_get_403_and_the_refusal_is_logged(
    role, make_user, dispute_with
):
    # given
    note = dispute_with(PDF)
    user = make_user(role)
    # when
    answer = verified_client(user).get(url_of(note))
    # then nothing of the file is sent, and the refusal is logged (no read)
    assert answer.status_code == 403
    assert PDF not in answer.content
    assert reads() == []
    (refusal,) = PortalAccess.objects.filter(action="attachment_refused")
    assert refusal.customer_id == note.dispute.customer_id
    assert user.username in refusal.detail


def test_anonymous_and_unverified_sessions_are_sent_to_the_login(make_user, dispute_with):
    # given
    note = dispute_with(PDF)
    unverified = Client()
    unverified.force_login(make_user(Role.FINANCE_ADMIN))  # password only, no second factor
    # when / then
    for client in (Client(), unverified):
        answer = client.get(url_of(note))
        assert answer.status_code == 302
        assert "/login/" in answer["Location"]
    assert reads() == []


def test_a_missing_file_or_message_is_404(admin_user, dispute_with):
    # given a file gone from the storage, a message without a file, and no message at all
    gone = dispute_with(PDF)
    gone.attachment.storage.delete(gone.attachment.name)
    bare = dispute_with(None)
    client = verified_client(admin_user)
    # when / then
    assert client.get(url_of(gone)).status_code == 404
    assert client.get(url_of(bare)).status_code == 404
    missing = reverse("admin:portal_disputemessage_attachment", args=[999999])
    assert client.get(missing).status_code == 404
    assert reads() == []


def test_the_dispute_page_shows_the_customers_message_and_links_the_file(make_user, dispute_with):
    # given
    note = dispute_with(PDF, name="seats.pdf")
    client = verified_client(make_user(Role.AR_CLERK))
    # when the dispute is opened in the workspace
    page = client.get(reverse("admin:receivables_dispute_change", args=[note.dispute_id]))
    # then the message is there, escaped, with the download link; nothing is logged as read
    assert page.status_code == 200
    html = page.content.decode()
    assert "Customer messages" in html
    assert "we have 2. &lt;b&gt;Really&lt;/b&gt;." in html
    assert f'href="{url_of(note)}"' in html
    assert "Download seats.pdf" in html
    assert reads() == []
    # and the portal message's own page links the same view, never the stored file's path
    own = client.get(reverse("admin:portal_disputemessage_change", args=[note.pk]))
    assert own.status_code == 200
    assert f'href="{url_of(note)}"' in own.content.decode()
    assert note.attachment.name not in own.content.decode()


def test_a_dispute_without_portal_messages_says_so(admin_user, invoice):
    from receivables.services.disputes import dispute_open

    # given a dispute opened by staff (no message from the portal)
    dispute = dispute_open(
        actor=admin_user, invoice_id=invoice.pk, amount=D("10.00"), reason="Wrong seats"
    )
    # when
    page = verified_client(admin_user).get(
        reverse("admin:receivables_dispute_change", args=[dispute.pk])
    )
    # then
    assert page.status_code == 200
    assert "No message from the customer portal." in page.content.decode()
