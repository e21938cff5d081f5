"""Payment methods, processor attempts and processor webhook events.

Cards are kept only as processor tokens (PCI SAQ-A): brand, last four digits and expiry come
from the processor, never a card number. Bank account numbers are encrypted at rest with the
environment's FIELD_ENCRYPTION_KEY and only ever shown masked.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from billing.enums import PaymentMethodType, PaymentStatus
from billing.models.documents import MONEY, Customer, Invoice, Payment
from core.encryption import EncryptedTextField
from core.money import money_text

MASK = "\u2022\u2022\u2022\u2022"


def mask(last4: str) -> str:
    return f"{MASK}{last4}" if last4 else ""


class PaymentMethod(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_methods")
    type = models.CharField(max_length=20, choices=PaymentMethodType.choices)
    # "stripe" or "" (a bank account we debit or expect wires from ourselves).
    processor = models.CharField(max_length=30, blank=True, default="")
    # The processor's customer (Stripe cus_...): off-session charges need it.
    processor_customer_id = models.CharField(max_length=100, blank=True, default="")
    # The processor's token (Stripe pm_...): the only form in which a card is kept.
    processor_token = models.CharField(max_length=100, blank=True, default="")
    card_brand = models.CharField(max_length=30, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # The login of a saved wallet at its processor (a PayPal account's email), shown so the
    # customer knows which wallet it is.
    processor_account = models.CharField(max_length=254, blank=True, default="")
    bank_account_holder = models.CharField(max_length=200, blank=True, default="")
    bank_routing_number = models.CharField(max_length=34, blank=True, default="")
    # Encrypted at rest; shown only as ``bank_account_masked``.
    bank_account_number = EncryptedTextField(blank=True, default="")
    bank_account_last4 = models.CharField(max_length=4, blank=True, default="")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Removed methods are kept (attempts and history refer to them); they are never charged.
    detached_at = models.DateTimeField(null=True, blank=True)
    # When the processor confirmed the removed card is off its customer too (Stripe detach,
    # made after the removal commits); empty while pending, and for what is never sent.
    processor_detached_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-is_default", "-created_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=("customer",),
                condition=Q(is_default=True, detached_at__isnull=True),
                name="payment_method_one_default",
            ),
            models.UniqueConstraint(
                fields=("processor", "processor_token"),
                condition=~Q(processor_token=""),
                name="payment_method_token_once",
            ),
            # PCI SAQ-A: a card exists here only as a processor token.
            models.CheckConstraint(
                condition=~Q(type=PaymentMethodType.CREDIT_CARD)
                | (~Q(processor="") & ~Q(processor_token="")),
                name="payment_method_card_is_a_token",
            ),
            models.CheckConstraint(
                condition=Q(card_last4="") | Q(card_last4__regex=r"^[0-9]{4}$"),
                name="payment_method_card_last4_digits",
            ),
            models.CheckConstraint(
                condition=Q(card_exp_month__isnull=True)
                | Q(card_exp_month__gte=1, card_exp_month__lte=12),
                name="payment_method_card_exp_month",
            ),
        ]
        indexes = [
            # The sweep's rows: removed here, not yet detached at the processor.
            models.Index(
                fields=("detached_at",),
                condition=Q(detached_at__isnull=False, processor_detached_at__isnull=True),
                name="payment_method_detach_pending",
            ),
        ]

    def __str__(self) -> str:
        if self.is_wallet:
            return f"PayPal {self.processor_account}".strip()
        if self.type == PaymentMethodType.CREDIT_CARD:
            return f"{self.card_brand or 'card'} {mask(self.card_last4)}".strip()
        if self.bank_account_last4:
            return f"{self.get_type_display()} {mask(self.bank_account_last4)}"
        return self.get_type_display()

    @property
    def is_wallet(self) -> bool:
        """A saved PayPal wallet (a payment token charged without the payer)."""
        return self.processor == "paypal" and bool(self.processor_customer_id)

    @property
    def bank_account_masked(self) -> str:
        return mask(self.bank_account_last4)

    @property
    def is_active(self) -> bool:
        return self.detached_at is None


def attempt_key() -> str:
    return f"bo_attempt_{uuid.uuid4().hex}"


class AttemptStatus(models.TextChoices):
    PENDING = PaymentStatus.PENDING.value, PaymentStatus.PENDING.label
    SUCCEEDED = PaymentStatus.SUCCEEDED.value, PaymentStatus.SUCCEEDED.label
    FAILED = PaymentStatus.FAILED.value, PaymentStatus.FAILED.label
    UNKNOWN = PaymentStatus.UNKNOWN.value, PaymentStatus.UNKNOWN.label


OPEN_ATTEMPT = (AttemptStatus.PENDING, AttemptStatus.UNKNOWN)


class ProcessorAttempt(FSMModelMixin, models.Model):
    """One try at collecting money through a processor, whatever its outcome.

    Written (pending) and committed before the processor is called, so a crash after the
    processor charged still leaves a row that a webhook or the resolution task completes.
    """

    processor = models.CharField(max_length=30)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, related_name="attempts"
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="attempts"
    )
    currency = models.CharField(max_length=3)
    amount = MoneyField(default=Decimal, **MONEY)
    # What the processor was asked for, in the currency's minor units (USD 35.20 -> 3520).
    amount_minor = models.BigIntegerField()
    # A charge of part of what is due: [{"invoice": id, "amount": "12.50"}, ...], which the
    # payment is allocated to on success; empty: what was due on ``invoice``.
    allocations = models.JSONField(default=list, blank=True)
    status = FSMField(
        max_length=20, choices=AttemptStatus.choices, default=AttemptStatus.PENDING, protected=True
    )
    # Sent as the processor's Idempotency-Key and in its metadata: a retry never charges twice.
    idempotency_key = models.CharField(max_length=100, unique=True, default=attempt_key)
    processor_intent_id = models.CharField(max_length=200, blank=True, default="")
    processor_charge_id = models.CharField(max_length=200, blank=True, default="")
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    # A payment on the processor's own page (hosted invoice page): Stripe's Checkout Session
    # id (its PaymentIntent comes later), and the page the payer was sent to, so a second
    # click continues the same checkout rather than opening another.
    checkout_id = models.CharField(max_length=200, blank=True, default="")
    checkout_url = models.URLField(max_length=2000, blank=True, default="")
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="processor_attempt"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    check_count = models.PositiveIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [("charge_invoice", "Can charge invoices through a payment processor")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="attempt_amount_positive"),
            # One charge in flight per invoice: a double click cannot charge twice.
            models.UniqueConstraint(
                fields=("invoice",),
                condition=Q(status__in=[s.value for s in OPEN_ATTEMPT]),
                name="attempt_one_open_per_invoice",
            ),
            models.UniqueConstraint(
                fields=("processor", "processor_intent_id"),
                condition=~Q(processor_intent_id=""),
                name="attempt_intent_once",
            ),
            models.CheckConstraint(
                condition=~Q(status=AttemptStatus.SUCCEEDED) | Q(payment__isnull=False),
                name="attempt_succeeded_has_payment",
            ),
        ]
        indexes = [models.Index(fields=("status", "created_at"))]

    def __str__(self) -> str:
        return f"{self.processor} attempt {self.pk} {money_text(self.amount)} ({self.status})"

    # Transitions: a success is final; a failure may still turn out a success (a webhook
    # arriving after a decline of the same intent, retried); an unknown resolves either way.
    @transition(
        field=status,
        source=[AttemptStatus.PENDING, AttemptStatus.UNKNOWN, AttemptStatus.FAILED],
        target=AttemptStatus.SUCCEEDED,
    )
    def succeed(self, *, payment: Payment) -> None:
        self.payment = payment
        self.failure_code = ""
        self.failure_message = ""
        self.completed_at = timezone.now()

    @transition(
        field=status,
        source=[AttemptStatus.PENDING, AttemptStatus.UNKNOWN, AttemptStatus.FAILED],
        target=AttemptStatus.FAILED,
    )
    def fail(self, *, code: str, message: str) -> None:
        self.failure_code = code[:100]
        self.failure_message = message[:500]
        self.completed_at = timezone.now()

    @transition(field=status, source=AttemptStatus.PENDING, target=AttemptStatus.UNKNOWN)
    def lose_track(self, *, message: str) -> None:
        self.failure_message = message[:500]


class WebhookEvent(models.Model):
    """A processor's event, stored once per id: a replay is acknowledged and not applied."""

    provider = models.CharField(max_length=30)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What applying it did ("payment 12 recorded", "stored", "ignored: ...") or why it failed.
    outcome = models.CharField(max_length=500, blank=True, default="")
    payload = models.JSONField()

    class Meta:
        ordering = ("-received_at", "-pk")
        constraints = [
            models.UniqueConstraint(fields=("provider", "event_id"), name="webhook_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"
