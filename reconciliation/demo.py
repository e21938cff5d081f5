"""Reconciliation demo data for the quick start: a USD operating account with a bank statement
for each month of the demo year (the customers' USD ACH and wire payments, the payment runs,
the monthly fee, a few deposits spelled otherwise than the customer's name, which the engine
only suggests, and a handful of lines nobody recognises), and the last three weeks'
statement (a CSV with running balances) that pays an Acme invoice by its number, clears
Acme's demo payment, carries a bank fee that a rule books, and a deposit nobody recognises; the
matching engine has run over it and the exceptions queue has been filled. A controller
(``demo-controller``) can sign periods off. Idempotent: found again by the account's name."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from billing.demo import DEMO_EMAIL
from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment
from core.accounts import user_ensure_in_role
from core.demo import demo_scale
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from core.roles import Role
from payables.models import PaymentRun
from reconciliation.models import BankAccount
from reconciliation.services import bank_account_create, csv_mapping_save, statement_import
from reconciliation.services_exceptions import exceptions_detect
from reconciliation.services_matching import reconcile
from reconciliation.services_rules import match_rule_create

ACCOUNT_NAME = "Operating account (demo)"
CONTROLLER_USERNAME = "demo-controller"
YEAR_SEED = 20240602


def _row(day: date, amount: Decimal, text: str, counterparty: str) -> list[str]:
    return [day.isoformat(), f"{amount:.2f}", text, counterparty]


def _statement(rows: list[list[str]], opening: Decimal) -> tuple[bytes, Decimal]:
    """The CSV file of ``rows`` (date, amount, text, counterparty) with running balances from
    ``opening``, and the closing balance."""
    rows.sort(key=lambda r: r[0])
    running = opening
    lines = ["Date,Amount,Text,Counterparty,Balance"]
    for row in rows:
        running += Decimal(row[1])
        lines.append(",".join([*row, f"{running:.2f}"]))
    return ("\n".join(lines) + "\n").encode(), running


def _business_day(day: date, *, step: int) -> date:
    """``day``, or the nearest weekday from it in the direction of ``step``."""
    while day.weekday() >= 5:
        day += timedelta(days=step)
    return day


def _book_balance(account: BankAccount, as_of: date) -> Decimal:
    balances = account_balances(account=account.ledger_account_id, as_of=as_of)
    return balances["USD"].balance if "USD" in balances else Decimal(0)


def _month_start(day: date, months_back: int) -> date:
    first = day.replace(day=1)
    year, month = divmod(first.year * 12 + first.month - 1 - months_back, 12)
    return date(year, month + 1, 1)


# Deposits without a reference, the payer's name misspelt: the engine suggests, a person
# confirms.
NAME_VARIANTS = 3
# Lines nobody recognises: open exceptions after detection.
_UNKNOWN = (
    (Decimal("2500.00"), "INCOMING WIRE", "GLOBEX HOLDINGS"),
    (Decimal("-389.99"), "CARD PURCHASE CONFERENCE TICKETS", ""),
    (Decimal("74.12"), "INTEREST ADJUSTMENT", ""),
    (Decimal("-1200.00"), "CHECK 1043", ""),
)


def _year_statements(account: BankAccount, today: date, until: date) -> tuple[int, Decimal]:
    """The account's monthly statements of the year before ``until``: the customers' USD
    ACH and wire payments as deposits (a few under another spelling of the payer's name),
    the confirmed payment runs as debits naming the run, the monthly account fee, and a
    handful of lines nobody recognises. Returns (lines, closing balance); the opening
    balance is the book's, so a fully matched year closes on the book balance."""
    if demo_scale() == 0:
        return 0, _book_balance(account, until)
    rng = random.Random(YEAR_SEED)  # noqa: S311 (not security: the same demo every time)
    first = _month_start(today, 12)
    by_month: dict[date, list[list[str]]] = {}

    def add(day: date, amount: Decimal, text: str, counterparty: str) -> None:
        by_month.setdefault(day.replace(day=1), []).append(_row(day, amount, text, counterparty))

    payments = list(
        Payment.objects.filter(
            currency="USD",
            processor="",
            method__in=("ach", "wire_transfer"),
            received_date__gte=first,
            received_date__lt=until,
        )
        .select_related("customer")
        .order_by("received_date", "pk")
    )
    variants = 0
    # Spread over the year: the engine's suggestions wait for a person at every scale.
    every = max(1, len(payments) // (NAME_VARIANTS + 1))
    for n, payment in enumerate(payments, start=1):
        name = payment.customer.name.upper()
        text = "ACH CREDIT" if payment.method == "ach" else "WIRE IN"
        if variants < NAME_VARIANTS and n % every == 0:
            # No remittance reference and the name misspelt: only suggested.
            words = name.split(" ")
            name = " ".join([words[0], words[1][:-1], *words[2:]])
            variants += 1
        else:
            text = f"{text} {payment.reference}"
        # Credited by the bank on the day or up to two days later.
        day = payment.received_date + timedelta(days=rng.choice((0, 1, 1, 2)))
        add(day if day < until else payment.received_date, payment.amount.amount, text, name)
    for number, paid_on, total in PaymentRun.objects.filter(
        status="paid", currency="USD", payment_date__gte=first, payment_date__lt=until
    ).values_list("number", "payment_date", "total"):
        add(paid_on + timedelta(days=1), -total, f"ACH BATCH {number}", "")
    # The bank's fees open and close each month's statement (on its first and last business
    # day), so the statements follow one another without days in none of them.
    month = first
    while month <= until:
        opening = _business_day(month, step=1)
        closing = _business_day(_month_start(month, -1) - timedelta(days=1), step=-1)
        if opening <= until:
            add(opening, Decimal("-8.50"), "ACCOUNT FEE WIRE SERVICES", "")
        # The last one the day the last three weeks' statement starts from.
        add(min(closing, until + timedelta(days=1)), Decimal("-15.00"), "MONTHLY ACCOUNT FEE", "")
        month = _month_start(month, -1)
    for n, (amount, text, counterparty) in enumerate(_UNKNOWN):
        add(until - timedelta(days=20 + 25 * n), amount, text, counterparty)
    balance = _book_balance(account, first - timedelta(days=1))
    count = 0
    for month in sorted(by_month):
        data, balance = _statement(by_month[month], balance)
        statement_import(
            actor=None,
            bank_account_id=account.pk,
            data=data,
            filename=f"statement-{month:%Y-%m}.csv",
            format="csv",
        )
        count += len(by_month[month])
    return count, balance


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
        year_lines, year_closing = _year_statements(account, today, first)
        year = reconcile(bank_account_id=account.pk) if year_lines else None
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
        # The bank's balance goes on from the year's statements.
        data, _ = _statement(rows, year_closing)
        outcome = statement_import(
            actor=None,
            bank_account_id=account.pk,
            data=data,
            filename="demo-statement.csv",
            format="csv",
        )
        result = reconcile(bank_account_id=account.pk)
        exceptions = exceptions_detect(bank_account_id=account.pk, today=today)
    lines_count = sum(s.line_count for s in outcome.statements) + year_lines
    return (
        f"Reconciliation demo data: {ACCOUNT_NAME} with {lines_count} statement lines, "
        f"{result.auto_matched + (year.auto_matched if year else 0)} matched automatically, "
        f"{result.suggested + (year.suggested if year else 0)} suggested, "
        # The last run went over every line still unmatched, the year's included.
        f"{result.unmatched} unmatched, "
        f"{sum(exceptions.opened.values())} "
        "exceptions; "
        f"controller login {controller.username} (set a password with "
        "`manage.py changepassword`)."
    )
