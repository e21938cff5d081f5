"""Billing documents: customers, invoices and their lines, payments and their allocations.

Amounts are django-money fields sharing one currency column per row. Status fields are
protected FSM fields: only the transitions below change them, and only services call those.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from djmoney.money import Money
from simple_history.models import HistoricalRecords

from billing.enums import AllocationOrder, InvoiceStatus, PaymentMethodType, PaymentStatus
from core.money import money_text

# One currency column per row. Zero defaults are ``Decimal`` (a callable giving 0 with no
# currency): a Money default would overwrite the row's currency with DEFAULT_CURRENCY.
MONEY = {"max_digits": 19, "decimal_places": 4, "currency_field_name": "currency"}


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField()
    # More recipients for invoices, besides ``email``.
    cc_emails = models.JSONField(default=list, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True, default="")
    address_line2 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    region = models.CharField(max_length=100, blank=True, default="")
    postal_code = models.CharField(max_length=20, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    currency = models.CharField(max_length=3)
    # Empty: the system default (billing.payment_terms days).
    payment_terms = models.PositiveIntegerField(null=True, blank=True)
    # e.g. "US-CA", "DE": picks the TaxRate; empty: the system default rate.
    tax_jurisdiction = models.CharField(max_length=20, blank=True, default="")
    tax_id = models.CharField(max_length=40, blank=True, default="")
    tax_exempt = models.BooleanField(default=False)
    # B2B across EU borders: the customer accounts for VAT, the invoice carries none.
    reverse_charge = models.BooleanField(default=False)
    # Which open invoices a payment without allocations settles first.
    payment_allocation_order = models.CharField(
        max_length=12, choices=AllocationOrder.choices, default=AllocationOrder.OLDEST_DUE
    )
    acquisition_channel = models.CharField(max_length=60, blank=True, default="")
    campaign = models.CharField(max_length=100, blank=True, default="")
    # The day the customer was won (acquisition economics count from it): the day the record
    # is made unless told otherwise, as when customers come over from an earlier system.
    acquired_on = models.DateField(
        "customer since",
        default=timezone.localdate,
        blank=True,
        help_text="The day the customer was won; empty: the day the record is made.",
    )
    # Money the customer has with us (overpayments, credit notes), in ``currency``.
    credit_balance = MoneyField(default=Decimal, **MONEY)
    # The most the customer may owe us (open receivables net of credit), in ``currency``;
    # empty: no limit. Issuing or subscribing beyond it needs an approver's override.
    credit_limit = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    # On hold: no new invoice or subscription at all until it is lifted; the reason says why.
    credit_hold = models.BooleanField(default=False)
    credit_hold_reason = models.CharField(max_length=300, blank=True, default="")
    # Autopay: each invoice issued to the customer is charged on its default saved method
    # (``billing.services.autopay``); a subscription may say otherwise.
    autopay = models.BooleanField(
        default=False, help_text="Charge each issued invoice on the default saved method."
    )
    # The customer's IANA time zone: autopay retries are made in its working day. Empty:
    # the company's (TIME_ZONE).
    time_zone = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # GDPR erasure: personal data pseudonymised (here and in the history rows); the record
    # stays for the invoices the law keeps, and is never edited again.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ("name", "pk")
        permissions = [
            ("manage_credit", "Can set credit limits and credit holds"),
            ("override_credit_limit", "Can override a customer's credit limit"),
            ("export_customer", "Can export a customer's personal data (GDPR)"),
            ("erase_customer", "Can erase a customer's personal data (GDPR)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_balance__gte=0), name="customer_credit_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(credit_limit__isnull=True) | Q(credit_limit__gte=0),
                name="customer_credit_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(credit_hold=False) | ~Q(credit_hold_reason=""),
                name="customer_credit_hold_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TaxRate(models.Model):
    """The rate of a jurisdiction; overrides the system default for its customers."""

    jurisdiction = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    rate = models.DecimalField(max_digits=7, decimal_places=6)
    history = HistoricalRecords()

    class Meta:
        ordering = ("jurisdiction",)
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0, rate__lte=1), name="tax_rate_0_1")
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction} {self.rate:%}"


class Invoice(FSMModelMixin, models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    # Gapless per year, assigned at issue: tax law requires consecutive numbers.
    number = models.CharField(max_length=30, unique=True, null=True, blank=True)
    status = FSMField(
        max_length=20, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, protected=True
    )
    currency = models.CharField(max_length=3)
    subtotal = MoneyField(default=Decimal, **MONEY)
    tax = MoneyField(default=Decimal, **MONEY)
    total = MoneyField(default=Decimal, **MONEY)
    amount_paid = MoneyField(default=Decimal, **MONEY)
    amount_credited = MoneyField(default=Decimal, **MONEY)
    # Requested dates for a draft; fixed at issue.
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    memo = models.TextField(blank=True, default="")
    # Set for invoices of a subscription period; one invoice per subscription and period.
    subscription = models.ForeignKey(
        "billing.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
    )
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    # The functional-currency rate on the issue date; AR is carried at it until paid.
    fx_rate = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)
    ledger_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What the customer received, frozen at issue; the PDF is rendered from it once.
    snapshot = models.JSONField(null=True, blank=True)
    pdf = models.FileField(upload_to="invoices/%Y/", blank=True, default="")
    pdf_sha256 = models.CharField(max_length=64, blank=True, default="")
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    close_reason = models.CharField(max_length=300, blank=True, default="")
    # Who let this invoice take the customer past its credit limit (the history says when).
    credit_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [
            ("issue_invoice", "Can issue invoices"),
            ("void_invoice", "Can void invoices"),
            ("write_off_invoice", "Can mark invoices uncollectible"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0, amount_credited__gte=0),
                name="invoice_settled_not_negative",
            ),
            # Locking in the payment service keeps this true; the database makes sure.
            models.CheckConstraint(
                condition=Q(amount_paid__lte=F("total") - F("amount_credited")),
                name="invoice_never_overpaid",
            ),
            models.CheckConstraint(
                condition=Q(status=InvoiceStatus.DRAFT) | Q(number__isnull=False),
                name="invoice_issued_has_number",
            ),
            # A crashed or repeated billing run cannot bill a period twice.
            models.UniqueConstraint(
                fields=("subscription", "period_start"),
                condition=Q(subscription__isnull=False),
                name="invoice_one_per_subscription_period",
            ),
        ]
        indexes = [
            models.Index(fields=("customer", "status", "due_date")),
            # The workspace's invoice list, newest first, reads its page from this index
            # instead of sorting a million rows (bench/admin_changelist.py).
            models.Index(fields=("-created_at", "-id"), name="invoice_list_order"),
            # Sales of a window (DSO, CEI: reporting.kpis.credit_sales) summed from the
            # index alone on PostgreSQL, not from a scan of every invoice.
            models.Index(
                fields=("issue_date",),
                include=("currency", "total", "status", "closed_at"),
                name="invoice_issued_sales",
            ),
            # Invoices voided or written off, by when: a past day's receivables add those
            # closed after it (receivables.selectors._past_rows) without reading every invoice.
            models.Index(
                fields=("closed_at",),
                condition=Q(status__in=("void", "uncollectible")),
                name="invoice_closed_unpaid",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft #{self.pk}"

    @property
    def amount_due(self) -> Money:
        """What the customer still owes: nothing on a void invoice (its posting is reversed)."""
        if self.status == InvoiceStatus.VOID:
            return Money(0, self.currency)
        return self.total - self.amount_paid - self.amount_credited

    @property
    def is_issued(self) -> bool:
        return self.status != InvoiceStatus.DRAFT

    # Transitions set state and stamps only; services check permissions and post to the ledger.
    @transition(field=status, source=InvoiceStatus.DRAFT, target=InvoiceStatus.OPEN)
    def issue(self, *, by: object) -> None:
        self.issued_at = timezone.now()
        self.issued_by = by  # type: ignore[assignment]

    @transition(field=status, source=InvoiceStatus.OPEN, target=InvoiceStatus.PAID)
    def mark_paid(self) -> None:
        self.closed_at = timezone.now()

    @transition(field=status, source=InvoiceStatus.PAID, target=InvoiceStatus.OPEN)
    def reopen(self) -> None:
        self.closed_at = None

    @transition(field=status, source=InvoiceStatus.OPEN, target=InvoiceStatus.VOID)
    def void(self, *, by: object, reason: str) -> None:
        self.closed_at = timezone.now()
        self.closed_by = by  # type: ignore[assignment]
        self.close_reason = reason

    @transition(field=status, source=InvoiceStatus.OPEN, target=InvoiceStatus.UNCOLLECTIBLE)
    def write_off(self, *, by: object, reason: str) -> None:
        self.closed_at = timezone.now()
        self.closed_by = by  # type: ignore[assignment]
        self.close_reason = reason


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=19, decimal_places=4)
    unit_price = MoneyField(**MONEY)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=6)
    # Rounded to the currency: amount = quantity x unit price; tax per line (one rule).
    amount = MoneyField(**MONEY)
    tax_amount = MoneyField(**MONEY)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("position", "pk")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="invoice_line_qty_ok"),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0, tax_rate__lte=1), name="invoice_line_tax_rate_ok"
            ),
        ]

    def __str__(self) -> str:
        return self.description


class Payment(FSMModelMixin, models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    currency = models.CharField(max_length=3)
    amount = MoneyField(**MONEY)
    # What of ``amount`` went to invoices; the rest became customer credit.
    amount_allocated = MoneyField(default=Decimal, **MONEY)
    method = models.CharField(max_length=20, choices=PaymentMethodType.choices)
    status = FSMField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, protected=True
    )
    received_date = models.DateField()
    reference = models.CharField(max_length=200, blank=True, default="")
    processor = models.CharField(max_length=30, blank=True, default="")
    # One payment per processor charge: a retried webhook or job cannot record it twice.
    processor_charge_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    ledger_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-received_date", "-pk")
        permissions = [("record_payment", "Can record payments")]
        # The list's order, and what a past day's receivables look up (received after it).
        indexes = [models.Index(fields=["received_date", "id"], name="payment_received_order")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=Q(amount_allocated__gte=0, amount_allocated__lte=F("amount")),
                name="payment_allocation_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.pk} {money_text(self.amount)}"

    @transition(field=status, source=PaymentStatus.PENDING, target=PaymentStatus.SUCCEEDED)
    def succeed(self) -> None:
        pass

    @transition(field=status, source=PaymentStatus.PENDING, target=PaymentStatus.FAILED)
    def fail(self, *, code: str, message: str) -> None:
        self.failure_code = code
        self.failure_message = message[:500]


class PaymentAllocation(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    currency = models.CharField(max_length=3)
    amount = MoneyField(**MONEY)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_positive"),
            models.UniqueConstraint(fields=("payment", "invoice"), name="allocation_once"),
        ]

    def __str__(self) -> str:
        return (
            f"{money_text(self.amount)} of payment {self.payment_id} to invoice {self.invoice_id}"
        )
