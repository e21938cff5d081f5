"""The double-entry ledger: chart of accounts, journal entries and their lines, period locks.

Entries are append-only. On PostgreSQL the migrations add triggers that make an unbalanced
entry impossible to commit and refuse any UPDATE or DELETE of posted rows (see
migrations/0002_database_guards.py); the posting service checks the same rules first so the
user gets a clear error instead of a database exception.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from core.ledger.enums import AccountRole, AccountType
from core.ledger.enums import ManualEntryStatus as MS
from core.money import DecimalOptions

AMOUNT: DecimalOptions = {"max_digits": 19, "decimal_places": 4}


class Account(models.Model):
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=AccountType.choices)
    # At most one account per role: the domains post to "the AR account", not to a code.
    role = models.CharField(
        max_length=32, choices=AccountRole.choices, blank=True, null=True, unique=True
    )
    # Empty: lines in any currency; set: only that currency (e.g. a EUR bank account).
    currency = models.CharField(max_length=3, blank=True, default="")
    is_active = models.BooleanField(default=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ("code",)
        permissions = [("view_trial_balance", "Can view balances and the trial balance")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def normal_balance_is_debit(self) -> bool:
        return self.type in (AccountType.ASSET, AccountType.EXPENSE)


class JournalEntry(models.Model):
    entry_date = models.DateField(db_index=True)
    description = models.CharField(max_length=500, blank=True, default="")
    # What caused the entry ("billing.invoice:42"); the domains find their postings by it.
    source = models.CharField(max_length=120, blank=True, default="", db_index=True)
    # A retried posting with the same key returns the first entry instead of posting twice.
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    # Corrections are reversing entries; an entry can be reversed once.
    reversal_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )
    functional_currency = models.CharField(max_length=3)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # HMAC of the entry's content written by the posting service; ledger_check reports any
    # entry whose digest does not match (written or altered around the application).
    digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name_plural = "journal entries"
        ordering = ("-entry_date", "-id")
        permissions = [
            ("post_journalentry", "Can post manual journal entries"),
            ("reverse_journalentry", "Can reverse journal entries"),
        ]

    def __str__(self) -> str:
        return f"JE-{self.pk} {self.entry_date} {self.description}".strip()


class JournalLine(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    currency = models.CharField(max_length=3)
    # Debit and credit are separate non-negative columns; exactly one of them is positive.
    debit = models.DecimalField(**AMOUNT, default=Decimal(0))
    credit = models.DecimalField(**AMOUNT, default=Decimal(0))
    # The same amount in the entry's functional currency, at the rate of the entry date.
    functional_debit = models.DecimalField(**AMOUNT, default=Decimal(0))
    functional_credit = models.DecimalField(**AMOUNT, default=Decimal(0))
    memo = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ("id",)
        constraints = [
            # One positive side; or none for a functional-only line (realized FX), which
            # then has exactly one positive functional side.
            models.CheckConstraint(
                condition=(
                    Q(debit__gt=0, credit=0)
                    | Q(debit=0, credit__gt=0)
                    | Q(debit=0, credit=0, functional_debit__gt=0, functional_credit=0)
                    | Q(debit=0, credit=0, functional_debit=0, functional_credit__gt=0)
                ),
                name="ledger_line_one_positive_side",
            ),
            models.CheckConstraint(
                condition=(
                    Q(functional_debit__gte=0, functional_credit=0, debit__gt=0)
                    | Q(functional_debit=0, functional_credit__gte=0, credit__gt=0)
                    | Q(debit=0, credit=0)
                ),
                name="ledger_line_functional_same_side",
            ),
        ]
        indexes = [models.Index(fields=("account", "currency"), name="ledger_line_acct_cur")]

    def __str__(self) -> str:
        side = f"Dr {self.debit}" if self.debit else f"Cr {self.credit}"
        return f"{self.account.code} {side} {self.currency}"

    @property
    def amount(self) -> Decimal:
        """Signed amount: debits positive, credits negative."""
        return self.debit - self.credit


class ManualEntry(FSMModelMixin, models.Model):
    """A manual journal entry as its author asked for it, and what became of it.

    One at or under the system settings' ``ledger.manual_approval_threshold`` (its debits in
    the functional currency) is posted at once; a larger one waits here until someone other
    than its author approves it (segregation of duties), and is posted then. The row is the
    evidence: who asked, who decided, when, and the entry it became.
    """

    entry_date = models.DateField()
    description = models.CharField(max_length=500)
    # The lines as submitted: [{"account", "currency", "debit", "credit", "memo"}], amounts as
    # text so they stay exact.
    lines = models.JSONField()
    # The entry's debits in the functional currency at the entry date's rates: what the
    # threshold is compared with.
    amount_functional = models.DecimalField(**AMOUNT)
    functional_currency = models.CharField(max_length=3)
    status = FSMField(
        max_length=20, choices=MS.choices, default=MS.PENDING_APPROVAL, protected=True
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=400, blank=True, default="")
    journal_entry = models.OneToOneField(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="manual"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "manual entries"
        ordering = ("-created_at", "-id")
        permissions = [
            ("approve_manualentry", "Can approve or reject manual journal entries of others")
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=MS.POSTED) | Q(journal_entry__isnull=False),
                name="ledger_manualentry_posted_has_entry",
            ),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("author")),
                name="ledger_manualentry_decider_not_author",
            ),
        ]

    def __str__(self) -> str:
        return f"ME-{self.pk} {self.entry_date} {self.description}".strip()

    @transition(field=status, source=MS.PENDING_APPROVAL, target=MS.POSTED)
    def post(self) -> None:
        pass

    @transition(field=status, source=MS.PENDING_APPROVAL, target=MS.REJECTED)
    def reject(self) -> None:
        self.decided_at = timezone.now()


class PeriodLock(models.Model):
    """The books are closed up to and including ``lock_date``; the newest row is in force.

    Without ``account`` the lock closes the whole books; with one it closes that account
    only (a bank account's reconciliation signed off through a date), in one ``currency``
    of it or, empty, in all. The newest row of each scope (none; account; account and
    currency) is in force for it. Rows are only added, so the table is the lock's own
    history (who closed or reopened what).
    """

    lock_date = models.DateField()
    account = models.ForeignKey(
        "ledger.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="period_locks",
    )
    currency = models.CharField(max_length=3, blank=True, default="")
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        get_latest_by = ("created_at", "id")
        indexes = [
            models.Index(
                fields=("account", "currency", "-created_at", "-id"), name="period_lock_account"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(currency="") | models.Q(account__isnull=False),
                name="period_lock_currency_needs_account",
            ),
        ]

    def __str__(self) -> str:
        where = f" for {self.account} {self.currency}".rstrip() if self.account_id else ""
        return f"Closed through {self.lock_date}{where}"


class LedgerCheckRun(models.Model):
    """One run of ``ledger_check``: what it verified and every problem it found."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    entries_checked = models.PositiveBigIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-started_at", "-id")

    def __str__(self) -> str:
        state = "running" if self.finished_at is None else "ok" if self.ok else "PROBLEMS"
        return f"Ledger check {self.started_at:%Y-%m-%d %H:%M} {state}"


