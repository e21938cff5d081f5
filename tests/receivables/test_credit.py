"""Credit score (receivables.scoring) and GET /api/accounts/credit/{customer}."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from billing.models import Customer
from billing.services.customers import customer_create, customer_update
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from core.roles import Role
from receivables.scoring import CreditFigures, credit_figures_get, credit_score
from tests.conftest import verified_client

D = Decimal

days_lists = st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=30)
limits = st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2))
exposures = st.decimals(min_value=-(10**5), max_value=10**7, places=2)


def figures(**kwargs) -> CreditFigures:
    base = {
        "days_late": (0,),
        "disputes": 0,
        "tenure_days": 365,
        "exposure": D(0),
        "credit_limit": None,
    }
    return CreditFigures(**{**base, **kwargs})


@given(
    days=days_lists,
    index=st.integers(min_value=0),
    later=st.integers(min_value=1, max_value=400),
    disputes=st.integers(min_value=0, max_value=10),
    tenure=st.integers(min_value=0, max_value=2000),
    exposure=exposures,
    limit=limits,
)
def test_paying_later_never_raises_the_score(days, index, later, disputes, tenure, exposure, limit):
    # given any history, and the same history with one invoice paid later
    before = figures(
        days_late=tuple(days),
        disputes=disputes,
        tenure_days=tenure,
        exposure=exposure,
        credit_limit=limit,
    )
    slower = list(days)
    slower[index % len(days)] += later
    after = figures(
        days_late=tuple(slower),
        disputes=disputes,
        tenure_days=tenure,
        exposure=exposure,
        credit_limit=limit,
    )
    # then
    assert credit_score(after).score <= credit_score(before).score
    assert 0 <= credit_score(after).score <= 100


@given(
    days=days_lists,
    disputes=st.integers(min_value=0, max_value=10),
    more=st.integers(min_value=1, max_value=5),
    tenure=st.integers(min_value=0, max_value=2000),
    shorter=st.integers(min_value=1, max_value=800),
    exposure=exposures,
    higher=st.decimals(min_value=D("0.01"), max_value=10**6, places=2),
    limit=limits,
)
def test_worse_figures_never_raise_the_score(
    days, disputes, more, tenure, shorter, exposure, higher, limit
):
    def score(**changes) -> int:
        base = {
            "days_late": tuple(days),
            "disputes": disputes,
            "tenure_days": tenure,
            "exposure": exposure,
            "credit_limit": limit,
        }
        return credit_score(CreditFigures(**{**base, **changes})).score

    now = score()
    assert score(disputes=disputes + more) <= now
    assert score(tenure_days=max(tenure - shorter, 0)) <= now
    assert score(exposure=exposure + higher) <= now
    assert score(days_late=(*days, 1)) <= score(days_late=(*days, 0))


def test_factors_show_why_and_add_up_to_the_score():
    # given 3 invoices 10, 0 and 31 days late, 181 days a customer, 800 of a 2000 limit used
    result = credit_score(
        figures(days_late=(10, 0, 31), tenure_days=181, exposure=D(800), credit_limit=D(2000))
    )
    # then each factor shows its value, weight and the points it took off
    assert [(f.name, f.value, f.weight, f.contribution) for f in result.factors] == [
        ("average_days_late", D("13.7"), 30, D("-6.8")),
        ("share_paid_late", D("0.6667"), 25, D("-16.7")),
        ("disputes", D(0), 15, D("0.0")),
        ("tenure", D(181), 10, D("-7.5")),
        ("utilisation", D("0.4000"), 20, D("-8.0")),
    ]
    assert result.score == 61 == 100 + sum(f.contribution for f in result.factors)
    assert result.factors[1].explanation == "2 of 3 invoices paid late or overdue"
    assert result.factors[4].explanation == "40.0% of the credit limit in use"


def test_best_and_worst():
    assert credit_score(figures(tenure_days=730)).score == 100
    worst = figures(
        days_late=(90, 120),
        disputes=9,
        tenure_days=0,
        exposure=D(5000),
        credit_limit=D(1000),
    )
    assert credit_score(worst).score == 0


# --- From the books, and the API --------------------------------------------------------------


@pytest.fixture
def history(make_user, time_machine):
    """A USD customer since 2026-01-01 (30-day terms, 2,000.00 limit): one invoice paid 10
    days late, one on time, one 800.00 open and 31 days overdue on 2026-07-01."""
    admin = make_user(Role.FINANCE_ADMIN)
    time_machine.move_to("2026-01-01 12:00Z", tick=False)
    customer = customer_create(
        actor=admin,
        name="Acme",
        email="a@x.example",
        currency="USD",
        payment_terms=30,
        credit_limit=D("2000"),
    )

    def invoice(amount: str, issued: date):
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=issued,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    def pay(inv, on: date) -> None:
        # Money is received on or before today: the clock moves to the day it came in.
        time_machine.move_to(f"{on.isoformat()} 12:00Z", tick=False)
        payment_record(
            actor=admin,
            customer_id=customer.pk,
            amount=inv.total.amount,
            currency="USD",
            method="ach",
            received_date=on,
            allocations=[AllocationInput(inv.pk, inv.total.amount)],
        )

    late = invoice("1000.00", date(2026, 1, 1))  # due 01-31
    pay(late, date(2026, 2, 10))
    on_time = invoice("500.00", date(2026, 2, 1))  # due 03-03
    pay(on_time, date(2026, 3, 1))
    invoice("800.00", date(2026, 5, 1))  # due 05-31
    time_machine.move_to("2026-07-01 12:00Z", tick=False)
    return Customer.objects.get(pk=customer.pk)


@pytest.mark.django_db
def test_figures_from_the_books(history):
    got = credit_figures_get(customer=history, as_of=date(2026, 7, 1))
    assert got == CreditFigures(
        days_late=got.days_late,
        disputes=0,
        tenure_days=181,
        exposure=D("800.00"),
        credit_limit=D("2000.0000"),
    )
    assert sorted(got.days_late) == [0, 10, 31]


@pytest.mark.django_db
def test_tenure_counts_from_the_day_the_customer_was_won(history, make_user):
    # given the customer moved over from an earlier system, a customer since 2025-03-01
    customer_update(
        actor=make_user(Role.FINANCE_ADMIN), customer_id=history.pk, acquired_on=date(2025, 3, 1)
    )
    # when the figures are read on 2026-07-01
    got = credit_figures_get(customer=Customer.objects.get(pk=history.pk), as_of=date(2026, 7, 1))
    # then the tenure is 487 days, not the 181 since the record was made
    assert got.tenure_days == 487


URL = "/api/accounts/credit/{}"


@pytest.mark.django_db
def test_api_shape(client_for, history):
    response = client_for(Role.AR_CLERK).get(URL.format(history.pk))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body == {
        "customer": history.pk,
        "name": "Acme",
        "currency": "USD",
        "as_of": "2026-07-01",
        "score": 61,
        "factors": [
            {
                "name": "average_days_late",
                "value": "13.7",
                "weight": 30,
                "contribution": "-6.8",
                "explanation": "13.7 days late on average over 3 paid or overdue invoices "
                "(full weight at 60 days)",
            },
            {
                "name": "share_paid_late",
                "value": "0.6667",
                "weight": 25,
                "contribution": "-16.7",
                "explanation": "2 of 3 invoices paid late or overdue",
            },
            {
                "name": "disputes",
                "value": "0",
                "weight": 15,
                "contribution": "0.0",
                "explanation": "0 disputes (full weight at 5)",
            },
            {
                "name": "tenure",
                "value": "181",
                "weight": 10,
                "contribution": "-7.5",
                "explanation": "customer for 181 days (no deduction from 730 days)",
            },
            {
                "name": "utilisation",
                "value": "0.4000",
                "weight": 20,
                "contribution": "-8.0",
                "explanation": "40.0% of the credit limit in use",
            },
        ],
        "credit_limit": "2000.00",
        "credit_hold": False,
        "credit_hold_reason": "",
        "exposure": "800.00",
        "exposure_detail": {
            "open_amount": "800.00",
            "credit_balance": "0.00",
            "converted_from": [],
            "rate_date": "2026-07-01",
        },
        "available": "1200.00",
    }


@pytest.mark.django_db
def test_api_without_limit_and_unknown_customer(client_for, make_user):
    customer = customer_create(
        actor=make_user(Role.FINANCE_ADMIN), name="New", email="n@x.example", currency="JPY"
    )
    client = client_for(Role.AUDITOR)
    body = client.get(URL.format(customer.pk)).json()
    assert (body["credit_limit"], body["available"], body["exposure"]) == (None, None, "0")
    assert body["factors"][4]["explanation"] == "no credit limit"
    missing = client.get(URL.format(999_999))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.FINANCE_ADMIN, 200),
        (Role.AR_CLERK, 200),
        (Role.APPROVER, 200),
        (Role.CONTROLLER, 200),
        (Role.AUDITOR, 200),
        (Role.AP_CLERK, 403),
    ],
)
def test_api_roles(client_for, make_user, role, expected):
    customer = customer_create(
        actor=make_user(Role.FINANCE_ADMIN), name="R", email="r@x.example", currency="USD"
    )
    assert client_for(role).get(URL.format(customer.pk)).status_code == expected


@pytest.mark.django_db
def test_api_anonymous_and_unverified(make_user, integration_client):
    from rest_framework.test import APIClient

    customer = customer_create(
        actor=make_user(Role.FINANCE_ADMIN), name="R", email="r@x.example", currency="USD"
    )
    assert APIClient().get(URL.format(customer.pk)).status_code in (401, 403)
    unverified = APIClient()
    unverified.force_login(make_user(Role.FINANCE_ADMIN))
    assert unverified.get(URL.format(customer.pk)).status_code == 403
    assert integration_client.get(URL.format(customer.pk)).status_code == 200


# --- The admin credit panel on billing's customer page ------------------------------------------


def panel_of(html: str) -> str:
    start = html.index('<div class="credit-panel">')
    return html[start : html.index("</div>", start)]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.FINANCE_ADMIN, Role.AR_CLERK, Role.AUDITOR])
def test_admin_customer_page_shows_the_credit_panel(make_user, history, role):
    # given a customer with a history (score 61) and a staff member signed in with a second factor
    client = verified_client(make_user(role))
    # when
    response = client.get(reverse("admin:billing_customer_change", args=[history.pk]))
    # then the panel shows the score, each factor, the limit, the exposure and the hold
    assert response.status_code == 200
    panel = panel_of(response.content.decode())
    assert '<span class="credit-score">61</span> / 100 (as of 2026-07-01)' in panel
    rows = re.findall(
        r'<tr class="credit-factor" data-factor="(\w+)"><td>[^<]*</td><td>([^<]*)</td>'
        r"<td>(\d+)</td><td>([^<]*)</td>",
        panel,
    )
    assert rows == [
        ("average_days_late", "13.7", "30", "-6.8"),
        ("share_paid_late", "0.6667", "25", "-16.7"),
        ("disputes", "0", "15", "0.0"),
        ("tenure", "181", "10", "-7.5"),
        ("utilisation", "0.4000", "20", "-8.0"),
    ]
    assert '<span class="credit-limit">2,000.00 USD</span>' in panel
    assert '<span class="credit-exposure">800.00 USD</span>' in panel
    assert "(open 800.00 USD less credit balance 0.00 USD)" in panel
    assert '<span class="credit-available">1,200.00 USD</span>' in panel
    assert '<span class="credit-hold">No</span>' in panel


@pytest.mark.django_db
def test_admin_credit_panel_shows_a_hold_and_no_limit(make_user, history):
    # given a customer put on hold, its limit removed
    admin = make_user(Role.FINANCE_ADMIN)
    customer_update(
        actor=admin,
        customer_id=history.pk,
        credit_limit=None,
        credit_hold=True,
        credit_hold_reason="Cheque <bounced>",
    )
    # when
    response = verified_client(admin).get(
        reverse("admin:billing_customer_change", args=[history.pk])
    )
    # then (the reason is escaped)
    panel = panel_of(response.content.decode())
    assert '<span class="credit-limit">none</span>' in panel
    assert '<span class="credit-available">none</span>' in panel
    assert '<span class="credit-hold">On hold: Cheque &lt;bounced&gt;</span>' in panel
    assert 'data-factor="utilisation"><td>Utilisation of the limit</td><td>0</td>' in panel


@pytest.mark.django_db
def test_admin_credit_panel_needs_a_second_factor_and_is_absent_when_adding(make_user, history):
    # given a staff member signed in without a verified second factor
    unverified = APIClient()
    unverified.force_login(make_user(Role.FINANCE_ADMIN))
    # when / then the page is not shown, only the login
    response = unverified.get(reverse("admin:billing_customer_change", args=[history.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    # and a verified staff member adding a customer sees no panel (there is no customer yet)
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    response = client.get(reverse("admin:billing_customer_add"))
    assert response.status_code == 200
    assert "credit-panel" not in response.content.decode()
