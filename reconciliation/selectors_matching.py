"""Reads of matching: runs with their results, the suggestion queue, rules."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from reconciliation.models import Match, MatchLine, MatchRule, MatchTarget, ReconciliationRun


def match_list(
    *, status: str | None = None, bank_account_id: int | None = None, run_id: int | None = None
) -> QuerySet[Match]:
    """Matches with their lines and targets prefetched (two queries whatever the page)."""
    qs = Match.objects.prefetch_related(
        Prefetch("lines", queryset=MatchLine.objects.order_by("pk")),
        Prefetch("targets", queryset=MatchTarget.objects.order_by("pk")),
    )
    if status:
        qs = qs.filter(status=status)
    if bank_account_id is not None:
        qs = qs.filter(bank_account_id=bank_account_id)
    if run_id is not None:
        qs = qs.filter(run_id=run_id)
    return qs.order_by("-confidence", "pk")


def run_get(*, run_id: int) -> ReconciliationRun:
    """Raises ReconciliationRun.DoesNotExist."""
    return ReconciliationRun.objects.get(pk=run_id)


def rule_list() -> QuerySet[MatchRule]:
    return MatchRule.objects.select_related("account").order_by("priority", "pk")
