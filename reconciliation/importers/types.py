"""The one shape every statement parser returns: frozen dataclasses, Decimal money, no models."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from core.card_numbers import looks_like_card_number, mask_card_numbers


class StatementFormat(StrEnum):
    MT940 = "mt940"
    MT942 = "mt942"
    CAMT053 = "camt053"
    CAMT052 = "camt052"
    CAMT054 = "camt054"
    OFX = "ofx"
    BAI2 = "bai2"
    CSV = "csv"

    @property
    def label(self) -> str:
        return {
            "mt940": "SWIFT MT940",
            "mt942": "SWIFT MT942 (interim)",
            "camt053": "ISO 20022 camt.053",
            "camt052": "ISO 20022 camt.052 (intraday)",
            "camt054": "ISO 20022 camt.054 (notification)",
            "ofx": "OFX / QFX",
            "bai2": "BAI2",
            "csv": "CSV (column mapping)",
        }[self.value]


@dataclass(frozen=True)
class ParsedLine:
    """One booked movement. ``amount`` is signed: credits to the account positive."""

    booking_date: dt.date
    amount: Decimal
    currency: str
    value_date: dt.date | None = None
    description: str = ""
    counterparty_name: str = ""
    counterparty_account: str = ""
    bank_reference: str = ""
    end_to_end_id: str = ""
    transaction_code: str = ""
    # Where the line came from ("line 12", "Ntry[3]", "row 7") and its source text.
    source: str = ""
    raw: str = ""

    def __post_init__(self) -> None:
        """A card number the bank put in a line (a card payment's description, its source
        text) is kept masked: ``************4242`` (PCI DSS). An account number is masked
        only when it has a card network's form, as a bank account may pass Luhn."""
        for name in ("description", "counterparty_name", "bank_reference", "end_to_end_id", "raw"):
            value = getattr(self, name)
            masked = mask_card_numbers(value)
            if masked is not value:
                object.__setattr__(self, name, masked)
        if looks_like_card_number(self.counterparty_account):
            object.__setattr__(
                self, "counterparty_account", mask_card_numbers(self.counterparty_account)
            )


@dataclass(frozen=True)
class ParsedStatement:
    """One statement (or interim report / notification) of one account.

    ``opening_balance`` and ``closing_balance`` are None when the format carries none
    (camt.054, MT942, OFX's missing opening balance, CSV without a balance column); then
    ``control`` says which other check was applied.
    """

    format: StatementFormat
    account: str
    currency: str
    lines: tuple[ParsedLine, ...] = ()
    statement_id: str = ""
    sequence: str = ""
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    opening_date: dt.date | None = None
    closing_date: dt.date | None = None
    # How the totals were verified: "balances", "running_balance", "summary_totals", "none".
    control: str = "balances"
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def movement(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))
