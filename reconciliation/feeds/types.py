"""What bank feeds return: frozen dataclasses, Decimal money, no models.

Amounts are signed as in ``ParsedLine``: money into the account positive. Each provider's own
convention is converted at the edge (Plaid: positive is money out; Yodlee: baseType).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from reconciliation.importers.types import ParsedLine


@dataclass(frozen=True)
class FeedTransaction:
    """One transaction of a bank feed. ``transaction_id`` is the provider's id, stable across
    syncs for posted transactions; a pending one that posts comes back under a new id, with
    ``pending_transaction_id`` naming the pending one (Plaid)."""

    provider: str
    transaction_id: str
    account_id: str
    booking_date: dt.date
    amount: Decimal
    currency: str
    pending: bool = False
    authorized_date: dt.date | None = None
    counterparty_name: str = ""
    description: str = ""
    pending_transaction_id: str = ""
    category: str = ""
    # The provider's JSON of the transaction, for audit and support.
    raw: str = field(default="", compare=False, repr=False)

    def to_parsed_line(self) -> ParsedLine:
        """The transaction in the shape statement imports use, so one fingerprint and one
        matching engine serve files and feeds."""
        return ParsedLine(
            booking_date=self.booking_date,
            amount=self.amount,
            currency=self.currency,
            description=self.description,
            counterparty_name=self.counterparty_name,
            bank_reference=self.transaction_id,
            source=f"{self.provider}:{self.transaction_id}",
            raw=self.raw,
        )


@dataclass(frozen=True)
class RemovedTransaction:
    transaction_id: str
    account_id: str = ""


@dataclass(frozen=True)
class SyncResult:
    """Every change since ``start_cursor``, all pages pulled. Apply ``added``, then
    ``modified``, then ``removed`` and store ``next_cursor`` in the same database transaction:
    the next sync resumes from it. An empty ``next_cursor`` means Plaid has no data yet; keep
    the old cursor."""

    start_cursor: str
    next_cursor: str
    added: tuple[FeedTransaction, ...] = ()
    modified: tuple[FeedTransaction, ...] = ()
    removed: tuple[RemovedTransaction, ...] = ()
    pages: int = 0
    # How many times the sync started over from ``start_cursor`` (mutation during pagination).
    restarts: int = 0
    # Plaid's transactions_update_status of the last page (e.g. HISTORICAL_UPDATE_COMPLETE).
    update_status: str = ""


@dataclass(frozen=True)
class FeedAccount:
    """An account as the feed reports it, with its balances (None when the bank gives none).

    For credit and loan accounts the provider's balance is the amount owed (positive)."""

    provider: str
    account_id: str
    name: str
    currency: str
    current_balance: Decimal | None
    available_balance: Decimal | None = None
    mask: str = ""
    type: str = ""
    subtype: str = ""
    institution: str = ""
    status: str = ""
    raw: str = field(default="", compare=False, repr=False)
