"""Reconciliation models, one module per part: statements, matching, feeds, payouts,
exceptions, and sign-off with the audit trail."""

from reconciliation.models.close import AuditEvent, SignOff
from reconciliation.models.exceptions import ReconciliationException
from reconciliation.models.feeds import BankFeed, FeedSync
from reconciliation.models.matching import (
    CounterpartyAlias,
    Match,
    MatchLine,
    MatchRule,
    MatchTarget,
    ReconciliationRun,
)
from reconciliation.models.payouts import Payout, PayoutItem
from reconciliation.models.statements import (
    BankAccount,
    CsvMapping,
    ImportLog,
    Statement,
    StatementLine,
)

__all__ = [
    "AuditEvent",
    "BankAccount",
    "BankFeed",
    "CounterpartyAlias",
    "CsvMapping",
    "FeedSync",
    "ImportLog",
    "Match",
    "MatchLine",
    "MatchRule",
    "MatchTarget",
    "Payout",
    "PayoutItem",
    "ReconciliationException",
    "ReconciliationRun",
    "SignOff",
    "Statement",
    "StatementLine",
]
