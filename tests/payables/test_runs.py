"""Payment runs: selection (due, discounts, holds), approval by another person, the bank
file validated against its format, payment posting, partial payments, AP control."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.exceptions import Conflict
from core.ledger.enums import AccountRole
from core.ledger.models import JournalLine
from core.ledger.selectors import account_balances, account_get_by_role
from payables.enums import BillStatus, PaymentRunStatus
from payables.exceptions import ApprovalRefused, PayablesError
from payables.exports import nacha_validate, pain001_validate
from payables.models import Bill, PaymentRun
from payables.selectors import ap_subledger_check
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.runs import (
    payment_run_approve,
    payment_run_cancel,
    payment_run_confirm,
    payment_run_create,
    payment_run_export,
    payment_run_submit,
    payment_runs_process,
)
from payables.services.vendors import (
    BankDetails,
    vendor_bank_change_approve,
    vendor_bank_change_request,
)

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 25)


@pytest.fixture
def approver(make_user):
    return make_user("approver")


@pytest.fixture
def make_bill(ap_clerk, approver):
    counter = iter(range(1, 1000))

    def make(vendor, amount: str, *, bill_date: date, currency: str = "USD") -> Bill:
        bill = bill_create(
            actor=ap_clerk,
            vendor_id=vendor.pk,
            number=f"B-{next(counter)}",
            currency=currency,
            bill_date=bill_date,
            lines=[BillLineInput("Goods", Decimal(1), Decimal(amount))],
        )
        return bill_approve(bill_id=bill.pk, actor=approver)

    return make


def _ap(currency="USD") -> Decimal:
    balances = account_balances(account=account_get_by_role(AccountRole.ACCOUNTS_PAYABLE))
    return -balances[currency].balance if currency in balances else Decimal(0)


def _approved_run(ap_clerk, approver, **kw) -> PaymentRun:
    run = payment_run_create(actor=ap_clerk, payment_date=TODAY, **kw)
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    return payment_run_approve(run_id=run.pk, actor=approver)


def test_run_picks_due_bills_and_pays_them(ap_clerk, approver, vendor, make_vendor, make_bill):
    # given two bills due by the run date and one due later
    other = make_vendor("Umbrella Corp")
    due_1 = make_bill(vendor, "100.00", bill_date=TODAY - timedelta(days=40))
    due_2 = make_bill(other, "250.50", bill_date=TODAY - timedelta(days=31))
    later = make_bill(vendor, "75.00", bill_date=TODAY)
    assert _ap() == Decimal("425.50")
    # when a run is created, approved by another person, exported and confirmed
    run = _approved_run(ap_clerk, approver, currency="USD", pay_by=TODAY)
    assert run.item_count == 2
    assert run.total.amount == Decimal("350.50")
    assert Bill.objects.get(pk=due_1.pk).status == BillStatus.SCHEDULED
    run = payment_run_export(run_id=run.pk, actor=ap_clerk)
    # then the NACHA file passes the format checks with the run's totals
    summary = nacha_validate(run.file.open("rb").read())
    batch = summary.batches[0]
    assert [e.amount for e in batch.entries] == [Decimal("100.00"), Decimal("250.50")]
    assert batch.total_credit == Decimal("350.50")
    assert summary.record_count % 10 == 0
    run = payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    assert run.status == PaymentRunStatus.PAID
    assert Bill.objects.get(pk=due_1.pk).status == BillStatus.PAID
    assert Bill.objects.get(pk=due_2.pk).amount_due == 0
    assert Bill.objects.get(pk=later.pk).status == BillStatus.APPROVED
    # and the ledger: AP down by what was paid, cash credited, sub-ledger equal
    assert _ap() == Decimal("75.00")
    cash = account_balances(account=account_get_by_role(AccountRole.CASH))["USD"]
    assert cash.credit == Decimal("350.50")
    assert ap_subledger_check() == []


def test_early_payment_discount_taken_when_it_pays_off(ap_clerk, approver, make_vendor, make_bill):
    # given 2/10 net 30 and a bill dated 5 days ago (discount open until 5 days from now)
    vendor = make_vendor("Discount Co", discount_percent=Decimal(2), discount_days=10)
    bill = make_bill(vendor, "1000.00", bill_date=TODAY - timedelta(days=5))
    # when a run pays what is due by today (the bill is not due, but the discount is open)
    run = _approved_run(ap_clerk, approver, currency="USD", pay_by=TODAY)
    # then it pays 980.00 and settles the bill with the 20.00 discount
    assert (run.total.amount, run.discount_total.amount) == (Decimal("980.00"), Decimal("20.00"))
    payment_run_export(run_id=run.pk, actor=ap_clerk)
    payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.PAID
    discounts = JournalLine.objects.filter(
        account=account_get_by_role(AccountRole.PURCHASE_DISCOUNTS)
    ).get()
    assert discounts.credit == Decimal("20.00")
    assert _ap() == Decimal(0)
    assert ap_subledger_check() == []


def test_bill_paid_in_parts(ap_clerk, approver, vendor, make_bill):
    bill = make_bill(vendor, "300.00", bill_date=TODAY - timedelta(days=45))
    run = _approved_run(
        ap_clerk, approver, currency="USD", pay_by=TODAY, amounts={bill.pk: Decimal("120.00")}
    )
    payment_run_export(run_id=run.pk, actor=ap_clerk)
    payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    bill.refresh_from_db()
    assert (bill.status, bill.amount_due) == (BillStatus.APPROVED, Decimal("180.00"))
    assert _ap() == Decimal("180.00")
    run = _approved_run(ap_clerk, approver, currency="USD", pay_by=TODAY)
    payment_run_export(run_id=run.pk, actor=ap_clerk)
    payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    bill.refresh_from_db()
    assert (bill.status, bill.amount_due) == (BillStatus.PAID, Decimal(0))
    assert _ap() == Decimal(0)
    assert ap_subledger_check() == []


def test_vendor_with_pending_bank_change_is_held(
    ap_clerk, approver, vendor, make_vendor, make_bill
):
    # given a pending bank detail change on one vendor
    held = make_vendor("Held Inc")
    make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    held_bill = make_bill(held, "20.00", bill_date=TODAY - timedelta(days=40))
    vendor_bank_change_request(
        vendor_id=held.pk,
        bank=BankDetails(routing_number="021000021", account_number="5555666677"),
        reason="Letter from vendor",
        actor=ap_clerk,
    )
    # when a run is created
    run = payment_run_create(actor=ap_clerk, currency="USD", pay_by=TODAY, payment_date=TODAY)
    # then the held vendor's bill is left out, with the reason
    assert run.item_count == 1
    assert run.exclusions[0]["bill"] == held_bill.pk
    assert "payment hold" in run.exclusions[0]["reason"]
    assert Bill.objects.get(pk=held_bill.pk).status == BillStatus.APPROVED


def test_hold_after_approval_stops_the_export(ap_clerk, approver, vendor, make_bill):
    make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    run = _approved_run(ap_clerk, approver, currency="USD", pay_by=TODAY)
    vendor_bank_change_request(
        vendor_id=vendor.pk,
        bank=BankDetails(routing_number="021000021", account_number="5555666677"),
        reason="Phone call",
        actor=ap_clerk,
    )
    with pytest.raises(Conflict) as refused:
        payment_run_export(run_id=run.pk, actor=ap_clerk)
    assert refused.value.code == "vendor_on_hold"
    assert PaymentRun.objects.get(pk=run.pk).status == PaymentRunStatus.APPROVED


def test_run_creator_cannot_approve_it(ap_clerk, make_user, vendor, make_bill):
    admin = make_user("finance_admin")
    make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    run = payment_run_create(actor=admin, currency="USD", pay_by=TODAY, payment_date=TODAY)
    payment_run_submit(run_id=run.pk, actor=admin)
    with pytest.raises(ApprovalRefused) as refused:
        payment_run_approve(run_id=run.pk, actor=admin)
    assert refused.value.code == "requester_cannot_approve"


def test_cancel_frees_the_bills_and_a_bill_is_in_one_run(ap_clerk, approver, vendor, make_bill):
    bill = make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    run = payment_run_create(actor=ap_clerk, currency="USD", pay_by=TODAY, payment_date=TODAY)
    with pytest.raises(PayablesError) as refused:
        payment_run_create(actor=ap_clerk, currency="USD", pay_by=TODAY, payment_date=TODAY)
    assert refused.value.code == "nothing_to_pay"
    payment_run_cancel(run_id=run.pk, actor=ap_clerk)
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.APPROVED
    assert (
        payment_run_create(
            actor=ap_clerk, currency="USD", pay_by=TODAY, payment_date=TODAY
        ).item_count
        == 1
    )


def test_eur_run_exports_pain001_valid_against_the_xsd(ap_clerk, approver, make_vendor, make_bill):
    from core.fx import fx_rate_set

    # the bill is booked at 1.10 and paid at 1.12: a realized FX loss of 24.69 USD
    fx_rate_set(base="EUR", quote="USD", rate=Decimal("1.10"), rate_date=TODAY - timedelta(days=40))
    fx_rate_set(base="EUR", quote="USD", rate=Decimal("1.12"), rate_date=TODAY)
    vendor = make_vendor(
        "Euro GmbH",
        currency="EUR",
        bank=BankDetails(
            account_holder="Euro GmbH", iban="DE89370400440532013000", bic="COBADEFFXXX"
        ),
    )
    make_bill(vendor, "1234.56", bill_date=TODAY - timedelta(days=40), currency="EUR")
    run = _approved_run(ap_clerk, approver, currency="EUR", pay_by=TODAY)
    run = payment_run_export(run_id=run.pk, actor=ap_clerk)
    summary = pain001_validate(run.file.open("rb").read())
    assert summary.control_sum == Decimal("1234.56")
    assert summary.number_of_transactions == 1
    payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    assert _ap("EUR") == Decimal(0)
    fx = JournalLine.objects.get(account=account_get_by_role(AccountRole.FX_GAIN_LOSS))
    assert fx.functional_debit == Decimal("24.6912")
    assert ap_subledger_check() == []


def test_scheduled_processing_exports_and_pays_once(ap_clerk, approver, vendor, make_bill):
    make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    run = _approved_run(ap_clerk, approver, currency="USD", pay_by=TODAY)
    assert payment_runs_process(as_of=TODAY) == [run.number]
    assert payment_runs_process(as_of=TODAY) == []
    assert PaymentRun.objects.get(pk=run.pk).status == PaymentRunStatus.PAID
    assert _ap() == Decimal(0)


def test_payment_runs_task_is_scheduled_and_pays_once(
    ap_clerk, approver, vendor, make_bill, settings
):
    from payables.tasks import payment_runs_process_task

    entry = settings.CELERY_BEAT_SCHEDULE["payables-payment-runs-process-daily"]
    assert entry["task"] == payment_runs_process_task.name == "payables.payment_runs_process"
    make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    run = _approved_run(ap_clerk, approver, currency="USD", pay_by=TODAY)
    first = payment_runs_process_task.apply(kwargs={"as_of": TODAY.isoformat()}).get()
    again = payment_runs_process_task.apply(kwargs={"as_of": TODAY.isoformat()}).get()
    assert (first, again) == ([run.number], [])


def test_eur_bill_paid_in_three_parts_at_another_rate_leaves_nothing_in_ap(
    ap_clerk, approver, make_vendor, make_bill
):
    # given an EUR bill of 100.00 booked at 1.1234567 (112.3457 USD in AP)
    from core.fx import fx_rate_set
    from payables.selectors import ap_functional_check

    booked = TODAY - timedelta(days=45)
    fx_rate_set(base="EUR", quote="USD", rate=Decimal("1.1234567"), rate_date=booked)
    fx_rate_set(base="EUR", quote="USD", rate=Decimal("1.20"), rate_date=TODAY)
    vendor = make_vendor("Berlin Teile", currency="EUR")
    bill = make_bill(vendor, "100.00", bill_date=booked, currency="EUR")
    ap = account_get_by_role(AccountRole.ACCOUNTS_PAYABLE)
    assert -account_balances(account=ap)["EUR"].functional_balance == Decimal("112.3457")
    # when it is paid 33.33 + 33.33 + 33.34 at 1.20 in three runs
    for part in ("33.33", "33.33", "33.34"):
        run = _approved_run(
            ap_clerk,
            approver,
            currency="EUR",
            pay_by=TODAY,
            file_format="pain001",
            amounts={bill.pk: Decimal(part)},
        )
        payment_run_export(run_id=run.pk, actor=ap_clerk)
        payment_run_confirm(run_id=run.pk, actor=ap_clerk)
    # then the bill is paid and AP holds nothing in EUR nor in USD
    assert Bill.objects.get(pk=bill.pk).status == BillStatus.PAID
    assert account_balances(account=ap)["EUR"].functional_balance == Decimal(0)
    assert ap_functional_check() == []


def test_whoever_changed_a_payees_bank_details_neither_approves_nor_releases_the_run(
    ap_clerk, approver, vendor, make_bill, make_user
):
    # given a finance admin who changed the vendor's bank details, approved by another
    changer, second = make_user("finance_admin"), make_user("finance_admin")
    change = vendor_bank_change_request(
        vendor_id=vendor.pk,
        bank=BankDetails(routing_number="021000021", account_number="5555666677"),
        reason="Letter from vendor",
        actor=changer,
    )
    vendor_bank_change_approve(change_id=change.pk, actor=second)
    make_bill(vendor, "10.00", bill_date=TODAY - timedelta(days=40))
    run = payment_run_create(actor=ap_clerk, currency="USD", pay_by=TODAY, payment_date=TODAY)
    payment_run_submit(run_id=run.pk, actor=ap_clerk)
    # when the changer approves the run that pays to those details: refused, nothing recorded
    with pytest.raises(ApprovalRefused) as refused:
        payment_run_approve(run_id=run.pk, actor=changer)
    assert refused.value.code == "bank_detail_author"
    assert f"bank change {change.pk}" in refused.value.message
    assert PaymentRun.objects.get(pk=run.pk).status == PaymentRunStatus.PENDING_APPROVAL
    # someone else approves; the changer cannot release the bank file either
    payment_run_approve(run_id=run.pk, actor=approver)
    with pytest.raises(ApprovalRefused):
        payment_run_export(run_id=run.pk, actor=changer)
    assert PaymentRun.objects.get(pk=run.pk).status == PaymentRunStatus.APPROVED
    # a third person releases it
    assert payment_run_export(run_id=run.pk, actor=ap_clerk).status == PaymentRunStatus.EXPORTED
