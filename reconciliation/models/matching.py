"""The matching engine's records: runs, user-defined rules, learned counterparty aliases, and
matches (proposed, applied, rejected or undone) with the bank lines and targets they join."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.ledger.models import Account
from reconciliation.enums import (
    AliasKind,
    MatchStatus,
    MatchTargetKind,
    ReconciliationRunStatus,
    RuleSign,
    rule_label,
)
from reconciliation.models.common import AMOUNT, user_fk
from reconciliation.models.statements import BankAccount, StatementLine


class ReconciliationRun(models.Model):
    """One pass of the matching engine over a bank account's unmatched lines (a Celery task)."""

    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="reconciliation_runs"
    )
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=10,
        choices=ReconciliationRunStatus.choices,
        default=ReconciliationRunStatus.QUEUED,
    )
    auto_matched = models.PositiveIntegerField(default=0)
    suggested = models.PositiveIntegerField(default=0)
    unmatched = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by = user_fk()

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(period_start__isnull=True)
                | Q(period_end__isnull=True)
                | Q(period_start__lte=F("period_end")),
                name="recon_run_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} {self.bank_account_id} {self.status}"


class MatchRule(models.Model):
    """A user-defined rule: lines whose text contains a phrase (plain text, no regex) or whose
    counterparty equals a value, optionally within an amount range and sign, post to an
    account (bank fees, interest)."""

    name = models.CharField(max_length=100)
    # Lower numbers are tried first.
    priority = models.PositiveIntegerField(default=100)
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="match_rules"
    )
    text_contains = models.CharField(max_length=200, blank=True, default="")
    counterparty_name_equals = models.CharField(max_length=200, blank=True, default="")
    counterparty_account_equals = models.CharField(max_length=64, blank=True, default="")
    amount_min = models.DecimalField(**AMOUNT, null=True, blank=True)
    amount_max = models.DecimalField(**AMOUNT, null=True, blank=True)
    sign = models.CharField(max_length=6, choices=RuleSign.choices, default=RuleSign.ANY)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()

    history = HistoricalRecords()

    class Meta:
        ordering = ("priority", "pk")
        constraints = [
            # A rule with no condition would swallow every line.
            models.CheckConstraint(
                condition=~Q(text_contains="")
                | ~Q(counterparty_name_equals="")
                | ~Q(counterparty_account_equals=""),
                name="match_rule_has_condition",
            ),
            models.CheckConstraint(
                condition=Q(amount_min__isnull=True)
                | Q(amount_max__isnull=True)
                | Q(amount_min__lte=F("amount_max")),
                name="match_rule_amount_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CounterpartyAlias(models.Model):
    """Learned from matches confirmed by hand: this counterparty name or account is this
    customer (or vendor)."""

    kind = models.CharField(max_length=10, choices=AliasKind.choices)
    # Normalised (reconciliation.matching.normalize_name / normalize_account).
    key = models.CharField(max_length=200)
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    vendor = models.ForeignKey(
        "payables.Vendor", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    confirmations = models.PositiveIntegerField(default=1)
    taught_by = user_fk()
    taught_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ("kind", "key")
        constraints = [
            models.UniqueConstraint(fields=("kind", "key"), name="alias_once"),
            models.CheckConstraint(
                condition=Q(customer__isnull=True) ^ Q(vendor__isnull=True),
                name="alias_one_party",
            ),
        ]
        verbose_name_plural = "counterparty aliases"

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


class Match(models.Model):
    """Bank lines explained by invoices, a payment, a payment run or a ledger account."""

    bank_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="matches")
    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.PROTECT, null=True, blank=True, related_name="matches"
    )
    status = models.CharField(
        max_length=10, choices=MatchStatus.choices, default=MatchStatus.PROPOSED
    )
    confidence = models.DecimalField(max_digits=5, decimal_places=4)
    # Which engine rule proposed it (reference, amount_date_counterparty, fuzzy_name, ...).
    rule = models.CharField(max_length=40)
    match_rule = models.ForeignKey(
        MatchRule, on_delete=models.PROTECT, null=True, blank=True, related_name="matches"
    )
    reason = models.TextField()
    # Signed like the bank lines.
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = user_fk()
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = user_fk()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = user_fk()
    undo_reason = models.TextField(blank=True, default="")
    # What applying posted: the payment recorded (billing posted it) or the rule's entries.
    payment = models.ForeignKey(
        "billing.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    journal_entries = models.ManyToManyField("ledger.JournalEntry", blank=True, related_name="+")

    history = HistoricalRecords(excluded_fields=["journal_entries"])

    class Meta:
        verbose_name_plural = "matches"
        ordering = ("-created_at", "-pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0, confidence__lte=1), name="match_confidence_0_1"
            ),
        ]
        indexes = [models.Index(fields=("bank_account", "status"), name="match_acct_status")]
        permissions = [
            ("decide_match", "Can accept, reject, undo and make matches"),
            ("start_reconciliation", "Can start reconciliation runs"),
        ]

    def __str__(self) -> str:
        return f"Match {self.pk}: {rule_label(self.rule)}, {self.get_status_display().lower()}"


class MatchLine(models.Model):
    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey(StatementLine, on_delete=models.PROTECT, related_name="match_lines")
    amount = models.DecimalField(**AMOUNT)
    # True while the match is proposed or applied: a line is in at most one live match.
    is_live = models.BooleanField(default=True)

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.UniqueConstraint(
                fields=("line",), condition=Q(is_live=True), name="match_line_live_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line_id} in match {self.match_id}"


class MatchTarget(models.Model):
    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="targets")
    kind = models.CharField(max_length=20, choices=MatchTargetKind.choices)
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payment = models.ForeignKey(
        "billing.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payment_run = models.ForeignKey(
        "payables.PaymentRun", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payment_run_item = models.ForeignKey(
        "payables.PaymentRunItem",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payout = models.ForeignKey(
        "reconciliation.Payout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="match_targets",
    )
    # Positive: what of the target this match settles.
    amount = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind=MatchTargetKind.INVOICE, invoice__isnull=False)
                    | Q(kind=MatchTargetKind.PAYMENT, payment__isnull=False)
                    | Q(kind=MatchTargetKind.PAYMENT_RUN, payment_run__isnull=False)
                    | Q(kind=MatchTargetKind.PAYMENT_RUN_ITEM, payment_run_item__isnull=False)
                    | Q(kind=MatchTargetKind.ACCOUNT, account__isnull=False)
                    | Q(kind=MatchTargetKind.PAYOUT, payout__isnull=False)
                ),
                name="match_target_has_object",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"
