"""Late fees charged by the collections run: grace boundary, 30-day periods, partial
payments, no compounding, currency rounding, idempotent re-runs, waivers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.models import Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from receivables.enums import LateFeeStatus
from receivables.models import DunningPolicy, LateFee
from receivables.services.collections import collections_run
from receivables.services.late_fees import fees_due_count, late_fee_waive

D = Decimal
DUE = date(2026, 3, 2)
pytestmark = pytest.mark.django_db


def make_invoice(admin, amount: str, *, currency: str = "USD", due: date = DUE) -> Invoice:
    if currency != "USD":
        # rates are good for a week: one every 5 days around the dates used
        for offset in range(-35, 125, 5):
            fx_rate_set(
                base=currency, quote="USD", rate=D("0.5"), rate_date=due + timedelta(days=offset)
            )
    customer = customer_create(
        actor=admin,
        name=f"Customer {currency} {amount}",
        email="ap@customer.example",
        currency=currency,
        payment_terms=30,
    )
    return invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        issue_date=due - timedelta(days=30),
        due_date=due,
        lines=[
            LineInput(description="Services", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
        ],
    )


def late_fee_income() -> dict[str, Decimal]:
    account = Account.objects.get(role=AccountRole.LATE_FEE_INCOME)
    return {c: -b.balance for c, b in account_balances(account=account).items()}


@pytest.fixture
def admin(make_user):
    return make_user("finance_admin")


@pytest.mark.parametrize(
    ("days", "count"),
    [(0, 0), (10, 0), (11, 1), (40, 1), (41, 2), (70, 2), (71, 3), (101, 4)],
)
def test_fees_due_count_table(days: int, count: int) -> None:
    assert fees_due_count(days_overdue=days, grace_days=10) == count


def test_grace_boundary_day_10_no_fee_day_11_fee(admin) -> None:
    # given an invoice of 1,000.00 due on DUE
    invoice = make_invoice(admin, "1000.00")
    # when the run happens 10 days past due
    collections_run(as_of=DUE + timedelta(days=10))
    # then no fee
    assert LateFee.objects.count() == 0
    # when it runs on day 11
    collections_run(as_of=DUE + timedelta(days=11))
    # then one fee of 1.5% = 15.00 as its own open receivable, posted to late-fee income
    fee = LateFee.objects.get()
    assert (fee.invoice_id, fee.sequence, fee.amount.amount, fee.days_overdue) == (
        invoice.pk,
        1,
        D("15.00"),
        11,
    )
    assert fee.base_amount.amount == D("1000.00")
    assert fee.fee_invoice.status == InvoiceStatus.OPEN
    assert fee.fee_invoice.total.amount == D("15.00")
    assert fee.fee_invoice.currency == "USD"
    assert late_fee_income() == {"USD": D("15.00")}
    assert ar_subledger_check() == []


def test_rerun_same_day_and_past_day_add_nothing(admin) -> None:
    make_invoice(admin, "1000.00")
    day = DUE + timedelta(days=11)
    collections_run(as_of=day)
    # when the run repeats that day, and runs for a day already done
    second = collections_run(as_of=day)
    third = collections_run(as_of=day - timedelta(days=1))
    # then nothing more
    assert LateFee.objects.count() == 1
    assert [a for a in second.actions if a.kind == "late_fee"] == []
    assert [a for a in third.actions if a.kind == "late_fee"] == []
    assert late_fee_income() == {"USD": D("15.00")}
    assert ar_subledger_check() == []


def test_second_fee_after_30_more_days_on_partially_paid_balance_not_compounded(admin) -> None:
    # given an invoice of 1,000.00 with its first fee charged on day 11
    invoice = make_invoice(admin, "1000.00")
    collections_run(as_of=DUE + timedelta(days=11))
    # and 400.00 paid on day 20
    payment_record(
        actor=admin,
        customer_id=invoice.customer_id,
        amount=D("400.00"),
        currency="USD",
        method="ach",
        received_date=DUE + timedelta(days=20),
        allocations=[AllocationInput(invoice.pk, D("400.00"))],
    )
    # when the run happens on day 40 (no fee) and day 41 (second fee)
    collections_run(as_of=DUE + timedelta(days=40))
    assert LateFee.objects.count() == 1
    collections_run(as_of=DUE + timedelta(days=41))
    # then the second fee is 1.5% of the 600.00 still overdue: the first fee not included
    fees = list(LateFee.objects.order_by("sequence").values_list("sequence", "amount"))
    assert fees == [(1, D("15.00")), (2, D("9.00"))]
    second = LateFee.objects.get(sequence=2)
    assert second.base_amount.amount == D("600.00")
    # fee invoices are never charged fees themselves
    assert not LateFee.objects.filter(invoice__late_fee_charge__isnull=False).exists()
    assert late_fee_income() == {"USD": D("24.00")}
    assert ar_subledger_check() == []


def test_policy_overrides_percentage_and_may_compound(admin) -> None:
    DunningPolicy.objects.filter(is_default=True).update(
        late_fee_percentage=D("2"), compound_fees=True
    )
    make_invoice(admin, "1000.00")
    collections_run(as_of=DUE + timedelta(days=11))
    collections_run(as_of=DUE + timedelta(days=41))
    # 2% of 1,000.00; then 2% of 1,020.00 (the unpaid first fee compounds)
    assert list(LateFee.objects.order_by("sequence").values_list("amount", flat=True)) == [
        D("20.00"),
        D("20.40"),
    ]
    assert ar_subledger_check() == []


@pytest.mark.parametrize(
    ("currency", "amount", "fee"),
    [
        ("JPY", "12345", D("185")),  # 185.175 -> 185
        ("JPY", "12367", D("186")),  # 185.505 -> 186
        ("KWD", "100.033", D("1.500")),  # 1.500495 -> 1.500
        ("KWD", "100.100", D("1.502")),  # 1.5015 -> 1.502 (half up)
    ],
)
def test_fee_rounded_to_the_currency(admin, currency: str, amount: str, fee: Decimal) -> None:
    make_invoice(admin, amount, currency=currency)
    collections_run(as_of=DUE + timedelta(days=11))
    charged = LateFee.objects.get()
    assert charged.amount.amount == fee
    assert charged.fee_invoice.currency == currency
    assert charged.fee_invoice.total.amount == fee
    assert late_fee_income() == {currency: fee}
    assert ar_subledger_check() == []


def test_waive_unpaid_fee_voids_it_with_reason_and_history(admin, make_user) -> None:
    make_invoice(admin, "1000.00")
    collections_run(as_of=DUE + timedelta(days=11))
    fee = LateFee.objects.get()
    controller = make_user("controller")
    # when a controller waives it
    late_fee_waive(actor=controller, late_fee_id=fee.pk, reason="first time late, goodwill")
    # then the fee invoice is void, the income reversed, and history keeps who and why
    fee.refresh_from_db()
    assert fee.status == LateFeeStatus.WAIVED
    assert fee.waived_by == controller
    assert fee.fee_invoice.status == InvoiceStatus.VOID
    assert late_fee_income() == {"USD": D("0.00")}
    last = fee.history.latest()
    assert (last.status, last.waived_by_id, last.waive_reason, last.history_change_reason) == (
        LateFeeStatus.WAIVED,
        controller.pk,
        "first time late, goodwill",
        "first time late, goodwill",
    )
    assert fee.history.count() == 2
    assert ar_subledger_check() == []
    # and a waived fee is not charged again by a re-run
    collections_run(as_of=DUE + timedelta(days=11))
    assert LateFee.objects.count() == 1


def test_waive_paid_fee_credits_late_fee_income(admin, make_user) -> None:
    invoice = make_invoice(admin, "1000.00")
    collections_run(as_of=DUE + timedelta(days=11))
    fee = LateFee.objects.get()
    payment_record(
        actor=admin,
        customer_id=invoice.customer_id,
        amount=D("5.00"),
        currency="USD",
        method="ach",
        received_date=DUE + timedelta(days=12),
        allocations=[AllocationInput(fee.fee_invoice_id, D("5.00"))],
    )
    late_fee_waive(actor=admin, late_fee_id=fee.pk, reason="billing error")
    fee.refresh_from_db()
    fee_invoice = Invoice.objects.get(pk=fee.fee_invoice_id)
    assert fee_invoice.status == InvoiceStatus.PAID
    assert fee_invoice.customer.credit_balance.amount == D("5.00")
    assert late_fee_income() == {"USD": D("0.00")}
    assert ar_subledger_check() == []


def test_waive_refused_without_permission_or_reason(admin, make_user) -> None:
    make_invoice(admin, "1000.00")
    collections_run(as_of=DUE + timedelta(days=11))
    fee = LateFee.objects.get()
    with pytest.raises(PermissionDeniedError):
        late_fee_waive(actor=make_user("ar_clerk"), late_fee_id=fee.pk, reason="x")
    with pytest.raises(Exception, match="reason"):
        late_fee_waive(actor=admin, late_fee_id=fee.pk, reason="  ")
    fee.refresh_from_db()
    assert fee.status == LateFeeStatus.CHARGED
    assert fee.fee_invoice.status == InvoiceStatus.OPEN
    assert fee.history.count() == 1
