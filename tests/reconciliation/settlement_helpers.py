"""What the PayPal and Coinbase Commerce settlement tests share: billing's payments as the
processors' paths record them, bank lines, and ledger balances."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import count

from billing.models import Customer, Invoice, Payment
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.selectors import account_balances, trial_balance
from reconciliation.models import BankAccount, Statement, StatementLine

D = Decimal
_positions = count(1)


def invoice(
    clerk, customer: Customer, amount: str, capture, *, issue_date: dt.date | None = None
) -> Invoice:
    with capture(execute=False):
        return invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            lines=[
                LineInput(description="Service", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
            ],
            issue_date=issue_date,
            issue=True,
        )


def processor_payment(
    customer: Customer,
    inv: Invoice,
    *,
    processor: str,
    charge_id: str,
    method: str,
    received_date: dt.date | None = None,
) -> Payment:
    """A payment as billing's processor paths record it (Dr processor clearing / Cr AR), in
    the invoice's currency."""
    return payment_record(
        actor=None,
        customer_id=customer.pk,
        amount=inv.total.amount,
        currency=inv.currency,
        method=method,
        received_date=received_date,
        reference=f"{processor} {charge_id}",
        allocations=[AllocationInput(inv.pk, inv.total.amount)],
        processor=processor,
        processor_charge_id=charge_id,
    )


def bank_line(account: BankAccount, amount: str, *, booking_date: dt.date, **kw) -> StatementLine:
    statement, _ = Statement.objects.get_or_create(
        bank_account=account,
        file_sha256="c" * 64,
        defaults={"format": "csv", "currency": "USD", "control": "none", "fingerprint": "c" * 64},
    )
    n = next(_positions)
    return StatementLine.objects.create(
        statement=statement,
        bank_account=account,
        position=n,
        booking_date=booking_date,
        amount=D(amount),
        currency="USD",
        fingerprint=f"s{n:063d}",
        **kw,
    )


def balance(role_or_account: str | Account) -> Decimal:
    acct = (
        role_or_account
        if isinstance(role_or_account, Account)
        else Account.objects.get(role=role_or_account)
    )
    found = account_balances(account=acct).get("USD")
    return found.balance if found else D(0)


def balance_in(role: str, currency: str) -> tuple[Decimal, Decimal]:
    """(balance, functional balance) of the account with ``role`` in ``currency``."""
    found = account_balances(account=Account.objects.get(role=role)).get(currency)
    return (found.balance, found.functional_balance) if found else (D(0), D(0))


def entry_lines_in(
    entry: JournalEntry,
) -> list[tuple[str, str, Decimal, Decimal, Decimal, Decimal]]:
    """(role, currency, debit, credit, functional debit, functional credit) of each line."""
    return sorted(
        (
            line.account.role or "bank",
            line.currency,
            line.debit,
            line.credit,
            line.functional_debit,
            line.functional_credit,
        )
        for line in JournalLine.objects.filter(entry=entry).select_related("account")
    )


def entry_lines(entry: JournalEntry) -> list[tuple[str, Decimal, Decimal]]:
    return sorted(
        (line.account.role or "bank", line.debit, line.credit)
        for line in JournalLine.objects.filter(entry=entry).select_related("account")
    )


def trial_balance_is_zero() -> bool:
    return sum((r.debit - r.credit for r in trial_balance().rows), D(0)) == D(0)
