"""Vendors: tax ids by python-stdnum, masked and encrypted details, activation and bank
changes by a second person, documents checked by content (B7)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from core.exceptions import PermissionDeniedError
from payables.enums import BankChangeStatus, VendorStatus
from payables.exceptions import ApprovalRefused, UploadRefused
from payables.models import Vendor, VendorBankChange, VendorDocument
from payables.services.vendors import (
    BankDetails,
    InvalidField,
    vendor_activate,
    vendor_bank_change_approve,
    vendor_bank_change_request,
    vendor_create,
    vendor_document_upload,
)

pytestmark = pytest.mark.django_db


def test_tax_ids_validated_and_stored_encrypted(ap_clerk):
    vendor = vendor_create(
        actor=ap_clerk,
        name="Globex",
        email="ap@globex.example",
        currency="USD",
        tax_id_type="us_ein",
        tax_id="04-2103594",
        bank=BankDetails(routing_number="011000015", account_number="123456789"),
    )
    assert vendor.status == VendorStatus.PENDING_REVIEW
    assert vendor.tax_id_masked.endswith("3594")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tax_id, bank_account_number FROM payables_vendor WHERE id = %s", [vendor.pk]
        )
        raw_tax, raw_account = cursor.fetchone()
    assert "2103594" not in raw_tax
    assert raw_tax.startswith("fernet:")
    assert "123456789" not in raw_account
    with pytest.raises(InvalidField) as refused:
        vendor_create(
            actor=ap_clerk,
            name="Bad",
            email="x@bad.example",
            currency="EUR",
            tax_id_type="eu_vat",
            tax_id="DE123",
        )
    assert refused.value.details["fields"] == {"tax_id": [refused.value.message]}
    assert Vendor.objects.count() == 1


def test_activation_needs_a_second_person(ap_clerk, make_user):
    vendor = vendor_create(actor=ap_clerk, name="Hooli", email="a@hooli.example", currency="USD")
    admin = make_user("finance_admin")
    with pytest.raises(PermissionDeniedError) as denied:
        vendor_activate(vendor_id=vendor.pk, actor=ap_clerk)
    assert denied.value.code == "permission_denied"
    creator_admin_vendor = vendor_create(
        actor=admin, name="Own", email="o@own.example", currency="USD"
    )
    with pytest.raises(ApprovalRefused) as refused:
        vendor_activate(vendor_id=creator_admin_vendor.pk, actor=admin)
    assert refused.value.code == "requester_cannot_approve"
    assert vendor_activate(vendor_id=vendor.pk, actor=admin).status == VendorStatus.ACTIVE


def test_bank_change_needs_a_second_person_and_is_reported(
    vendor, ap_clerk, make_user, django_capture_on_commit_callbacks
):
    # given an active vendor and a requested change
    old_account = vendor.bank_account_number
    admin = make_user("finance_admin")
    with django_capture_on_commit_callbacks(execute=True):
        change = vendor_bank_change_request(
            vendor_id=vendor.pk,
            bank=BankDetails(routing_number="021000021", account_number="99887766"),
            reason="New bank",
            actor=admin,
        )
    # then nothing changed yet and the vendor's contact was told
    vendor.refresh_from_db()
    assert vendor.bank_account_number == old_account
    assert [m.to for m in mail.outbox] == [[vendor.email]]
    # when the requester (who may approve others' changes) approves it themselves
    with pytest.raises(ApprovalRefused) as refused:
        vendor_bank_change_approve(change_id=change.pk, actor=admin)
    assert refused.value.code == "requester_cannot_approve"
    assert VendorBankChange.objects.get(pk=change.pk).status == BankChangeStatus.PENDING
    # when someone else does
    with django_capture_on_commit_callbacks(execute=True):
        vendor_bank_change_approve(
            change_id=change.pk, actor=make_user("approver"), comment="called"
        )
    vendor.refresh_from_db()
    assert vendor.bank_account_number == "99887766"
    assert vendor.bank_account_masked.endswith("7766")
    assert len(mail.outbox) == 2


def test_bad_bank_details_refused(vendor, ap_clerk):
    with pytest.raises(InvalidField) as refused:
        vendor_bank_change_request(
            vendor_id=vendor.pk,
            bank=BankDetails(routing_number="123456789", account_number="1234"),
            reason="x",
            actor=ap_clerk,
        )
    assert "routing_number" in refused.value.details["fields"]
    assert not VendorBankChange.objects.exists()


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (b"MZ\x90\x00 not a pdf", "w9.pdf", "upload_type_refused"),
        (b"", "w9.pdf", "upload_empty"),
        (b"%PDF-1.4 " + b"x" * 2048, "../../etc/passwd", None),
    ],
)
def test_B7_documents_checked_by_content_and_stored_safely(vendor, ap_clerk, content, name, code):
    upload = SimpleUploadedFile(name, content, content_type="application/pdf")
    if code:
        with pytest.raises(UploadRefused) as refused:
            vendor_document_upload(vendor_id=vendor.pk, kind="w9", upload=upload, actor=ap_clerk)
        assert refused.value.code == code
        assert not VendorDocument.objects.exists()
        return
    document = vendor_document_upload(vendor_id=vendor.pk, kind="w9", upload=upload, actor=ap_clerk)
    assert document.original_name == "passwd"
    assert ".." not in document.file.name
    assert document.file.name == f"payables/vendors/{vendor.pk}/{document.sha256}.pdf"


def test_B7_oversized_upload_refused_fast(vendor, ap_clerk, settings):
    settings.PAYABLES_MAX_UPLOAD_BYTES = 1024
    upload = SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * 4096)
    with pytest.raises(UploadRefused) as refused:
        vendor_document_upload(vendor_id=vendor.pk, kind="w9", upload=upload, actor=ap_clerk)
    assert refused.value.code == "upload_too_large"


def test_discount_terms_checked(ap_clerk):
    with pytest.raises(InvalidField):
        vendor_create(
            actor=ap_clerk,
            name="T",
            email="t@t.example",
            currency="USD",
            payment_terms_days=30,
            discount_percent=Decimal(2),
            discount_days=45,
        )
