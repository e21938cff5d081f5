"""A processor settlement in one shape for PayPal and Coinbase Commerce: the items it pays out
(payments, refunds, disputes, fees, holds and their releases, currency conversions) and the one
bank deposit they add up to. Pure: no models, no settings.

Signs as the processor's balance sees them, in the item's currency: ``amount`` gross
(a payment positive, a refund or a hold negative), ``fee`` what the processor kept (positive;
negative when it gave a fee back), ``net = amount - fee`` what the item adds to the balance.
A settlement adds up when its items in its currency net to its ``amount`` to the penny.

Items in another currency are the transactions the processor converted into the settlement's
currency (a EUR payment PayPal converted into USD and withdrew in USD): each such currency
holds at least one conversion leg whose other leg (``counterpart_id``) is in the settlement's
currency, and its items net to zero (all of it was converted).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import UnknownCurrency, minor_unit_exponent
from reconciliation.payouts.stripe_payouts import PayoutProblem

__all__ = [
    "CHARGE",
    "CONVERSION",
    "DISPUTE",
    "FEE",
    "HOLD",
    "HOLD_RELEASE",
    "OTHER",
    "REFUND",
    "UNKNOWN",
    "PayoutProblem",
    "ReportError",
    "Settlement",
    "SettlementItem",
    "SettlementTotals",
    "converted_currencies",
    "decimal_amount",
    "settlement_check",
    "settlement_totals",
]

# Item categories (PayoutItem.category). Charges and refunds are billing's payments and refunds;
# a dispute is a chargeback or a reversal the processor took back; holds are money the
# processor kept back from the deposit (negative) or released into it (positive).
CHARGE = "charge"
REFUND = "refund"
DISPUTE = "dispute"
FEE = "fee"
HOLD = "hold"
HOLD_RELEASE = "hold_release"
CONVERSION = "currency_conversion"
OTHER = "other"
# A transaction type we do not know how to account for: the settlement is an exception.
UNKNOWN = "unknown"
KNOWN = frozenset({CHARGE, REFUND, DISPUTE, FEE, HOLD, HOLD_RELEASE, CONVERSION, OTHER})
NOT_PAID = frozenset({"failed", "canceled"})


class ReportError(ValueError):
    """The report is not the documented (or written-down) shape; ``where`` names the part."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


def decimal_amount(value: Any, currency: str, *, where: str) -> Decimal:
    """A decimal string in the currency's minor unit ("12.30" USD, "1999" JPY) as an exact
    Decimal. Floats, NaN, infinities, exponents and digits finer than the currency's minor
    unit are refused, never rounded."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ReportError(f"amount {value!r} is not a decimal string", where=where)
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ReportError(f"amount {value!r} is not a number", where=where) from None
    if not amount.is_finite() or "e" in text.lower():
        raise ReportError(f"amount {value!r} is not a plain decimal", where=where)
    try:
        exponent = minor_unit_exponent(currency)
    except UnknownCurrency:
        raise ReportError(f"currency {currency!r} is not an ISO 4217 code", where=where) from None
    exp = amount.as_tuple().exponent
    if isinstance(exp, int) and -exp > exponent:
        raise ReportError(
            f"amount {value!r} has more decimals than {currency} has ({exponent})", where=where
        )
    return amount


@dataclass(frozen=True)
class SettlementItem:
    id: str
    category: str
    amount: Decimal
    fee: Decimal
    net: Decimal
    currency: str
    # The processor id billing recorded the payment under (PayPal capture id, Coinbase code).
    charge_id: str = ""
    # The processor id billing recorded the refund under (PayPal refund transaction id).
    refund_id: str = ""
    # The related transaction the processor names (PayPal's paypal_reference_id).
    source_id: str = ""
    description: str = ""
    created_at: dt.datetime | None = None
    # A currency conversion leg: the processor's id of its other leg, in the other currency.
    counterpart_id: str = ""


@dataclass(frozen=True)
class Settlement:
    provider: str
    id: str
    amount: Decimal  # what reaches the bank
    currency: str
    arrival_date: dt.date
    status: str  # paid, pending, failed, canceled
    items: tuple[SettlementItem, ...] = ()
    description: str = ""
    # What the processor said, kept for the record (ids and figures, never secrets).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Problems found while reading the report (a transaction of an unknown type...).
    notes: tuple[PayoutProblem, ...] = ()


@dataclass(frozen=True)
class SettlementTotals:
    """``charges + refunds + disputes + holds + conversions + other - fees == net``."""

    charges: Decimal
    refunds: Decimal
    disputes: Decimal
    holds: Decimal
    conversions: Decimal
    other: Decimal
    fees: Decimal
    net: Decimal


def settlement_totals(settlement: Settlement) -> SettlementTotals:
    """The totals in the settlement's currency (converted items in another currency apart)."""
    zero = Decimal(0).scaleb(-minor_unit_exponent(settlement.currency))
    sums = dict.fromkeys(("charges", "refunds", "disputes", "holds", "conversions", "other"), zero)
    fees = net = zero
    for item in settlement.items:
        if item.currency != settlement.currency:
            continue
        net += item.net
        fees += item.fee
        if item.category == CHARGE:
            sums["charges"] += item.amount
        elif item.category == REFUND:
            sums["refunds"] += item.amount
        elif item.category == DISPUTE:
            sums["disputes"] += item.amount
        elif item.category in (HOLD, HOLD_RELEASE):
            sums["holds"] += item.amount
        elif item.category == CONVERSION:
            sums["conversions"] += item.amount
        elif item.category == FEE:
            fees -= item.amount
        else:
            sums["other"] += item.amount
    return SettlementTotals(fees=fees, net=net, **sums)