# Sums of a day's lines can exceed one line's maximum (AMOUNT): room for a billion of them.
TOTAL: DecimalOptions = {"max_digits": 28, "decimal_places": 4}
AMOUNT_COLUMNS = ("debit", "credit", "functional_debit", "functional_credit")


class AccountDayTotal(models.Model):
    """Movements of one account in one currency on one day, for balances "as of a day"
    without reading every journal line.

    Written only by the database: a trigger on ``ledger_journalline`` adds one row per
    (account, currency, entry date) of each INSERT statement's lines (migration 0011), so
    every posting path (the posting function, the batch COPY, a write around the service)
    is counted, and concurrent postings never wait for each other on a shared row. A day
    may therefore hold several rows; ``day_totals_compact`` folds them into one, and
    ``ledger_check`` verifies the totals against the lines. A balance is the sum of the
    rows up to the day.
    """

    # Indexed by the covering indexes below, which lead with it.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    currency = models.CharField(max_length=3)
    day = models.DateField()
    debit = models.DecimalField(**TOTAL, default=Decimal(0))
    credit = models.DecimalField(**TOTAL, default=Decimal(0))
    functional_debit = models.DecimalField(**TOTAL, default=Decimal(0))
    functional_credit = models.DecimalField(**TOTAL, default=Decimal(0))

    class Meta:
        indexes = [
            # Covering (PostgreSQL): balances come from the index alone.
            models.Index(
                fields=("account", "currency", "day"),
                include=AMOUNT_COLUMNS,
                name="ledger_daytotal_acct_day",
            ),
            models.Index(
                fields=("day", "account", "currency"),
                include=AMOUNT_COLUMNS,
                name="ledger_daytotal_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.currency} {self.day}: Dr {self.debit} Cr {self.credit}"


class MonthClose(models.Model):
    """One close of a calendar month: the checklist as it stood when the controller closed
    it, the period lock it set through the month's last day, and, once reopened, who reopened
    it, when and why. A month closed again after a reopening gets a new row: the rows are the
    month's close history, the newest in force."""

    period = models.DateField(help_text="The month's first day.")
    closed_at = models.DateTimeField(default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    checklist = models.JSONField(default=list)
    period_lock = models.ForeignKey(
        PeriodLock, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reopen_reason = models.CharField(max_length=300, blank=True, default="")

    history = HistoricalRecords()

    class Meta:
        ordering = ("-period", "-closed_at", "-pk")
        verbose_name = "month-end close"
        permissions = [
            ("close_month", "Can close a month (the checklist green)"),
            ("reopen_month", "Can reopen a closed month, with a reason"),
        ]
        constraints = [
            # One close in force per month: a month is closed again only once reopened.
            models.UniqueConstraint(
                fields=("period",),
                condition=Q(reopened_at__isnull=True),
                name="month_close_one_in_force",
            ),
            models.CheckConstraint(
                condition=Q(period__day=1), name="month_close_period_is_a_first_day"
            ),
        ]

    def __str__(self) -> str:
        state = "reopened" if self.reopened_at else "closed"
        return f"{self.period:%Y-%m} {state}"
