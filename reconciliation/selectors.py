"""Reads for the API, admin and tasks: bank accounts, statements with their lines, import
logs, bank feeds and their syncs, payouts, the exceptions queue."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count, Prefetch, QuerySet

from core.exceptions import NotFound
from reconciliation.enums import FeedStatus
from reconciliation.models import (
    BankAccount,
    BankFeed,
    FeedSync,
    ImportLog,
    Payout,
    ReconciliationException,
    Statement,
    StatementLine,
)


def bank_account_list(*, active: bool | None = None) -> QuerySet[BankAccount]:
    qs = BankAccount.objects.select_related("ledger_account")
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs.order_by("name", "pk")


def bank_ledger_account_ids() -> list[int]:
    """The ledger accounts of the bank accounts (active or not) under reconciliation: the
    ledger refuses manual lines on them (core.ledger.ownership)."""
    return list(BankAccount.objects.values_list("ledger_account_id", flat=True).distinct())


def statement_list(
    *, bank_account_id: int | None = None, format: str | None = None
) -> QuerySet[Statement]:
    qs = Statement.objects.select_related("bank_account").annotate(transactions=Count("lines"))
    if bank_account_id is not None:
        qs = qs.filter(bank_account_id=bank_account_id)
    if format:
        qs = qs.filter(format=format)
    return qs.order_by("-imported_at", "-pk")


def statement_get(*, statement_id: int) -> Statement:
    """One statement with its lines prefetched (raises Statement.DoesNotExist)."""
    return (
        Statement.objects.select_related("bank_account")
        .annotate(transactions=Count("lines"))
        .prefetch_related(Prefetch("lines", queryset=StatementLine.objects.order_by("position")))
        .get(pk=statement_id)
    )


def import_log_list(*, bank_account_id: int | None = None) -> QuerySet[ImportLog]:
    qs = ImportLog.objects.select_related("bank_account", "actor")
    if bank_account_id is not None:
        qs = qs.filter(bank_account_id=bank_account_id)
    return qs


# --- bank feeds


def bank_feed_list(*, bank_account_id: int | None = None) -> QuerySet[BankFeed]:
    qs = BankFeed.objects.select_related("bank_account")
    if bank_account_id is not None:
        qs = qs.filter(bank_account_id=bank_account_id)
    return qs.order_by("bank_account__name", "pk")


def bank_feed_get(*, feed_id: int) -> BankFeed:
    feed = bank_feed_list().filter(pk=feed_id).first()
    if feed is None:
        raise NotFound(f"No bank feed {feed_id}.")
    return feed


def feed_sync_list(*, feed_id: int) -> QuerySet[FeedSync]:
    return FeedSync.objects.filter(feed_id=feed_id).order_by("-started_at", "-pk")


def feeds_due() -> list[int]:
    """Feeds the schedule syncs: active ones and failing ones (a failing feed keeps being
    tried, so it recovers by itself once the provider or the bank is back)."""
    return list(
        BankFeed.objects.filter(status__in=(FeedStatus.ACTIVE, FeedStatus.ERROR))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# --- payouts


def payout_list(
    *, status: str | None = None, currency: str | None = None, provider: str | None = None
) -> QuerySet[Payout]:
    """Payouts of every processor (Stripe payouts, PayPal and Coinbase Commerce settlements)."""
    qs = Payout.objects.all()
    if provider:
        qs = qs.filter(provider=provider)
    if status:
        qs = qs.filter(status=status)
    if currency:
        qs = qs.filter(currency=currency.upper())
    return qs.order_by("-arrival_date", "-pk")


def payout_get(*, payout_id: int) -> Payout:
    """One payout with its items (two queries); raises NotFound."""
    payout = Payout.objects.prefetch_related("items").filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"No payout {payout_id}.")
    return payout


# --- exceptions


def exception_list(
    *,
    kind: str | None = None,
    status: str | None = None,
    bank_account_id: int | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    ids: Sequence[int] | None = None,
) -> QuerySet[ReconciliationException]:
    """The queue: open first, newest first; related rows joined (no N+1 in lists)."""
    qs = ReconciliationException.objects.select_related("bank_account", "assignee", "resolved_by")
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if bank_account_id is not None:
        qs = qs.filter(bank_account_id=bank_account_id)
    if assignee_id is not None:
        qs = qs.filter(assignee_id=assignee_id)
    if unassigned:
        qs = qs.filter(assignee__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.order_by("status", "-detected_at", "-pk")
