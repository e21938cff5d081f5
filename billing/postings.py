"""Ledger lines for billing events: pure functions, no database writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec
from core.money import round_storage

ZERO = Decimal(0)


def invoice_issue_lines(
    *,
    currency: str,
    subtotal: Decimal,
    tax: Decimal,
    total: Decimal,
    accounts: dict[str, Account],
    income_role: str = AccountRole.REVENUE,
) -> list[LineSpec]:
    """Dr accounts receivable (total) / Cr revenue (subtotal) / Cr tax payable (tax).

    ``income_role`` names another income account for the subtotal (late fees post to
    late-fee income)."""
    lines = [LineSpec(accounts[AccountRole.ACCOUNTS_RECEIVABLE], currency, debit=total)]
    if subtotal:
        lines.append(LineSpec(accounts[income_role], currency, credit=subtotal))
    if tax:
        lines.append(LineSpec(accounts[AccountRole.TAX_PAYABLE], currency, credit=tax))
    return lines


def invoice_write_off_lines(
    *, currency: str, amount: Decimal, functional: Decimal, accounts: dict[str, Account]
) -> list[LineSpec]:
    """Dr bad debt / Cr accounts receivable for what is left to collect, at the rate AR
    carries it (the issue date's)."""
    return [
        LineSpec(accounts[AccountRole.BAD_DEBT], currency, debit=amount, functional=functional),
        LineSpec(
            accounts[AccountRole.ACCOUNTS_RECEIVABLE],
            currency,
            credit=amount,
            functional=functional,
        ),
    ]


def payment_lines(
    *,
    currency: str,
    amount: Decimal,
    to_invoices: Decimal,
    to_credit: Decimal,
    cash_functional: Decimal,
    invoices_functional: Decimal,
    credit_functional: Decimal,
    via_processor: bool,
    accounts: dict[str, Account],
) -> list[LineSpec]:
    """Dr cash (or processor clearing) / Cr accounts receivable, Cr customer credit, and the
    realized FX gain (credit) or loss (debit) between the cash and the AR it settles."""
    cash = AccountRole.PROCESSOR_CLEARING if via_processor else AccountRole.CASH
    lines = [LineSpec(accounts[cash], currency, debit=amount, functional=cash_functional)]
    if to_invoices:
        lines.append(
            LineSpec(
                accounts[AccountRole.ACCOUNTS_RECEIVABLE],
                currency,
                credit=to_invoices,
                functional=invoices_functional,
            )
        )
    if to_credit:
        lines.append(
            LineSpec(
                accounts[AccountRole.CUSTOMER_CREDIT],
                currency,
                credit=to_credit,
                functional=credit_functional,
            )
        )
    difference = cash_functional - invoices_functional - credit_functional
    if difference:
        lines.append(
            LineSpec.functional_only(
                accounts[AccountRole.FX_GAIN_LOSS],
                currency,
                debit=-difference if difference < 0 else ZERO,
                credit=difference if difference > 0 else ZERO,
                memo="Realized FX gain/loss",
            )
        )
    return lines


def ar_functional_change(
    *, settled_before: Decimal, settled_after: Decimal, rate: Decimal | None
) -> Decimal:
    """The functional value of AR an invoice's settlement moves when what is settled on it
    (paid + credited) goes from ``settled_before`` to ``settled_after`` (positive: AR taken
    off; negative: put back, a refund).

    Cumulative rounding: each event takes round(after x rate) - round(before x rate), so the
    events of one invoice always add up to round(total x rate), exactly what its issue put in
    AR. The payment that settles an invoice in full takes its remaining functional balance,
    and no residue of a cent's fraction is left on the control account (issue 11).
    """
    r = rate or Decimal(1)
    return round_storage(settled_after * r) - round_storage(settled_before * r)


def invoice_settled(invoice: Any) -> Decimal:
    """What is settled on the invoice: paid plus credited, in its currency."""
    return Decimal(invoice.amount_paid.amount + invoice.amount_credited.amount)
