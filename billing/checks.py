"""Sub-ledger check for ledger_check: open invoices equal the AR control account."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import F, Sum

from billing.enums import InvoiceStatus
from billing.models import Invoice
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
