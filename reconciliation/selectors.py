"""Reads for the API and admin: bank accounts, statements with their lines, import logs."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from reconciliation.models import BankAccount, ImportLog, Statement, StatementLine


def bank_account_list(*, active: bool | None = None) -> QuerySet[BankAccount]:
    qs = BankAccount.objects.select_related("ledger_account")
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs.order_by("name", "pk")


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
