"""Line amounts and tax: one written rounding rule, applied everywhere.

Rule: each line's net amount is quantity x unit price rounded half-up to the currency's minor
unit; its tax is net x rate rounded half-up to the minor unit (tax per line). Invoice totals
are the sums of the rounded lines, so the printed lines always add up to the printed totals.
A tax-inclusive price is split per line too: gross rounded, net = gross / (1 + rate) rounded,
tax = gross - net, so the customer pays exactly the shelf price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.money import round_money
from core.system_settings import system_settings


@dataclass(frozen=True, slots=True)
class LineAmounts:
    amount: Decimal
    tax: Decimal

    @property
    def gross(self) -> Decimal:
        return self.amount + self.tax


def line_amounts(
    *,
    quantity: Decimal,
    unit_price: Decimal,
    tax_rate: Decimal,
    currency: str,
    tax_inclusive: bool = False,
) -> LineAmounts:
    if tax_inclusive:
        gross = round_money(quantity * unit_price, currency)
        net = round_money(gross / (1 + tax_rate), currency)
        return LineAmounts(amount=net, tax=gross - net)
    net = round_money(quantity * unit_price, currency)
    return LineAmounts(amount=net, tax=round_money(net * tax_rate, currency))


def customer_tax_rate(
    *, tax_exempt: bool, reverse_charge: bool, jurisdiction_rate: Decimal | None
) -> Decimal:
    """The rate for a customer: none if exempt or reverse charge, else the jurisdiction's
    rate, else the system default (billing.tax_rate)."""
    if tax_exempt or reverse_charge:
        return Decimal(0)
    if jurisdiction_rate is not None:
        return jurisdiction_rate
    return system_settings().billing.tax_rate
