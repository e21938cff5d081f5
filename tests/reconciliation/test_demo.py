"""The reconciliation demo data: seeded through the services once (a second seed adds
nothing); the engine has matched what it could, the rest waits as a suggestion or an
exception; the books still agree with the sub-ledgers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.checks import ar_subledger_check
from core.demo import demo_seed
from core.ledger.checks import ledger_check_run
from reconciliation.demo import ACCOUNT_NAME
from reconciliation.enums import ExceptionKind, MatchStatus, StatementLineStatus
from reconciliation.models import AuditEvent, BankAccount, Match, ReconciliationException
from reconciliation.selectors_close import reconciliation_report

pytestmark = pytest.mark.django_db


def test_demo_seeded_once_with_matches_a_suggestion_and_an_exception() -> None:
    # given the demo seeded (every app's seeder, as `make run` does)
    today = timezone.localdate()
    first = demo_seed(today=today, scale=0)
    report = next(r for r in first.app_reports if r.startswith("Reconciliation demo data"))
    assert "5 statement lines, 3 matched automatically, 1 suggested, 1 unmatched" in report
    events = AuditEvent.objects.count()

    # when it is seeded again
    second = demo_seed(today=today, scale=0)

    # then nothing new was written
    assert "Reconciliation demo data: already there." in second.app_reports
    assert AuditEvent.objects.count() == events
    account = BankAccount.objects.get(name=ACCOUNT_NAME)
    statuses = sorted(account.statement_lines.values_list("status", flat=True))
    assert statuses == sorted(
        [StatementLineStatus.MATCHED] * 3
        + [StatementLineStatus.SUGGESTED, StatementLineStatus.UNMATCHED]
    )
    assert Match.objects.filter(status=MatchStatus.APPLIED).count() == 3
    assert list(ReconciliationException.objects.values_list("kind", flat=True)) == [
        ExceptionKind.UNMATCHED_LINE
    ]
    # and the books agree: ledger check clean, the report explains every difference
    assert ar_subledger_check() == []
    assert ledger_check_run().ok
    rec = reconciliation_report(
        bank_account_id=account.pk,
        period_start=today - timedelta(days=30),
        period_end=today,
    )
    assert rec.unexplained == 0
