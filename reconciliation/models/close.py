"""Period sign-off of a bank account's reconciliation, and the reconciliation audit trail."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from reconciliation.enums import AuditAction, SignOffStatus
from reconciliation.models.common import AMOUNT, user_fk
from reconciliation.models.statements import BankAccount


class SignOff(models.Model):
    """A controller's sign-off of one bank account's reconciliation for a period: the
    statement and book balances and the reconciling items as they were signed, and the
    ledger lock it set on the account through ``period_end``."""

    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="sign_offs"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3)
    statement_balance = models.DecimalField(**AMOUNT)
    book_balance = models.DecimalField(**AMOUNT)
    # Statement balance minus book balance minus the reconciling items: zero when signed.
    unexplained = models.DecimalField(**AMOUNT, default=0)
    # The report as signed (reconciling items with their amounts), kept as it was.
    report = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=SignOffStatus.choices, default=SignOffStatus.SIGNED
    )
    note = models.TextField(blank=True, default="")
    signed_at = models.DateTimeField(default=timezone.now)
    signed_by = user_fk()
    period_lock = models.ForeignKey(
        "ledger.PeriodLock", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = user_fk()
    reopen_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("-period_end", "-pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(period_start__lte=F("period_end")), name="sign_off_period_ordered"
            ),
            models.UniqueConstraint(
                fields=("bank_account", "period_end"),
                condition=Q(status=SignOffStatus.SIGNED),
                name="sign_off_once_per_period",
            ),
        ]
        permissions = [("sign_off_reconciliation", "Can sign off bank reconciliations")]

    def __str__(self) -> str:
        return f"{self.bank_account} {self.period_start}..{self.period_end} {self.status}"


class AuditEvent(models.Model):
    """Append-only (on PostgreSQL a trigger refuses UPDATE and DELETE): every import, feed
    sync, match, unmatch, rule change, exception decision and sign-off, with who, when, why."""

    action = models.CharField(max_length=24, choices=AuditAction.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = user_fk()
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What it is about, as "model:id" (e.g. "match:42", "statement:7").
    subject = models.CharField(max_length=80, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-at", "-pk")
        indexes = [
            models.Index(fields=("bank_account", "at"), name="recon_audit_acct_at"),
            models.Index(fields=("subject",), name="recon_audit_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()} {self.subject}"
