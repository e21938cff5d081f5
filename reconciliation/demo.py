"""Reconciliation demo data for the quick start: a USD operating account whose bank statement
(a CSV with running balances, last three weeks) pays an Acme invoice by its number, clears
Acme's demo payment, carries a bank fee that a rule books, and a deposit nobody recognises; the
matching engine has run over it and the exceptions queue has been filled. A controller
(``demo-controller``) can sign periods off. Idempotent: found again by the account's name."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from billing.demo import DEMO_EMAIL
from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment
from core.accounts import user_ensure_in_role
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from core.roles import Role
from reconciliation.models import BankAccount
from reconciliation.services import bank_account_create, csv_mapping_save, statement_import
from reconciliation.services_exceptions import exceptions_detect
from reconciliation.services_matching import reconcile
from reconciliation.services_rules import match_rule_create

ACCOUNT_NAME = "Operating account (demo)"
CONTROLLER_USERNAME = "demo-controller"


def _row(day: date, amount: Decimal, text: str, counterparty: str) -> list[str]:
    return [day.isoformat(), f"{amount:.2f}", text, counterparty]


def reconciliation_demo_seed(today: date) -> str:
    if BankAccount.objects.filter(name=ACCOUNT_NAME).exists():
        return "Reconciliation demo data: already there."
    with transaction.atomic():
        controller, _ = user_ensure_in_role(username=CONTROLLER_USERNAME, role=Role.CONTROLLER)
        account = bank_account_create(
            actor=None,
            name=ACCOUNT_NAME,
            currency="USD",
            account_number="000123456789",
            bank_name="First Demo Bank",
        )
        csv_mapping_save(
            actor=None,
            bank_account_id=account.pk,
            config={
                "name": "demo bank",
                "date": "Date",
                "amount": "Amount",
                "description": ["Text"],
                "counterparty_name": "Counterparty",
                "balance": "Balance",
                "currency": "USD",
            },
        )
        match_rule_create(
            actor=controller,
            name="Bank account fees",
            account_id=Account.objects.get(role=AccountRole.BANK_FEES).pk,
            text_contains="ACCOUNT FEE",
            sign="debit",
        )
        first = today - timedelta(days=21)
        rows: list[list[str]] = []
        # Acme's invoices: the overdue ones of the receivables demo stay in collections.
        open_usd = list(
            Invoice.objects.filter(
                status=InvoiceStatus.OPEN, currency="USD", customer__email=DEMO_EMAIL
            )
            .select_related("customer")
            .order_by("issue_date", "pk")[:2]
        )
        if open_usd:
            inv = open_usd[0]
            rows.append(
                _row(first + timedelta(days=2), inv.amount_due.amount,
                     f"PAYMENT {inv.number} THANK YOU", inv.customer.name.upper())
            )  # fmt: skip
        payment = (
            Payment.objects.filter(currency="USD", processor="", customer__email=DEMO_EMAIL)
            .order_by("-received_date")
            .first()
        )
        if payment is not None:
            day = max(payment.received_date, first + timedelta(days=1))
            rows.append(
                _row(day, payment.amount.amount, payment.reference or "WIRE IN",
                     payment.customer.name.upper())
            )  # fmt: skip
        rows.append(_row(first + timedelta(days=5), Decimal("-15.00"), "MONTHLY ACCOUNT FEE", ""))
        rows.append(_row(first + timedelta(days=8), Decimal("123.45"), "TRANSFER", "J SMITH"))
        if len(open_usd) > 1:
            inv = open_usd[1]
            rows.append(
                _row(today - timedelta(days=2), inv.amount_due.amount, "ACH CREDIT",
                     f"{inv.customer.name.upper()}ORATION")
            )  # fmt: skip
        rows.sort(key=lambda r: r[0])
        balances = account_balances(account=account.ledger_account_id, as_of=first)
        running = balances["USD"].balance if "USD" in balances else Decimal(0)
        lines = ["Date,Amount,Text,Counterparty,Balance"]
        for row in rows:
            running += Decimal(row[1])
            lines.append(",".join([*row, f"{running:.2f}"]))
        outcome = statement_import(
            actor=None,
            bank_account_id=account.pk,
            data=("\n".join(lines) + "\n").encode(),
            filename="demo-statement.csv",
            format="csv",
        )
        result = reconcile(bank_account_id=account.pk)
        exceptions = exceptions_detect(bank_account_id=account.pk, today=today)
    lines_count = sum(s.line_count for s in outcome.statements)
    return (
        f"Reconciliation demo data: {ACCOUNT_NAME} with {lines_count} statement lines, "
        f"{result.auto_matched} matched automatically, {result.suggested} suggested, "
        f"{result.unmatched} unmatched, {sum(exceptions.opened.values())} exceptions; "
        f"controller login {controller.username} (set a password with "
        "`manage.py changepassword`)."
    )
