"""The reconciliation exceptions queue: what the engine could not explain, for a person to
look at, with an assignee and a resolution note."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from reconciliation.enums import ExceptionKind, ExceptionStatus
from reconciliation.models.common import AMOUNT, user_fk
from reconciliation.models.statements import BankAccount, Statement, StatementLine


class ReconciliationException(models.Model):
    kind = models.CharField(max_length=24, choices=ExceptionKind.choices)
    status = models.CharField(
        max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN
    )
    # One exception per problem: kind and the ids involved ("unmatched_line:42").
    key = models.CharField(max_length=200)
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions"
    )
    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions"
    )
    line = models.ForeignKey(
        StatementLine, on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions"
    )
    # The other line of a suspected duplicate.
    other_line = models.ForeignKey(
        StatementLine, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payout = models.ForeignKey(
        "reconciliation.Payout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exceptions",
    )
    match = models.ForeignKey(
        "reconciliation.Match",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exceptions",
    )
    amount = models.DecimalField(**AMOUNT, null=True, blank=True)
    difference = models.DecimalField(**AMOUNT, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    message = models.TextField()
    detected_at = models.DateTimeField(default=timezone.now)
    assignee = user_fk()
    assigned_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = user_fk()

    history = HistoricalRecords()

    class Meta:
        ordering = ("status", "-detected_at", "-pk")
        constraints = [
            models.UniqueConstraint(fields=("key",), name="recon_exception_once"),
            models.CheckConstraint(
                condition=Q(status=ExceptionStatus.OPEN)
                | (Q(resolved_at__isnull=False) & ~Q(resolution_note="")),
                name="recon_exception_resolved_with_note",
            ),
        ]
        indexes = [
            models.Index(fields=("status", "kind"), name="recon_exc_status_kind"),
            models.Index(fields=("bank_account", "status"), name="recon_exc_acct_status"),
        ]
        permissions = [("resolve_exception", "Can assign and resolve reconciliation exceptions")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message[:60]}"
