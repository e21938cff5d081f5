"""Vendors, their onboarding, documents and bank details.

Bank details change only through a VendorBankChange approved by a second person (a classic
fraud route); while one is pending the vendor is on payment hold.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from core.encryption import EncryptedTextField, mask_tail
from payables.enums import BankChangeStatus, TaxIdType, VendorKind, VendorStatus
from payables.models.common import user_fk


class Vendor(FSMModelMixin, models.Model):
    name = models.CharField("legal name", max_length=200)
    email = models.EmailField()
    kind = models.CharField(max_length=10, choices=VendorKind.choices, default=VendorKind.SUPPLIER)
    # The employee this payee stands for (kind = employee): expense reimbursements.
    employee = models.OneToOneField(
        "auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="payee"
    )
    currency = models.CharField(max_length=3)
    country = models.CharField(max_length=2, blank=True, default="")
    address = models.TextField(blank=True, default="")
    tax_id_type = models.CharField(
        max_length=10, choices=TaxIdType.choices, blank=True, default=TaxIdType.NONE
    )
    # Encrypted at rest (validated with python-stdnum before it is stored).
    tax_id = EncryptedTextField(blank=True, default="")
    status = FSMField(
        max_length=20, choices=VendorStatus.choices, default=VendorStatus.INVITED, protected=True
    )
    # Terms: net days, and an early-payment discount ("2/10 net 30": 2 % within 10 days).
    payment_terms_days = models.PositiveIntegerField(default=30)
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    discount_days = models.PositiveIntegerField(default=0)
    # Remittance details in force; changed only by an approved VendorBankChange.
    bank_account_holder = models.CharField(max_length=200, blank=True, default="")
    bank_routing_number = models.CharField(max_length=9, blank=True, default="")
    bank_account_number = EncryptedTextField(blank=True, default="")
    bank_account_type = models.CharField(max_length=10, blank=True, default="checking")
    iban = EncryptedTextField(blank=True, default="")
    bic = models.CharField(max_length=11, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = user_fk()
    blocked_reason = models.CharField(max_length=300, blank=True, default="")
    # GDPR erasure: personal data pseudonymised (here and in the history rows); the record
    # stays for the bills the law keeps, and is never edited or paid again.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = HistoricalRecords(excluded_fields=["tax_id", "bank_account_number", "iban"])

    class Meta:
        ordering = ("name", "pk")
        permissions = [
            ("activate_vendor", "Can activate or block vendors"),
            ("approve_vendorbankchange", "Can approve vendor bank detail changes"),
            ("export_vendor", "Can export a vendor's personal data (GDPR)"),
            ("erase_vendor", "Can erase a vendor's personal data (GDPR)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lt=100),
                name="vendor_discount_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(kind=VendorKind.SUPPLIER) | Q(employee__isnull=False),
                name="vendor_employee_has_user",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tax_id_masked(self) -> str:
        return mask_tail(self.tax_id)

    @property
    def bank_account_masked(self) -> str:
        return mask_tail(self.bank_account_number)

    @property
    def iban_masked(self) -> str:
        return mask_tail(self.iban)

    @property
    def has_bank_details(self) -> bool:
        return bool(self.bank_account_number or self.iban)

    @transition(field=status, source=VendorStatus.INVITED, target=VendorStatus.PENDING_REVIEW)
    def submit_for_review(self) -> None:
        pass

    @transition(
        field=status,
        source=[VendorStatus.INVITED, VendorStatus.PENDING_REVIEW, VendorStatus.BLOCKED],
        target=VendorStatus.ACTIVE,
    )
    def activate(self, *, by: object) -> None:
        self.activated_at = timezone.now()
        self.activated_by = by  # type: ignore[assignment]
        self.blocked_reason = ""

    @transition(field=status, source="*", target=VendorStatus.BLOCKED)
    def block(self, *, reason: str) -> None:
        self.blocked_reason = reason


class VendorBankChange(models.Model):
    """New remittance details waiting for a second person. Until decided, no payment run
    includes the vendor."""

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="bank_changes")
    bank_account_holder = models.CharField(max_length=200, blank=True, default="")
    bank_routing_number = models.CharField(max_length=9, blank=True, default="")
    bank_account_number = EncryptedTextField(blank=True, default="")
    bank_account_type = models.CharField(max_length=10, blank=True, default="checking")
    iban = EncryptedTextField(blank=True, default="")
    bic = models.CharField(max_length=11, blank=True, default="")
    reason = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=BankChangeStatus.choices, default=BankChangeStatus.PENDING
    )
    requested_at = models.DateTimeField(default=timezone.now, editable=False)
    requested_by = user_fk()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = user_fk()
    comment = models.CharField(max_length=500, blank=True, default="")

    history = HistoricalRecords(excluded_fields=["bank_account_number", "iban"])

    class Meta:
        ordering = ("-requested_at", "-pk")
        constraints = [
            # One pending change per vendor: a second request replaces nothing silently.
            models.UniqueConstraint(
                fields=("vendor",),
                condition=Q(status=BankChangeStatus.PENDING),
                name="vendor_one_pending_bank_change",
            ),
            models.CheckConstraint(
                condition=Q(status=BankChangeStatus.PENDING)
                | (Q(decided_by__isnull=False) & ~Q(decided_by=models.F("requested_by"))),
                name="bank_change_second_person",
            ),
        ]

    def __str__(self) -> str:
        return f"Bank change for {self.vendor} ({self.status})"

    @property
    def bank_account_masked(self) -> str:
        return mask_tail(self.bank_account_number)

    @property
    def iban_masked(self) -> str:
        return mask_tail(self.iban)


def vendor_document_path(instance: VendorDocument, filename: str) -> str:
    # The stored name never comes from the upload (B7: no "../" reaches the storage).
    return f"payables/vendors/{instance.vendor_id}/{instance.sha256}{instance.extension}"


class VendorDocument(models.Model):
    class Kind(models.TextChoices):
        W9 = "w9", "W-9"
        W8 = "w8", "W-8BEN / W-8BEN-E"
        CERTIFICATE = "certificate", "Certificate (incorporation, insurance)"
        OTHER = "other", "Other"

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    file = models.FileField(upload_to=vendor_document_path, max_length=300)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    extension = models.CharField(max_length=8)
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)
    uploaded_by = user_fk()

    history = HistoricalRecords()

    class Meta:
        ordering = ("-uploaded_at", "-pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.vendor}"