def converted_currencies(settlement: Settlement) -> frozenset[str]:
    """The currencies other than the settlement's in which it holds a conversion leg."""
    return frozenset(
        i.currency
        for i in settlement.items
        if i.category == CONVERSION and i.currency != settlement.currency
    )


def settlement_check(settlement: Settlement) -> list[PayoutProblem]:
    """Everything that keeps the settlement from reconciling to the penny; empty when it does:
    each item with ``amount - fee == net`` and a known type, the nets in the settlement's
    currency adding up exactly to the deposit, and the items in another currency converted
    into the settlement's: each conversion leg there paired with one in the settlement's
    currency, and the currency's nets adding up to zero."""
    problems = list(settlement.notes)
    s = settlement
    converted = converted_currencies(s)
    if s.status in NOT_PAID:
        problems.append(
            PayoutProblem("payout_not_paid", f"Settlement {s.id} is {s.status}: no deposit.")
        )
    if not s.items:
        problems.append(
            PayoutProblem(
                "no_items",
                f"Settlement {s.id} of {s.amount} {s.currency} has no transactions.",
                expected=s.amount,
                actual=Decimal(0),
            )
        )
        return problems
    own = {i.id for i in s.items if i.currency == s.currency}
    for item in s.items:
        if item.currency != s.currency and item.currency not in converted:
            problems.append(
                PayoutProblem(
                    "currency_mismatch",
                    f"{item.id} is in {item.currency}, the settlement in {s.currency}.",
                    item_id=item.id,
                )
            )
            continue
        if (
            item.currency != s.currency
            and item.category == CONVERSION
            and item.counterpart_id not in own
        ):
            problems.append(
                PayoutProblem(
                    "conversion_unpaired",
                    f"{item.id} converts {item.amount} {item.currency}, and its other leg "
                    f"({item.counterpart_id or 'none named'}) is not in the settlement's "
                    f"{s.currency} transactions.",
                    item_id=item.id,
                )
            )
        if item.category not in KNOWN:
            problems.append(
                PayoutProblem(
                    "unknown_transaction",
                    f"{item.id} ({item.description or 'no description'}, {item.amount} "
                    f"{item.currency}) is of a type this reconciliation does not know.",
                    item_id=item.id,
                )
            )
        if item.amount - item.fee != item.net:
            # The exception's difference is in the settlement's currency: none for another.
            own_currency = item.currency == s.currency
            problems.append(
                PayoutProblem(
                    "item_net_mismatch",
                    f"{item.id}: amount {item.amount} - fee {item.fee} is not net {item.net}.",
                    item_id=item.id,
                    expected=item.amount - item.fee if own_currency else None,
                    actual=item.net if own_currency else None,
                )
            )
    net = sum((i.net for i in s.items if i.currency == s.currency), Decimal(0))
    if net != s.amount:
        problems.append(
            PayoutProblem(
                "net_mismatch",
                f"Settlement {s.id}: its {len(s.items)} transactions net to {net} {s.currency}, "
                f"the deposit is {s.amount} {s.currency} (difference {net - s.amount}).",
                expected=s.amount,
                actual=net,
            )
        )
    for currency in sorted(converted):
        left = sum((i.net for i in s.items if i.currency == currency), Decimal(0))
        if left != 0:
            problems.append(
                PayoutProblem(
                    "conversion_mismatch",
                    f"Settlement {s.id}: its {currency} transactions, converted into "
                    f"{s.currency}, net to {left} {currency} instead of zero.",
                )
            )
    return problems
