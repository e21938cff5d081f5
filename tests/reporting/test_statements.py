"""Financial statements (reporting.statements) over a small book posted by the real services.

The book (functional currency USD; EUR 1 = USD 1.10 on 2026-02-01, USD 1.20 from 2026-03-15):

2025-06-01 manual   Dr 6000 expenses 300        Cr 3000 equity 300
2025-09-01 invoice  Dr AR 1,000.00 USD          Cr revenue 1,000.00 USD (never paid)
2026-02-01 invoice  Dr AR 2,200.00 USD          Cr revenue 2,000.00, tax payable 200.00
2026-02-01 invoice  Dr AR 100.00 EUR (110 USD)  Cr revenue 100.00 EUR (110 USD)
2026-03-01 payment  Dr cash 2,200.00 USD        Cr AR 2,200.00 USD (wire)
2026-03-15 payment  Dr cash 100.00 EUR (120)    Cr AR 100.00 EUR (110), FX gain 10 USD
2026-03-10 bill     Dr 6000 expenses 500.00     Cr AP 500.00
2026-04-01 run      Dr AP 500.00                Cr cash 500.00
2026-05-01 manual   Dr 6000 expenses 120        Cr 3000 equity 120

Hand-computed: 2025 net income 1,000 - 300 = 700 (retained earnings in 2026). 2026 (to June
30): income 2,000 USD + 100 EUR = 2,110 functional, plus FX gain 10 = 2,120; expenses 620;
net income 1,500. Balance sheet on 2026-06-30: cash 1,700 USD + 100 EUR (1,820), AR 1,000:
assets 2,820 = tax 200 + equity 420 + retained 700 + current-year 1,500.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import payment_record
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.manual import manual_entry_approve, manual_entry_submit
from core.ledger.selectors import account_balances, account_get_by_role
from core.ledger.services import LineSpec, journal_post
from core.roles import Role
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.runs import (
    payment_run_approve,
    payment_run_confirm,
    payment_run_create,
    payment_run_export,
    payment_run_submit,
)
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from reporting.statements import (
    CURRENT_YEAR_RESULT,
    RETAINED_EARNINGS,
    BalanceSheet,
    Figures,
    InvalidPeriod,
    StatementSection,
    balance_sheet,
    cash_flow_statement,
    profit_and_loss,
)

pytestmark = pytest.mark.django_db

YEAR_START = date(2026, 1, 1)
AS_OF = date(2026, 6, 30)


@dataclass(frozen=True)
class Book:
    admin: Any
    invoices: list[Any]


def _manual(actor: Any, day: date, debit: str, credit: str, amount: str) -> None:
    """Post a manual entry; one above the approval threshold is approved by a controller."""
    manual = manual_entry_submit(
        actor=actor,
        entry_date=day,
        description=f"{debit} to {credit}",
        lines=[
            {"account": debit, "currency": "USD", "debit": D(amount)},
            {"account": credit, "currency": "USD", "credit": D(amount)},
        ],
    )
    if manual.journal_entry_id is None:
        approver, created = User.objects.get_or_create(username="statements-approver")
        if created:
            approver.groups.add(Group.objects.get(name=Role.CONTROLLER))
        manual_entry_approve(entry_id=manual.pk, actor=approver)


def build_book(make_user: Callable[..., Any]) -> Book:
    """The book of the module docstring, posted through the real services."""
    admin = make_user(Role.FINANCE_ADMIN)
    ap_clerk = make_user(Role.AP_CLERK)
    approver = make_user(Role.APPROVER)
    controller = make_user(Role.CONTROLLER)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=date(2026, 2, 1))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.20"), rate_date=date(2026, 3, 15))
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    euro = customer_create(actor=admin, name="Euro AG", email="e@x.example", currency="EUR")

    def invoice(customer: Any, amount: str, tax: str, day: date) -> Any:
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=day,
            due_date=day + timedelta(days=30),
            lines=[
                LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(tax))
            ],
        )

    _manual(admin, date(2025, 6, 1), "6000", "3000", "300.00")
    invoices = [
        invoice(acme, "1000.00", "0", date(2025, 9, 1)),
        invoice(acme, "2000.00", "0.10", date(2026, 2, 1)),
        invoice(euro, "100.00", "0", date(2026, 2, 1)),
    ]
    payment_record(
        actor=admin,
        customer_id=acme.pk,
        amount=D("2200.00"),
        currency="USD",
        method="wire_transfer",
        received_date=date(2026, 3, 1),
        allocations=None,
    )
    payment_record(
        actor=admin,
        customer_id=euro.pk,
        amount=D("100.00"),
        currency="EUR",
        method="wire_transfer",
        received_date=date(2026, 3, 15),
    )
    vendor = vendor_create(
        actor=ap_clerk,
        name="Globex Supplies",
        email="globex@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number="123456789"
        ),
    )
    vendor_activate(vendor_id=vendor.pk, actor=controller)
    bill = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="B-1",
        currency="USD",
        bill_date=date(2026, 3, 10),
        lines=[BillLineInput("Services", D(1), D("500.00"))],
    )
    bill_approve(bill_id=bill.pk, actor=approver)
    run = payment_run_create(
        actor=ap_clerk, currency="USD", pay_by=date(2026, 6, 30), payment_date=date(2026, 4, 1)
    )
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    payment_run_approve(run_id=run.pk, actor=approver)
    payment_run_export(run_id=run.pk, actor=ap_clerk)
    payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    _manual(admin, date(2026, 5, 1), "6000", "3000", "120.00")
    return Book(admin, invoices)


@pytest.fixture
def book(make_user: Callable[..., Any]) -> Book:
    return build_book(make_user)


def _lines(section: StatementSection) -> dict[str, Figures]:
    return {line.code or line.name: line.current for line in section.lines}


def _usd(amount: str) -> Figures:
    return Figures({"USD": D(amount)}, D(amount))


# ----------------------------------------------------------------------------- profit and loss


def test_profit_and_loss_of_the_year_by_account_currency_and_functional(book) -> None:
    # given the book
    # when the P&L of 2026 to June 30 is read
    pnl = profit_and_loss(YEAR_START, AS_OF)
    # then revenue is kept per currency, the FX gain is functional only, 2025 is left out
    assert pnl.functional_currency == "USD"
    assert _lines(pnl.income) == {
        "4000": Figures({"EUR": D("100.00"), "USD": D("2000.00")}, D("2110.00")),
        "4900": Figures({}, D("10.00")),
    }
    assert _lines(pnl.expenses) == {"6000": _usd("620.00")}
    assert pnl.income.total == Figures({"EUR": D("100.00"), "USD": D("2000.00")}, D("2120.00"))
    assert pnl.net_income == Figures({"EUR": D("100.00"), "USD": D("1380.00")}, D("1500.00"))
    assert pnl.comparison_net_income is None


def test_profit_and_loss_with_a_comparison_period(book) -> None:
    # given the book
    # when 2026 H1 is compared with 2025
    pnl = profit_and_loss(YEAR_START, AS_OF, date(2025, 1, 1), date(2025, 12, 31))
    # then each line carries both periods; an account moved in one period only shows zero
    revenue, fx = pnl.income.lines
    assert (revenue.current.functional, revenue.comparison) == (D("2110.00"), _usd("1000.00"))
    assert (fx.current.functional, fx.comparison) == (D("10.00"), Figures())
    assert pnl.expenses.lines[0].comparison == _usd("300.00")
    assert pnl.comparison_net_income == _usd("700.00")


# ------------------------------------------------------------------------------- balance sheet


def _check_balanced(sheet: BalanceSheet) -> None:
    assert sheet.is_balanced
    assert sheet.assets.total.functional == sheet.liabilities_and_equity.functional


def test_balance_sheet_balances_with_retained_earnings_and_current_year_result(book) -> None:
    # given the book
    # when the balance sheet on 2026-06-30 is read
    sheet = balance_sheet(AS_OF)
    # then
    assert sheet.fiscal_year_start == YEAR_START
    assert _lines(sheet.assets) == {
        "1000": Figures({"EUR": D("100.00"), "USD": D("1700.00")}, D("1820.00")),
        "1100": _usd("1000.00"),
    }
    assert _lines(sheet.liabilities) == {"2100": _usd("200.00")}
    assert _lines(sheet.equity) == {
        "3000": _usd("420.00"),
        RETAINED_EARNINGS: _usd("700.00"),
        CURRENT_YEAR_RESULT: Figures({"EUR": D("100.00"), "USD": D("1380.00")}, D("1500.00")),
    }
    assert sheet.assets.total.functional == D("2820.00")
    assert sheet.liabilities_and_equity == sheet.assets.total
    _check_balanced(sheet)


def test_current_year_result_equals_the_years_net_income(book) -> None:
    # given the book
    # when the balance sheet and the P&L from the year start to the same day are read
    sheet = balance_sheet(AS_OF)
    pnl = profit_and_loss(YEAR_START, AS_OF)
    # then the current-year result is the P&L's net income
    assert _lines(sheet.equity)[CURRENT_YEAR_RESULT] == pnl.net_income


def test_balance_sheet_compared_with_the_previous_year_end(book) -> None:
    # given the book
    # when 2026-06-30 is compared with 2025-12-31
    sheet = balance_sheet(AS_OF, compare_as_of=date(2025, 12, 31))
    # then at 2025 year end the whole result is current-year, nothing retained yet
    equity = {line.code or line.name: line.comparison for line in sheet.equity.lines}
    assert equity == {
        "3000": _usd("300.00"),
        RETAINED_EARNINGS: Figures(),
        CURRENT_YEAR_RESULT: _usd("700.00"),
    }
    cash = next(line for line in sheet.assets.lines if line.code == "1000")
    assert cash.comparison == Figures()
    assert sheet.assets.comparison_total == _usd("1000.00")
    _check_balanced(sheet)


# ------------------------------------------------------------------------------------ cash flow


def test_cash_flow_statement_by_kind_of_counterparty(book) -> None:
    # given the book
    # when the cash flow of 2026 to June 30 is read
    flow = cash_flow_statement(YEAR_START, AS_OF)
    # then receipts from customers and payments to vendors, per currency
    assert {line.kind: line.amounts for line in flow.lines} == {
        "customers": {"EUR": D("100.00"), "USD": D("2200.00")},
        "vendors": {"USD": D("-500.00")},
    }
    assert flow.opening == {}
    assert flow.net_change == {"EUR": D("100.00"), "USD": D("1700.00")}
    assert flow.closing == {"EUR": D("100.00"), "USD": D("1700.00")}


def test_cash_flow_closing_less_opening_is_the_net_of_its_lines_and_the_ledger(book) -> None:
    # given the book, and a period that starts after the first receipt
    start, end = date(2026, 3, 2), date(2026, 4, 30)
    # when
    flow = cash_flow_statement(start, end)
    # then opening + lines = closing, per currency, and equals the cash account's movement
    cash = account_get_by_role(AccountRole.CASH)
    before = account_balances(account=cash, as_of=start - timedelta(days=1))
    after = account_balances(account=cash, as_of=end)
    assert flow.opening == {"USD": D("2200.00")}
    for currency in flow.currencies:
        lines_net = sum((line.amounts.get(currency, D(0)) for line in flow.lines), D(0))
        change = flow.closing.get(currency, D(0)) - flow.opening.get(currency, D(0))
        ledger = after[currency].balance - (
            before[currency].balance if currency in before else D(0)
        )
        assert lines_net == change == flow.net_change[currency] == ledger
    assert flow.closing == {"EUR": D("100.00"), "USD": D("1700.00")}


def test_cash_flow_kinds_and_processor_clearing_as_cash() -> None:
    # given a card payment into processor clearing, its payout to the bank less a fee, an
    # owner's contribution and a tax payment (posted straight to the ledger)
    day = date(2026, 7, 1)

    def post(*lines: LineSpec) -> None:
        journal_post(lines=list(lines), entry_date=day)

    role = account_get_by_role
    clearing, cash = role(AccountRole.PROCESSOR_CLEARING), role(AccountRole.CASH)
    post(
        LineSpec(clearing, "USD", debit=D("100.00")),
        LineSpec(role(AccountRole.ACCOUNTS_RECEIVABLE), "USD", credit=D("100.00")),
    )
    post(
        LineSpec(cash, "USD", debit=D("97.00")),
        LineSpec(role(AccountRole.PROCESSOR_FEES), "USD", debit=D("3.00")),
        LineSpec(clearing, "USD", credit=D("100.00")),
    )
    post(
        LineSpec(cash, "USD", debit=D("50.00")),
        LineSpec(role(AccountRole.EQUITY), "USD", credit=D("50.00")),
    )
    post(
        LineSpec(role(AccountRole.TAX_PAYABLE), "USD", debit=D("20.00")),
        LineSpec(cash, "USD", credit=D("20.00")),
    )
    # when
    flow = cash_flow_statement(day, day)
    # then the payout is no flow, only its fee; 100 - 3 + 50 - 20 = 127
    assert [(line.kind, line.amounts) for line in flow.lines] == [
        ("customers", {"USD": D("100.00")}),
        ("fees", {"USD": D("-3.00")}),
        ("tax", {"USD": D("-20.00")}),
        ("equity", {"USD": D("50.00")}),
    ]
    assert flow.net_change == flow.closing == {"USD": D("127.00")}
    assert [a.code for a in flow.accounts] == ["1000", "1010"]


# ------------------------------------------------------------------------------- bad periods


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: profit_and_loss(date(2026, 2, 1), date(2026, 1, 31)), "from"),
        (lambda: profit_and_loss(date(2000, 1, 1), date(2020, 1, 1)), "to"),
        (
            lambda: profit_and_loss(
                date(2026, 1, 1), date(2026, 2, 1), date(2025, 3, 1), date(2025, 2, 1)
            ),
            "compare_from",
        ),
        (
            lambda: profit_and_loss(date(2026, 1, 1), date(2026, 2, 1), date(2025, 3, 1)),
            "compare_to",
        ),
        (lambda: cash_flow_statement(date(2026, 2, 1), date(2026, 1, 1)), "from"),
        (lambda: cash_flow_statement(date(1990, 1, 1), date(2026, 1, 1)), "to"),
        (lambda: balance_sheet(date(2026, 1, 1), compare_as_of=date(1990, 1, 1)), "compare_as_of"),
    ],
)
def test_bad_periods_are_refused_naming_the_field(call, field) -> None:
    # given a period backwards, over 20 years, or a comparison missing its end
    # when / then
    with pytest.raises(InvalidPeriod) as refused:
        call()
    assert refused.value.field == field
    assert refused.value.code == "invalid_period"


def test_twenty_years_less_a_day_is_accepted() -> None:
    # given the longest period allowed
    # when / then
    assert profit_and_loss(date(2000, 1, 1), date(2019, 12, 31)).net_income == Figures()


# ---------------------------------------------------------------------------------- properties

# Accounts that take manual lines, of every type: inventory, suspense (assets), tax payable
# (liability), equity, revenue, late fees (income), expenses, bank fees (expense).
MANUAL_ACCOUNTS = ["1200", "1900", "2100", "3000", "4000", "4100", "6000", "6200"]
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 11, 30))


@st.composite
def manual_entry(draw: st.DrawFn) -> tuple[date, str, str, D]:
    debit, credit = draw(
        st.lists(st.sampled_from(MANUAL_ACCOUNTS), min_size=2, max_size=2, unique=True)
    )
    cents = draw(st.integers(min_value=1, max_value=10**9))
    return draw(DAYS), debit, credit, D(cents).scaleb(-2)


class Rollback(Exception):
    pass


def _results(sheet: BalanceSheet) -> D:
    lines = _lines(sheet.equity)
    return lines[RETAINED_EARNINGS].functional + lines[CURRENT_YEAR_RESULT].functional


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(manual_entry(), min_size=1, max_size=8), first=DAYS, second=DAYS)
def test_any_manual_entries_keep_the_sheet_balanced_and_the_results_tied(
    entries, first, second, make_user
) -> None:
    # given random balanced manual entries across the account types
    admin = make_user(Role.FINANCE_ADMIN)
    start, end = sorted((first, second))
    try:
        with transaction.atomic():
            for day, debit, credit, amount in entries:
                _manual(admin, day, debit, credit, str(amount))
            # when the balance sheets on two days and the P&L between them are read
            opening = balance_sheet(start)
            closing = balance_sheet(end, compare_as_of=start)
            net_income = (
                profit_and_loss(start + timedelta(days=1), end).net_income.functional
                if start < end
                else D(0)
            )
            # then both sheets balance, and the P&L is the change in the results not closed
            _check_balanced(opening)
            _check_balanced(closing)
            assert net_income == _results(closing) - _results(opening)
            raise Rollback
    except Rollback:
        pass
