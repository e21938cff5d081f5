"""Payment plans: installments summing exactly (B4, USD and JPY), schedules, payments paying
installments in order, reminders once, defaults, the API and its roles."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from hypothesis import given
from hypothesis import strategies as st

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus, PaymentMethodType
from billing.models import Invoice, Payment
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.exceptions import Conflict
from core.fx import fx_rate_set
from core.money import quantum
from core.roles import Role
from receivables.models import (
    Installment,
    InstallmentReminder,
    PaymentPlan,
    PaymentPlanStatus,
)
from receivables.services.payment_plans import (
    PaymentPlanError,
    installment_amounts,
    installment_dates,
    payment_plan_create,
    payment_plan_payment_record,
    payment_plans_run,
)

D = Decimal
FIRST = date(2026, 4, 1)


# --- Amounts and dates (no database) ------------------------------------------------------------


@given(
    currency=st.sampled_from(["USD", "JPY"]),
    units=st.integers(min_value=1, max_value=10**15),
    count=st.integers(min_value=1, max_value=120),
)
def test_installments_sum_exactly_to_the_total(currency: str, units: int, count: int) -> None:
    # given a total of whole minor units, split into no more parts than it has units
    count = min(count, units)
    total = D(units) * quantum(currency)
    # when
    amounts = installment_amounts(total=total, count=count, currency=currency)
    # then they sum back exactly, each a positive whole number of minor units, within one unit
    assert len(amounts) == count
    assert sum(amounts, D(0)) == total
    assert all(a > 0 and a == a.quantize(quantum(currency)) for a in amounts)
    assert max(amounts) - min(amounts) <= quantum(currency)
    assert amounts == sorted(amounts, reverse=True)


def test_installment_amounts_jpy_and_usd_examples() -> None:
    assert installment_amounts(total=D("10000"), count=3, currency="JPY") == [
        D("3334"),
        D("3333"),
        D("3333"),
    ]
    assert installment_amounts(total=D("100.00"), count=3, currency="USD") == [
        D("33.34"),
        D("33.33"),
        D("33.33"),
    ]


def test_monthly_dates_keep_the_day_or_the_month_end() -> None:
    got = installment_dates(first_due_date=date(2026, 1, 31), count=4, interval_days=None)
    assert got == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_dates_every_n_days() -> None:
    got = installment_dates(first_due_date=FIRST, count=3, interval_days=14)
    assert got == [date(2026, 4, 1), date(2026, 4, 15), date(2026, 4, 29)]


# --- Services -----------------------------------------------------------------------------------


@pytest.fixture
def clerk(make_user):
    return make_user(Role.AR_CLERK)


def make_customer(actor, currency: str = "USD"):
    if currency != "USD":
        for offset in range(-70, 200, 5):
            fx_rate_set(
                base=currency,
                quote="USD",
                rate=D("0.0067"),
                rate_date=FIRST + timedelta(days=offset),
            )
    return customer_create(
        actor=actor,
        name=f"Planned {currency}",
        email="ap@planned.example",
        currency=currency,
        payment_terms=30,
    )


def make_invoice(actor, customer, amount: str, *, due: date) -> Invoice:
    return invoice_create(
        actor=actor,
        customer_id=customer.pk,
        issue=True,
        issue_date=due - timedelta(days=30),
        due_date=due,
        lines=[
            LineInput(description="Services", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
        ],
    )


@pytest.fixture
def usd_plan(finance_admin, clerk):
    customer = make_customer(finance_admin)
    older = make_invoice(finance_admin, customer, "1000.00", due=date(2026, 2, 1))
    newer = make_invoice(finance_admin, customer, "500.00", due=date(2026, 3, 1))
    plan = payment_plan_create(
        actor=clerk,
        customer_id=customer.pk,
        invoice_ids=[newer.pk, older.pk],
        installments=3,
        first_due_date=FIRST,
    )
    return plan, older, newer


def statuses(plan: PaymentPlan) -> list[str]:
    return list(plan.installments.order_by("sequence").values_list("status", flat=True))


@pytest.mark.django_db
def test_plan_covers_the_amount_due_in_equal_monthly_installments(usd_plan) -> None:
    plan, _older, _newer = usd_plan
    rows = list(plan.installments.order_by("sequence"))
    assert plan.total.amount == D("1500.00")
    assert plan.status == PaymentPlanStatus.ACTIVE
    assert [(i.sequence, i.due_date, i.amount.amount) for i in rows] == [
        (1, date(2026, 4, 1), D("500.00")),
        (2, date(2026, 5, 1), D("500.00")),
        (3, date(2026, 6, 1), D("500.00")),
    ]
    assert ar_subledger_check() == []


@pytest.mark.django_db
def test_jpy_plan_sums_exactly(finance_admin, clerk) -> None:
    customer = make_customer(finance_admin, "JPY")
    invoice = make_invoice(finance_admin, customer, "10000", due=date(2026, 3, 1))
    plan = payment_plan_create(
        actor=clerk,
        customer_id=customer.pk,
        invoice_ids=[invoice.pk],
        installments=3,
        first_due_date=FIRST,
        interval_days=14,
    )
    amounts = list(plan.installments.order_by("sequence").values_list("amount", flat=True))
    assert amounts == [D("3334"), D("3333"), D("3333")]
    assert sum(amounts, D(0)) == plan.total.amount == D("10000")


@pytest.mark.django_db
def test_payments_pay_installments_in_order_and_invoices_oldest_first(usd_plan, clerk) -> None:
    plan, older, newer = usd_plan
    # when 600.00 is paid: one installment covered, 100.00 toward the next
    payment = payment_plan_payment_record(
        actor=clerk,
        plan_id=plan.pk,
        amount=D("600.00"),
        method=PaymentMethodType.CHECK,
        received_date=date(2026, 4, 1),
    )
    plan.refresh_from_db()
    older.refresh_from_db()
    newer.refresh_from_db()
    # then
    assert statuses(plan) == ["paid", "scheduled", "scheduled"]
    first = plan.installments.get(sequence=1)
    assert (first.paid_payment_id, first.paid_date) == (payment.pk, date(2026, 4, 1))
    assert plan.amount_paid.amount == D("600.00")
    assert older.amount_due.amount == D("400.00")
    assert newer.amount_due.amount == D("500.00")
    assert ar_subledger_check() == []
    # when the rest is paid
    payment_plan_payment_record(
        actor=clerk,
        plan_id=plan.pk,
        amount=D("900.00"),
        method=PaymentMethodType.CHECK,
        received_date=date(2026, 5, 1),
    )
    plan.refresh_from_db()
    older.refresh_from_db()
    newer.refresh_from_db()
    assert statuses(plan) == ["paid", "paid", "paid"]
    assert plan.status == PaymentPlanStatus.COMPLETED
    assert older.status == newer.status == InvoiceStatus.PAID
    assert ar_subledger_check() == []


@pytest.mark.django_db
def test_overpaying_a_plan_is_refused_and_changes_nothing(usd_plan, clerk) -> None:
    plan, _older, _newer = usd_plan
    with pytest.raises(PaymentPlanError):
        payment_plan_payment_record(
            actor=clerk, plan_id=plan.pk, amount=D("1500.01"), method=PaymentMethodType.CHECK
        )
    plan.refresh_from_db()
    assert plan.amount_paid.amount == 0
    assert Payment.objects.count() == 0
    assert statuses(plan) == ["scheduled"] * 3


@pytest.mark.django_db
def test_an_invoice_in_an_active_plan_cannot_join_another(usd_plan, clerk) -> None:
    plan, older, _newer = usd_plan
    with pytest.raises(Conflict) as exc:
        payment_plan_create(
            actor=clerk,
            customer_id=plan.customer_id,
            invoice_ids=[older.pk],
            installments=2,
            first_due_date=FIRST,
        )
    assert exc.value.code == "invoice_in_payment_plan"
    assert PaymentPlan.objects.count() == 1


@pytest.mark.django_db
def test_more_installments_than_minor_units_is_refused(finance_admin, clerk) -> None:
    customer = make_customer(finance_admin, "JPY")
    invoice = make_invoice(finance_admin, customer, "3", due=date(2026, 3, 1))
    with pytest.raises(PaymentPlanError):
        payment_plan_create(
            actor=clerk,
            customer_id=customer.pk,
            invoice_ids=[invoice.pk],
            installments=4,
            first_due_date=FIRST,
        )
    assert PaymentPlan.objects.count() == 0
    assert Installment.objects.count() == 0


# --- The daily run ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reminder_sent_once_before_each_installment(usd_plan) -> None:
    plan, _older, _newer = usd_plan
    # 4 days before: nothing yet
    assert payment_plans_run(as_of=FIRST - timedelta(days=4)).reminders == []
    # 3 days before: one reminder for installment 1
    result = payment_plans_run(as_of=FIRST - timedelta(days=3))
    first = plan.installments.get(sequence=1)
    assert result.reminders == [first.pk]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ap@planned.example"]
    assert "installment 1 of 3" in mail.outbox[0].body
    assert "500.00 USD" in mail.outbox[0].body
    # again the same day and the next days: nothing more
    for days in (3, 2, 0):
        assert payment_plans_run(as_of=FIRST - timedelta(days=days)).reminders == []
    assert len(mail.outbox) == 1
    assert InstallmentReminder.objects.filter(installment=first).count() == 1


@pytest.mark.django_db
def test_no_reminder_for_a_paid_installment(usd_plan, clerk) -> None:
    plan, _older, _newer = usd_plan
    payment_plan_payment_record(
        actor=clerk, plan_id=plan.pk, amount=D("500.00"), method=PaymentMethodType.CHECK
    )
    assert payment_plans_run(as_of=FIRST - timedelta(days=1)).reminders == []
    assert mail.outbox == []


@pytest.mark.django_db
def test_unpaid_installment_goes_overdue_then_defaults_the_plan(usd_plan) -> None:
    plan, _older, _newer = usd_plan
    payment_plans_run(as_of=FIRST + timedelta(days=1))
    plan.refresh_from_db()
    assert statuses(plan) == ["overdue", "scheduled", "scheduled"]
    assert plan.status == PaymentPlanStatus.ACTIVE
    # 14 days past due: still active; 15: defaulted
    payment_plans_run(as_of=FIRST + timedelta(days=14))
    plan.refresh_from_db()
    assert plan.status == PaymentPlanStatus.ACTIVE
    result = payment_plans_run(as_of=FIRST + timedelta(days=15))
    plan.refresh_from_db()
    assert result.defaulted == [plan.pk]
    assert plan.status == PaymentPlanStatus.DEFAULTED
    assert statuses(plan) == ["missed", "canceled", "canceled"]
    # a repeated run changes nothing, and the invoices stay open receivables
    assert payment_plans_run(as_of=FIRST + timedelta(days=15)).defaulted == []
    assert ar_subledger_check() == []


@pytest.mark.django_db
def test_a_late_payment_clears_the_overdue_installment(usd_plan, clerk) -> None:
    plan, _older, _newer = usd_plan
    payment_plans_run(as_of=FIRST + timedelta(days=5))
    payment_plan_payment_record(
        actor=clerk,
        plan_id=plan.pk,
        amount=D("500.00"),
        method=PaymentMethodType.CHECK,
        received_date=FIRST + timedelta(days=6),
    )
    payment_plans_run(as_of=FIRST + timedelta(days=20))
    plan.refresh_from_db()
    assert plan.status == PaymentPlanStatus.ACTIVE
    assert statuses(plan) == ["paid", "scheduled", "scheduled"]


# --- API ----------------------------------------------------------------------------------------

URL = "/api/accounts/payment-plans"


@pytest.mark.django_db
def test_api_create_returns_the_schedule(client_for, finance_admin) -> None:
    customer = make_customer(finance_admin)
    invoice = make_invoice(finance_admin, customer, "100.00", due=date(2026, 3, 1))
    body = {
        "customer": customer.pk,
        "invoices": [invoice.pk],
        "installments": 3,
        "first_due_date": "2026-04-01",
        "interval_days": 30,
    }
    response = client_for(Role.AR_CLERK).post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    got = response.json()
    plan = PaymentPlan.objects.get()
    assert got.pop("created_at")
    assert got == {
        "id": plan.pk,
        "customer": customer.pk,
        "currency": "USD",
        "total": "100.00",
        "amount_paid": "0.00",
        "status": "active",
        "first_due_date": "2026-04-01",
        "interval_days": 30,
        "monthly": False,
        "payment_method": None,
        "invoices": [{"invoice": invoice.pk, "number": invoice.number, "amount": "100.00"}],
        "installments": [
            {
                "sequence": n,
                "due_date": due,
                "amount": amount,
                "status": "scheduled",
                "attempts": 0,
                "paid_date": None,
                "paid_payment": None,
            }
            for n, due, amount in [
                (1, "2026-04-01", "33.34"),
                (2, "2026-05-01", "33.33"),
                (3, "2026-05-31", "33.33"),
            ]
        ],
    }
    # and it reads back the same for a controller, in the list and alone
    controller = client_for(Role.CONTROLLER)
    listed = controller.get(URL, {"customer": customer.pk})
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["results"]] == [plan.pk]
    detail = controller.get(f"{URL}/{plan.pk}")
    assert detail.status_code == 200
    assert detail.json()["installments"] == got["installments"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.AUDITOR, Role.CONTROLLER, Role.AP_CLERK])
def test_api_create_refused_for_roles_without_it(client_for, finance_admin, role) -> None:
    customer = make_customer(finance_admin)
    invoice = make_invoice(finance_admin, customer, "100.00", due=date(2026, 3, 1))
    body = {
        "customer": customer.pk,
        "invoices": [invoice.pk],
        "installments": 2,
        "first_due_date": "2026-04-01",
    }
    response = client_for(role).post(URL, body, format="json")
    assert response.status_code == 403
    assert PaymentPlan.objects.count() == 0


@pytest.mark.django_db
def test_api_view_refused_without_role(client_for) -> None:
    assert client_for(Role.AP_CLERK).get(URL).status_code == 403


@pytest.mark.django_db
def test_api_domain_refusal_is_a_400(client_for, finance_admin) -> None:
    customer = make_customer(finance_admin, "JPY")
    invoice = make_invoice(finance_admin, customer, "3", due=date(2026, 3, 1))
    body = {
        "customer": customer.pk,
        "invoices": [invoice.pk],
        "installments": 4,
        "first_due_date": "2026-04-01",
    }
    response = client_for(Role.FINANCE_ADMIN).post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "payment_plan_invalid"
    assert PaymentPlan.objects.count() == 0
