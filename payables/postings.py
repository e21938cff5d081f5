"""Ledger lines for payables events: pure functions, no database writes."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec
from core.money import STORAGE_QUANTUM, allocate

ZERO = Decimal(0)


def expense_recognition_lines(
    *,
    currency: str,
    debits: Sequence[tuple[Account, Decimal]],
    total_functional: Decimal,
    payable: Account,
) -> list[LineSpec]:
    """Dr each expense (or inventory) account / Cr accounts payable for the total, every line
    carried at the document date's rate: the AP credit at ``total_functional`` and the debits
    sharing it by largest remainder, so the entry balances to the last stored place."""
    merged: dict[int, tuple[Account, Decimal]] = {}
    for account, amount in debits:
        held = merged.get(account.pk)
        merged[account.pk] = (account, (held[1] if held else ZERO) + amount)
    accounts = list(merged.values())
    total = sum((amount for _, amount in accounts), ZERO)
    shares = allocate(total_functional, [amount for _, amount in accounts], unit=STORAGE_QUANTUM)
    lines = [
        LineSpec(account, currency, debit=amount, functional=share)
        for (account, amount), share in zip(accounts, shares, strict=True)
        if amount
    ]
    lines.append(LineSpec(payable, currency, credit=total, functional=total_functional))
    return lines


def vendor_payment_lines(
    *,
    currency: str,
    settled: Decimal,
    settled_functional: Decimal,
    paid: Decimal,
    paid_functional: Decimal,
    discount: Decimal,
    discount_functional: Decimal,
    accounts: dict[str, Account],
) -> list[LineSpec]:
    """Dr accounts payable (what is settled, at the rate AP carries it) / Cr bank (what is
    paid, at the payment date's rate) / Cr early-payment discounts taken, and the realized
    FX gain (credit) or loss (debit) between them."""
    lines = [
        LineSpec(
            accounts[AccountRole.ACCOUNTS_PAYABLE],
            currency,
            debit=settled,
            functional=settled_functional,
        ),
        LineSpec(accounts[AccountRole.CASH], currency, credit=paid, functional=paid_functional),
    ]
    if discount:
        lines.append(
            LineSpec(
                accounts[AccountRole.PURCHASE_DISCOUNTS],
                currency,
                credit=discount,
                functional=discount_functional,
            )
        )
    difference = settled_functional - paid_functional - discount_functional
    if difference > 0:
        lines.append(
            LineSpec.functional_only(
                accounts[AccountRole.FX_GAIN_LOSS], currency, credit=difference, memo="FX gain"
            )
        )
    elif difference < 0:
        lines.append(
            LineSpec.functional_only(
                accounts[AccountRole.FX_GAIN_LOSS], currency, debit=-difference, memo="FX loss"
            )
        )
    return lines
