"""Bank accounts, their imported statements and statement lines, and the import audit log.

Statement lines are the raw material of reconciliation: the matching engine (built later)
reads amount, dates, texts, counterparty and end-to-end id, and moves ``status`` on.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.encryption import EncryptedTextField, mask_tail
from core.ledger.models import Account
from reconciliation.enums import (
    AliasKind,
    ImportResult,
    MatchStatus,
    MatchTargetKind,
    ReconciliationRunStatus,
    RuleSign,
    StatementControl,
    StatementFormatChoice,
    StatementLineStatus,
)

AMOUNT = {"max_digits": 19, "decimal_places": 4}


class BankAccount(models.Model):
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    # The asset account the bank's movements post to (PROTECT: the ledger keeps its history).
    ledger_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="bank_accounts"
    )
    bank_name = models.CharField(max_length=200, blank=True, default="")
    bic = models.CharField(max_length=11, blank=True, default="")
    # Encrypted at rest (FIELD_ENCRYPTION_KEY); shown only masked.
    account_number = EncryptedTextField(blank=True, default="")
    iban = EncryptedTextField(blank=True, default="")
    # The last four characters, for display and lists without decrypting.
    account_number_last4 = models.CharField(max_length=4, blank=True, default="")
    iban_last4 = models.CharField(max_length=4, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords(excluded_fields=["account_number", "iban"])

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="bank_account_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        number = self.iban_masked or self.account_number_masked
        return f"{self.name} {number}".strip()

    @property
    def account_number_masked(self) -> str:
        return mask_tail(self.account_number_last4) if self.account_number_last4 else ""

    @property
    def iban_masked(self) -> str:
        return mask_tail(self.iban_last4) if self.iban_last4 else ""


class CsvMapping(models.Model):
    """A bank account's saved CSV column mapping (``reconciliation.importers.CsvMapping``)."""

    bank_account = models.OneToOneField(
        BankAccount, on_delete=models.CASCADE, related_name="csv_mapping"
    )
    name = models.CharField(max_length=100, default="custom")
    # The mapping's fields as JSON (delimiter, encoding, date format, columns...).
    config = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.name} ({self.bank_account_id})"


class Statement(models.Model):
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="statements"
    )
    format = models.CharField(max_length=10, choices=StatementFormatChoice.choices)
    statement_id = models.CharField(max_length=100, blank=True, default="")
    sequence = models.CharField(max_length=40, blank=True, default="")
    account_identifier = models.CharField(max_length=100, blank=True, default="")
    currency = models.CharField(max_length=3)
    opening_balance = models.DecimalField(**AMOUNT, null=True, blank=True)
    closing_balance = models.DecimalField(**AMOUNT, null=True, blank=True)
    opening_date = models.DateField(null=True, blank=True)
    closing_date = models.DateField(null=True, blank=True)
    control = models.CharField(max_length=20, choices=StatementControl.choices)
    # The file it came from: one import per file hash and position in the file.
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_sha256 = models.CharField(max_length=64)
    file_position = models.PositiveIntegerField(default=1)
    # The same statement again (in another file) is recognised by its content.
    fingerprint = models.CharField(max_length=64)
    line_count = models.PositiveIntegerField(default=0)
    # Lines of the statement that were already known (another file or a feed).
    skipped_line_count = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(default=timezone.now, editable=False)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-imported_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=("bank_account", "file_sha256", "file_position"),
                name="statement_file_once",
            ),
            models.UniqueConstraint(
                fields=("bank_account", "fingerprint"), name="statement_content_once"
            ),
            # An opening balance is only kept with the closing one it was checked against.
            models.CheckConstraint(
                condition=Q(opening_balance__isnull=True) | Q(closing_balance__isnull=False),
                name="statement_opening_has_closing",
            ),
        ]
        indexes = [
            models.Index(fields=("bank_account", "closing_date"), name="statement_acct_date")
        ]
        permissions = [("import_statement", "Can import bank statements")]

    def __str__(self) -> str:
        return f"{self.get_format_display()} {self.statement_id or self.pk} ({self.currency})"

    @property
    def movement(self) -> Decimal | None:
        if self.opening_balance is None or self.closing_balance is None:
            return None
        return self.closing_balance - self.opening_balance


class StatementLine(models.Model):
    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="lines")
    # Denormalised from the statement so the dedup constraint can be per bank account.
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="statement_lines"
    )
    position = models.PositiveIntegerField()
    booking_date = models.DateField()
    value_date = models.DateField(null=True, blank=True)
    # Signed: money into the account positive, out of it negative.
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    description = models.TextField(blank=True, default="")
    counterparty_name = models.CharField(max_length=200, blank=True, default="")
    counterparty_account = models.CharField(max_length=64, blank=True, default="")
    bank_reference = models.CharField(max_length=64, blank=True, default="")
    end_to_end_id = models.CharField(max_length=64, blank=True, default="")
    transaction_code = models.CharField(max_length=32, blank=True, default="")
    source = models.CharField(max_length=100, blank=True, default="")
    raw = models.TextField(blank=True, default="")
    # sha256 of date, amount, currency and the strongest reference (importers.fingerprint).
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(
        max_length=20, choices=StatementLineStatus.choices, default=StatementLineStatus.UNMATCHED
    )

    class Meta:
        ordering = ("booking_date", "statement_id", "position")
        constraints = [
            models.UniqueConstraint(
                fields=("bank_account", "fingerprint"), name="statement_line_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=("bank_account", "status", "booking_date"), name="line_acct_status"
            ),
            models.Index(fields=("end_to_end_id",), name="line_e2e"),
        ]

    def __str__(self) -> str:
        return f"{self.booking_date} {self.amount} {self.currency} {self.description[:40]}"


class ImportLog(models.Model):
    """Every import attempt, refused ones included: who, when, which file, what came of it."""

    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="import_logs", null=True, blank=True
    )
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveIntegerField(default=0)
    format = models.CharField(max_length=10, blank=True, default="")
    result = models.CharField(max_length=20, choices=ImportResult.choices)
    error_code = models.CharField(max_length=40, blank=True, default="")
    message = models.TextField(blank=True, default="")
    statement_count = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    skipped_line_count = models.PositiveIntegerField(default=0)
    statements = models.ManyToManyField(Statement, blank=True, related_name="import_logs")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.file_name or self.file_sha256[:12]} {self.result}"


def _user_fk(related_name: str = "+") -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name=related_name,
    )


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
    requested_by = _user_fk()

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
    created_by = _user_fk()

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
    taught_by = _user_fk()
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
    created_by = _user_fk()
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = _user_fk()
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = _user_fk()
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = _user_fk()
    undo_reason = models.TextField(blank=True, default="")
    # What applying posted: the payment recorded (billing posted it) or the rule's entries.
    payment = models.ForeignKey(
        "billing.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    journal_entries = models.ManyToManyField("ledger.JournalEntry", blank=True, related_name="+")

    history = HistoricalRecords(excluded_fields=["journal_entries"])

    class Meta:
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
        return f"Match {self.pk} {self.rule} {self.status}"


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
                ),
                name="match_target_has_object",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"
