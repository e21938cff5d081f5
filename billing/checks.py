"""Sub-ledger checks for ledger_check: open invoices equal the AR control account, in each
currency and in the functional currency."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import F, Sum

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice
from billing.postings import ar_functional_change
from core.ledger.checks import Problem
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances


def ar_subledger_check() -> list[Problem]:
    """Per currency, what open invoices still have due equals the AR account's balance."""
    due: dict[str, Decimal] = defaultdict(Decimal)
    for row in (
        Invoice.objects.filter(status=InvoiceStatus.OPEN)
        .values("currency")
        .annotate(d=Sum(F("total") - F("amount_paid") - F("amount_credited")))
        .order_by("currency")
    ):
        due[row["currency"]] = row["d"]
    ar = Account.objects.filter(role=AccountRole.ACCOUNTS_RECEIVABLE).first()
    balances = account_balances(account=ar) if ar else {}
    problems = []
    for currency in sorted(set(due) | set(balances)):
        ledger = balances[currency].balance if currency in balances else Decimal(0)
        if ledger != due.get(currency, Decimal(0)):
            problems.append(
                Problem(
                    "billing.ar_subledger",
                    f"Open invoices in {currency} have {due.get(currency, Decimal(0))} due, "
                    f"but the AR account holds {ledger}",
                )
            )
    return problems


def ar_functional_check() -> list[Problem]:
    """Per currency, the AR account's functional balance equals what the open invoices still
    carry at their issue rates: round(total x rate) - round(settled x rate) each (the
    cumulative rule of ``ar_functional_change``). Paid, void and written-off invoices carry
    nothing, so a fraction of a cent left behind by a settlement shows up here (issue 11)."""
    carried: dict[str, Decimal] = defaultdict(Decimal)
    rows = (
        Invoice.objects.filter(status=InvoiceStatus.OPEN)
        .values_list("currency", "total", "amount_paid", "amount_credited", "fx_rate")
        .order_by()
    )
    for currency, total, paid, credited, rate in rows.iterator(chunk_size=5000):
        carried[currency] += ar_functional_change(
            settled_before=paid + credited, settled_after=total, rate=rate
        )
    ar = Account.objects.filter(role=AccountRole.ACCOUNTS_RECEIVABLE).first()
    balances = account_balances(account=ar) if ar else {}
    problems = []
    for currency in sorted(set(carried) | set(balances)):
        ledger = balances[currency].functional_balance if currency in balances else Decimal(0)
        expected = carried.get(currency, Decimal(0))
        if ledger != expected:
            problems.append(
                Problem(
                    "billing.ar_functional",
                    f"Open invoices in {currency} carry {expected} in the functional currency, "
                    f"but the AR account holds {ledger} of it: a settled invoice left "
                    f"{ledger - expected} behind",
                )
            )
    return problems


def customer_credit_check() -> list[Problem]:
    """Per currency, the customers' credit balances add up to the customer-credit account."""
    held: dict[str, Decimal] = defaultdict(Decimal)
    for row in (
        Customer.objects.filter(credit_balance__gt=0)
        .values("currency")
        .annotate(t=Sum("credit_balance"))
        .order_by("currency")
    ):
        held[row["currency"]] = row["t"]
    account = Account.objects.filter(role=AccountRole.CUSTOMER_CREDIT).first()
    balances = account_balances(account=account) if account else {}
    problems = []
    for currency in sorted(set(held) | set(balances)):
        # A liability: its balance (debit - credit) is what is held, negated.
        ledger = -balances[currency].balance if currency in balances else Decimal(0)
        if ledger != held.get(currency, Decimal(0)):
            problems.append(
                Problem(
                    "billing.customer_credit",
                    f"Customers hold {held.get(currency, Decimal(0))} {currency} of credit, but "
                    f"the customer-credit account holds {ledger}",
                )
            )
    return problems
