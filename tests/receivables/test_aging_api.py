"""GET /api/accounts/receivable: open items, buckets, filters, totals, as_of, CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.payments import AllocationInput, payment_record
from core.fx import fx_rate_set

D = Decimal
AS_OF = date(2026, 6, 30)
URL = "/api/accounts/receivable"
pytestmark = pytest.mark.django_db


@pytest.fixture
def book(make_user):
    """Invoices due on various days before 2026-06-30, in USD and EUR."""
    admin = make_user("finance_admin")
    for offset in range(0, 180, 6):
        fx_rate_set(
            base="EUR",
            quote="USD",
            rate=D("1.1"),
            rate_date=date(2026, 1, 1) + timedelta(days=offset),
        )
    usd = customer_create(
        actor=admin, name="US Co", email="a@x.example", currency="USD", payment_terms=0
    )
    eur = customer_create(
        actor=admin, name="EU Co", email="b@x.example", currency="EUR", payment_terms=0
    )

    def inv(customer, amount: str, due: date):
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=due,
            due_date=due,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    invoices = {
        "not_due": inv(usd, "100.00", date(2026, 6, 30)),
        "d10": inv(usd, "200.00", date(2026, 6, 20)),
        "d45": inv(usd, "300.00", date(2026, 5, 16)),
        "d75": inv(eur, "400.00", date(2026, 4, 16)),
        "d120": inv(eur, "500.00", date(2026, 3, 2)),
    }
    return admin, usd, eur, invoices


def test_open_items_with_buckets_and_totals(integration_client, book) -> None:
    admin, usd, _eur, invoices = book
    # a partial payment, a void and a credit note reduce what is open
    payment_record(
        actor=admin,
        customer_id=usd.pk,
        amount=D("50.00"),
        currency="USD",
        method="ach",
        received_date=date(2026, 6, 21),
        allocations=[AllocationInput(invoices["d10"].pk, D("50.00"))],
    )
    credit_note_issue(
        actor=admin,
        invoice_id=invoices["d75"].pk,
        reason="x",
        issue_date=date(2026, 6, 1),
        lines=[CreditLineInput(description="x", amount=D("100.00"), tax_rate=D(0))],
    )
    response = integration_client.get(URL, {"as_of": "2026-06-30"})
    assert response.status_code == 200
    data = response.json()
    got = [(r["number"], r["amount_due"], r["days_past_due"], r["bucket"]) for r in data["results"]]
    assert got == [
        (invoices["d120"].number, "500.00", 120, "90+"),
        (invoices["d75"].number, "300.00", 75, "61-90"),
        (invoices["d45"].number, "300.00", 45, "31-60"),
        (invoices["d10"].number, "150.00", 10, "1-30"),
        (invoices["not_due"].number, "100.00", 0, "current"),
    ]
    assert data["totals"] == {
        "EUR": {
            "current": "0.00",
            "1-30": "0.00",
            "31-60": "0.00",
            "61-90": "300.00",
            "90+": "500.00",
            "total": "800.00",
        },
        "USD": {
            "current": "100.00",
            "1-30": "150.00",
            "31-60": "300.00",
            "61-90": "0.00",
            "90+": "0.00",
            "total": "550.00",
        },
    }
    # a void takes it out from then on
    invoice_void(actor=admin, invoice_id=invoices["d45"].pk, reason="duplicate")
    later = integration_client.get(
        URL, {"as_of": timezone.localdate().isoformat(), "currency": "USD"}
    ).json()
    assert invoices["d45"].number not in [r["number"] for r in later["results"]]


def test_as_of_shows_what_was_open_then(integration_client, book) -> None:
    admin, usd, _, invoices = book
    payment_record(
        actor=admin,
        customer_id=usd.pk,
        amount=D("200.00"),
        currency="USD",
        method="ach",
        received_date=date(2026, 6, 25),
        allocations=[AllocationInput(invoices["d10"].pk, D("200.00"))],
    )
    before = integration_client.get(URL, {"as_of": "2026-06-24", "currency": "USD"}).json()
    after = integration_client.get(URL, {"as_of": "2026-06-30", "currency": "USD"}).json()
    assert invoices["d10"].number in [r["number"] for r in before["results"]]
    assert invoices["d10"].number not in [r["number"] for r in after["results"]]
    # the not-yet-issued invoice of 06-30 was not a receivable on 06-24
    assert invoices["not_due"].number not in [r["number"] for r in before["results"]]
    d10 = next(r for r in before["results"] if r["number"] == invoices["d10"].number)
    assert (d10["days_past_due"], d10["bucket"]) == (4, "1-30")


def test_filters_apply_to_items_and_totals(integration_client, book) -> None:
    _, usd, _, invoices = book
    data = integration_client.get(
        URL, {"as_of": "2026-06-30", "customer": usd.pk, "min_amount": "200.00", "page_size": 1}
    ).json()
    assert data["count"] == 2
    assert len(data["results"]) == 1
    assert data["totals"]["USD"]["total"] == "500.00"  # over the filtered set, not the page
    bucket = integration_client.get(URL, {"as_of": "2026-06-30", "bucket": "90+"}).json()
    assert [r["number"] for r in bucket["results"]] == [invoices["d120"].number]


@pytest.mark.parametrize(
    "params",
    [{"as_of": "30/06/2026"}, {"bucket": "old"}, {"min_amount": "1e3"}, {"customer": "abc"}],
)
def test_bad_filters_are_field_errors(integration_client, params) -> None:
    response = integration_client.get(URL, params)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(params)


def test_csv_export_has_every_row(integration_client, book) -> None:
    response = integration_client.get(URL, {"as_of": "2026-06-30", "format": "csv", "page_size": 1})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "invoice",
        "number",
        "customer",
        "currency",
        "total",
        "amount_due",
        "due_date",
        "days_past_due",
        "bucket",
    ]
    assert len(rows) == 6


def test_aggregation_is_done_by_the_database(
    integration_client, book, django_assert_max_num_queries
) -> None:
    # 9: the token's scope is one read of its own (core.api.scopes), whatever the data size
    with django_assert_max_num_queries(9):
        integration_client.get(URL, {"as_of": "2026-06-30"})


def test_auditor_may_read_and_ap_clerk_may_not(client_for, book) -> None:
    assert client_for("auditor").get(URL).status_code == 200
    assert client_for("ap_clerk").get(URL).status_code == 403


def test_today_uses_the_invoices_balances_and_agrees_with_the_rebuilt_ones(
    book, monkeypatch
) -> None:
    from receivables import selectors

    admin, usd, _eur, invoices = book
    payment_record(
        actor=admin,
        customer_id=usd.pk,
        amount=D("75.00"),
        currency="USD",
        method="ach",
        received_date=date(2026, 6, 21),
        allocations=[AllocationInput(invoices["d10"].pk, D("75.00"))],
    )
    today = timezone.localdate()

    def rows(qs):
        return sorted((i.pk, i.due_as_of, i.bucket) for i in qs)

    fast = rows(selectors.receivables_open(as_of=today))
    fast_totals = selectors.receivables_totals_and_count(as_of=today)
    fast_usd_late = selectors.receivables_totals_and_count(
        as_of=today, currency="USD", bucket="90+"
    )
    # the same day through the rebuilt balances (as if it were a past date)
    monkeypatch.setattr(selectors.timezone, "localdate", lambda: today + timedelta(days=1))
    rebuilt = rows(selectors.receivables_open(as_of=today))
    assert fast == rebuilt
    assert len(fast) == 5
    assert fast_totals == selectors.receivables_totals_and_count(as_of=today)
    assert fast_totals[1] == 5
    assert fast_usd_late == selectors.receivables_totals_and_count(
        as_of=today, currency="USD", bucket="90+"
    )
