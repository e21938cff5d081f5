"""The shared kernel's tables: FX rates, document counters, idempotency records, task failures,
second-factor devices (``core.otp``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

# The second-factor devices live beside their verification in core.otp; imported here so
# they are registered as core's models.
from core.otp import AuthenticatorDevice, RecoveryCode, RecoveryCodeDevice  # noqa: F401


class FxRate(models.Model):
    """1 ``base_currency`` = ``rate`` ``quote_currency`` from ``rate_date`` on."""

    base_currency = models.CharField(max_length=3)
    quote_currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=24, decimal_places=10)
    rate_date = models.DateField()
    source = models.CharField(max_length=60, blank=True, default="manual")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        verbose_name = "FX rate"
        ordering = ("-rate_date", "base_currency", "quote_currency")
        constraints = [
            models.UniqueConstraint(
                fields=("base_currency", "quote_currency", "rate_date"), name="fx_rate_one_per_day"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
            models.CheckConstraint(
                condition=~Q(base_currency=F("quote_currency")), name="fx_rate_two_currencies"
            ),
        ]

    def __str__(self) -> str:
        return f"1 {self.base_currency} = {self.rate} {self.quote_currency} ({self.rate_date})"


class DocumentCounter(models.Model):
    """The last number issued in a series for a year; locked while a number is taken.

    Gapless: tax law requires consecutive invoice numbers, which a database sequence cannot
    promise (a rolled-back transaction burns its value). The row lock serialises issuers.
    """

    series = models.CharField(max_length=20)
    year = models.PositiveIntegerField()
    last_number = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("series", "year"), name="document_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed for retries."""

    # Hash of the credential (token or session user) and the endpoint: keys never cross them.
    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=120, blank=True, default="")
    body = models.BinaryField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("scope", "key"), name="idempotency_scope_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} -> {self.status_code}"


class TaskFailureStatus(models.TextChoices):
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed (gave up)"
    RECOVERED = "recovered", "Recovered after retries"


class TaskFailure(models.Model):
    """A background task that failed: still retrying, given up, or recovered (RELIABILITY.md F3).

    Written by the worker's task signals (``core.celery``), one row per task id, so an operator
    sees every task that gave up after its bounded retries, with what it was called with.
    """

    task_name = models.CharField(max_length=200, db_index=True)
    task_id = models.CharField(max_length=255, unique=True)
    # Arguments with secrets and card numbers masked: PCI forbids storing a card number (C1).
    arguments = models.JSONField(default=dict, blank=True)
    exception_class = models.CharField(max_length=255, blank=True, default="")
    exception_message = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=20,
        choices=TaskFailureStatus.choices,
        default=TaskFailureStatus.RETRYING,
        db_index=True,
    )
    first_failed_at = models.DateTimeField(default=timezone.now)
    last_failed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-last_failed_at",)
        constraints = [
            models.CheckConstraint(condition=Q(attempts__gte=1), name="task_failure_attempts"),
            models.CheckConstraint(
                condition=Q(last_failed_at__gte=F("first_failed_at")),
                name="task_failure_times_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}] {self.status} after {self.attempts} attempt(s)"


class DiagnosticEffect(models.Model):
    """The effect of the ``core.diagnostics_slow_effect`` task, which operators and the fault
    tests use to show that a task killed or redelivered mid-run is neither lost nor applied
    twice (RELIABILITY.md F1, F2)."""

    key = models.CharField(max_length=100, unique=True)
    # Runs started and runs finished: a redelivered task shows more starts than finishes.
    attempts = models.PositiveIntegerField(default=0)
    completions = models.PositiveIntegerField(default=0)
    # The effect itself: set once, by the first run that gets that far.
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        state = "applied" if self.applied_at else "not applied"
        return f"{self.key}: {state}, {self.attempts} run(s)"


class WorkspacePermission(models.Model):
    """Holds the workspace's own permissions, which belong to no one model (no table).

    ``export_lists``: export a filtered admin list to CSV or XLSX (core.admin_export).
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = (("export_lists", "Can export lists to CSV and XLSX"),)

    def __str__(self) -> str:
        return "Workspace permissions"


class FormSubmission(models.Model):
    """An admin form that moves money or posts, sent once: its one-time token is recorded in
    the transaction that does the work, so the same form sent again (a double click, a
    browser's retry) finds the row and does nothing (core.admin_once)."""

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    def __str__(self) -> str:
        return f"Form sent at {self.created_at:%Y-%m-%d %H:%M}"


class ApiTokenScope(models.Model):
    """What one API token may call (``core.api.scopes``): ``["billing:write", "ledger:read"]``.

    A token without a scope row calls nothing: ``manage.py create_api_token`` always writes
    one, so a token created around it fails safe.
    """

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="scope"
    )
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return ", ".join(self.scopes)
