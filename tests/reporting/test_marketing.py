"""Marketing spend (POST/GET /api/reporting/marketing-spend) and acquisition economics
(GET /api/reporting/acquisition, reporting.acquisition): idempotency, roles, input checks and
a hand-computed scenario of CAC, LTV, LTV:CAC and payback."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal as D
from itertools import pairwise

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_cancel,
    subscription_create,
)
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_set
from core.roles import Role
from reporting.acquisition import acquisition_economics, add_months, months_between
from reporting.models import MarketingSpend
from reporting.services import MarketingSpendExists, marketing_spend_record

SPEND = "/api/reporting/marketing-spend"
ACQUISITION = "/api/reporting/acquisition"
pytestmark = pytest.mark.django_db

BODY = {
    "channel": "search",
    "campaign": "spring",
    "period": "2026-03",
    "amount": "1000.00",
    "currency": "USD",
}


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# --- recording spend -------------------------------------------------------------------------


def test_posting_the_same_spend_twice_records_one_row(client_for) -> None:
    # given an integration client
    client = client_for(Role.INTEGRATION)
    # when the same spend is posted twice
    first = client.post(SPEND, BODY, format="json")
    second = client.post(SPEND, BODY, format="json")
    # then the first records it (201), the second returns the same row (200)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert first.json()["period"] == "2026-03"
    assert first.json()["amount"] == "1000.00"
    spend = MarketingSpend.objects.get()
    assert (spend.channel, spend.campaign, spend.period, spend.amount, spend.currency) == (
        "search",
        "spring",
        date(2026, 3, 1),
        D("1000.0000"),
        "USD",
    )


def test_another_amount_for_the_same_month_is_a_conflict_unless_replaced(client_for) -> None:
    # given 1,000.00 recorded for search/spring in March
    client = client_for(Role.CONTROLLER)
    client.post(SPEND, BODY, format="json")
    # when 1,250.00 is posted for the same key, then again with "replace"
    refused = client.post(SPEND, {**BODY, "amount": "1250.00"}, format="json")
    amount_after_refusal = MarketingSpend.objects.get().amount
    replaced = client.post(SPEND, {**BODY, "amount": "1250.00", "replace": True}, format="json")
    # then the first is a 409 naming the amount on record and nothing changed
    assert refused.status_code == 409
    assert refused.json()["code"] == "marketing_spend_exists"
    assert "1,000.00 USD" in refused.json()["message"]
    assert amount_after_refusal == D("1000.0000")
    # and the replacement overwrites it, keeping the old amount in history
    assert replaced.status_code == 200
    assert replaced.json()["amount"] == "1250.00"
    spend = MarketingSpend.objects.get()
    assert spend.amount == D("1250.0000")
    assert [h.amount for h in spend.history.order_by("history_id")] == [
        D("1000.0000"),
        D("1250.0000"),
    ]


def test_another_currency_or_campaign_is_another_row(client_for) -> None:
    # given spend for search/spring in USD
    client = client_for(Role.FINANCE_ADMIN)
    client.post(SPEND, BODY, format="json")
    # when the same month is posted in EUR, and for another campaign
    eur = client.post(SPEND, {**BODY, "currency": "EUR", "amount": "900.00"}, format="json")
    other = client.post(SPEND, {**BODY, "campaign": ""}, format="json")
    # then both are new rows
    assert (eur.status_code, other.status_code) == (201, 201)
    assert MarketingSpend.objects.count() == 3


@pytest.mark.parametrize(
    ("role", "get_status", "post_status"),
    [
        (Role.FINANCE_ADMIN, 200, 201),
        (Role.CONTROLLER, 200, 201),
        (Role.INTEGRATION, 200, 201),
        (Role.AUDITOR, 200, 403),
        (Role.AR_CLERK, 403, 403),
        (Role.AP_CLERK, 403, 403),
        (Role.APPROVER, 403, 403),
    ],
)
def test_roles_of_the_marketing_endpoints(client_for, role, get_status, post_status) -> None:
    # given a person of the role
    client = client_for(role)
    # when they read the spend and acquisition, and post spend
    listed = client.get(SPEND, {"from": "2026-01", "to": "2026-03"})
    acquisition = client.get(ACQUISITION, {"from": "2026-01", "to": "2026-03"})
    posted = client.post(SPEND, BODY, format="json")
    # then reading needs the financial reports permission, writing the marketing one
    assert (listed.status_code, acquisition.status_code) == (get_status, get_status)
    assert posted.status_code == post_status
    assert MarketingSpend.objects.count() == (1 if post_status == 201 else 0)


def test_anonymous_is_refused(client) -> None:
    # given no credentials
    # when the endpoints are called
    responses = [
        client.get(SPEND),
        client.get(ACQUISITION),
        client.post(SPEND, BODY, content_type="application/json"),
    ]
    # then each is refused and nothing is written
    assert all(r.status_code in (401, 403) for r in responses)
    assert MarketingSpend.objects.count() == 0


def test_the_service_checks_the_permission_itself(make_user) -> None:
    # given an auditor calling the service directly
    auditor = make_user(Role.AUDITOR)
    # when they record spend
    # then they are refused and nothing is written
    with pytest.raises(PermissionDeniedError):
        marketing_spend_record(
            actor=auditor,
            channel="search",
            campaign="",
            period=date(2026, 3, 1),
            amount=D(100),
            currency="USD",
        )
    assert MarketingSpend.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": 100.5}, "amount"),
        ({"amount": "0.001"}, "amount"),
        ({"amount": "10.5", "currency": "JPY"}, "amount"),
        ({"amount": "1000000000000.00"}, "amount"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-03-01"}, "period"),
        ({"period": "March"}, "period"),
        ({"period": "1900-01"}, "period"),
        ({"period": "9999-12"}, "period"),
        ({"channel": ""}, "channel"),
        ({"channel": "   "}, "channel"),
        ({"channel": "x" * 61}, "channel"),
        ({"campaign": "x" * 101}, "campaign"),
    ],
)
def test_bad_spend_is_refused_naming_the_field(client_for, change, field) -> None:
    # given a controller
    client = client_for(Role.CONTROLLER)
    # when a bad value is posted
    response = client.post(SPEND, {**BODY, **change}, format="json")
    # then 400 names the field and nothing is written
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert MarketingSpend.objects.count() == 0


@pytest.mark.parametrize("url", [SPEND, ACQUISITION])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-04", "to": "2026-03"}, "from"),
        ({"from": "2000-01", "to": "2020-01"}, "to"),
        ({"from": "2026-3"}, "from"),
        ({"to": "2026-00"}, "to"),
        ({"from": "2026-03-01"}, "from"),
        ({"from": "9999-01", "to": "9999-12"}, "from"),
        ({"from": "0001-01", "to": "0001-02"}, "from"),
    ],
)
def test_bad_periods_are_refused_naming_the_parameter(client_for, url, params, field) -> None:
    # given an auditor
    client = client_for(Role.AUDITOR)
    # when a bad period is asked for
    response = client.get(url, params)
    # then 400 names the parameter
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_nineteen_years_and_eleven_months_is_allowed(client_for) -> None:
    # given an auditor
    client = client_for(Role.AUDITOR)
    # when 240 months are asked for
    response = client.get(SPEND, {"from": "2006-04", "to": "2026-03"})
    # then it is answered
    assert response.status_code == 200


def test_the_list_gives_the_months_of_the_period(client_for) -> None:
    # given spend in February, March and April
    writer = client_for(Role.INTEGRATION)
    for month, amount in (("2026-02", "100.00"), ("2026-03", "200.00"), ("2026-04", "300.00")):
        writer.post(SPEND, {**BODY, "period": month, "amount": amount}, format="json")
    # when March to April is listed
    response = client_for(Role.AUDITOR).get(SPEND, {"from": "2026-03", "to": "2026-04"})
    # then those two months, oldest first
    assert response.status_code == 200
    rows = [(r["period"], r["amount"], r["currency"]) for r in response.json()["results"]]
    assert rows == [("2026-03", "200.00", "USD"), ("2026-04", "300.00", "USD")]


# --- acquisition economics -------------------------------------------------------------------


@pytest.fixture
def scenario(make_user):
    """March 2026.

    Churn: four customers pay 30.00 a month since February 20th; one cancels on March 15th, so
    1 of the 4 paying at the start of March is lost: 25.00 %.
    Acquired in March: search/spring S1 (1,200.00 in March and April; a draft of 700.00 is
    not revenue) and S2 (2,400.00 net plus 10 % tax); events E1 in EUR (600.00 at the issue
    rate 1.10 = 660.00 USD); O1 with no channel (300.00). S3 (search/spring) arrives in
    April, outside the period.
    Spend in March: search/spring 1,000.00 USD; events 900.00 EUR at the month-end rate
    1.20 = 1,080.00 USD; social/launch 500.00 USD (no customer yet). search/spring in
    February (999.00) is outside the period.
    """
    admin = make_user(Role.FINANCE_ADMIN)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=date(2026, 3, 10))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.20"), rate_date=date(2026, 3, 31))

    def customer(name: str, day: date, channel: str = "", campaign: str = "", currency="USD"):
        with time_machine.travel(at(day), tick=False):
            return customer_create(
                actor=admin,
                name=name,
                email=f"{name.lower()}@x.example",
                currency=currency,
                acquisition_channel=channel,
                campaign=campaign,
                tax_exempt=True,
            )

    def invoice(who, amount: str, issued: date, *, tax: str = "0", issue: bool = True):
        return invoice_create(
            actor=admin,
            customer_id=who.pk,
            issue=issue,
            issue_date=issued,
            due_date=issued,
            lines=[
                LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(tax))
            ],
        )

    product = product_create(actor=None, name="Pro")
    seat = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("30.00"),
    )
    subscriptions = []
    for n in range(4):
        old = customer(f"Old{n}", date(2026, 2, 20), "search", "spring")
        with time_machine.travel(at(date(2026, 2, 20)), tick=False):
            subscriptions.append(
                subscription_create(
                    actor=None,
                    customer_id=old.pk,
                    items=[ItemInput(seat.pk, D(1))],
                    start_date=date(2026, 2, 20),
                )
            )
    with time_machine.travel(at(date(2026, 3, 15)), tick=False):
        subscription_cancel(
            actor=None,
            subscription_id=subscriptions[0].pk,
            at_period_end=False,
            on_date=date(2026, 3, 15),
        )

    s1 = customer("S1", date(2026, 3, 2), "search", "spring")
    s2 = customer("S2", date(2026, 3, 20), "search", "spring")
    s2.tax_exempt = False
    s2.save()
    e1 = customer("E1", date(2026, 3, 10), "events", "", currency="EUR")
    o1 = customer("O1", date(2026, 3, 5))
    s3 = customer("S3", date(2026, 4, 1), "search", "spring")
    invoice(s1, "1200.00", date(2026, 3, 2))
    invoice(s1, "1200.00", date(2026, 4, 2))
    invoice(s1, "700.00", date(2026, 4, 3), issue=False)
    invoice(s2, "2400.00", date(2026, 3, 25), tax="0.10")
    invoice(e1, "600.00", date(2026, 3, 10))
    invoice(o1, "300.00", date(2026, 3, 5))
    invoice(s3, "5000.00", date(2026, 4, 1))

    for channel, campaign, month, amount, currency in (
        ("search", "spring", date(2026, 3, 1), "1000.00", "USD"),
        ("events", "", date(2026, 3, 1), "900.00", "EUR"),
        ("social", "launch", date(2026, 3, 1), "500.00", "USD"),
        ("search", "spring", date(2026, 2, 1), "999.00", "USD"),
    ):
        marketing_spend_record(
            actor=admin,
            channel=channel,
            campaign=campaign,
            period=month,
            amount=D(amount),
            currency=currency,
        )


def test_acquisition_economics_of_a_month_by_hand(scenario) -> None:
    # given the March scenario
    # when March's acquisition economics are computed
    report = acquisition_economics(month_from=date(2026, 3, 1), month_to=date(2026, 3, 1))
    # then churn is 1 of 4 = 25 %, the margin the default 80 %, amounts in USD
    assert (report.date_from, report.date_to) == (date(2026, 3, 1), date(2026, 3, 31))
    assert (report.currency, report.gross_margin, report.monthly_churn) == (
        "USD",
        D("0.80"),
        D("25.00"),
    )
    rows = {(r.channel, r.campaign): r for r in report.rows}
    assert list(rows) == [("", ""), ("events", ""), ("search", "spring"), ("social", "launch")]
    # search/spring: CAC 1,000 / 2 = 500; first year (2,400 + 2,400) / 2 = 2,400; ARPA 200;
    # LTV 200 x 0.8 / 0.25 = 640; LTV:CAC 1.28; payback 500 / 160 = 3.125 -> 3.13
    search = rows["search", "spring"]
    assert (search.new_customers, search.spend, search.cac) == (2, D("1000.00"), D("500.00"))
    assert (search.average_first_year_revenue, search.arpa) == (D("2400.00"), D("200.00"))
    assert (search.ltv, search.ltv_to_cac, search.payback_months) == (
        D("640.00"),
        D("1.28"),
        D("3.13"),
    )
    # events: spend 900 EUR x 1.20 = 1,080; revenue 600 EUR x 1.10 = 660; ARPA 55;
    # LTV 55 x 0.8 / 0.25 = 176; LTV:CAC 176 / 1,080 = 0.163; payback 1,080 / 44 = 24.545
    events = rows["events", ""]
    assert (events.new_customers, events.spend, events.cac) == (1, D("1080.00"), D("1080.00"))
    assert (events.average_first_year_revenue, events.arpa) == (D("660.00"), D("55.00"))
    assert (events.ltv, events.ltv_to_cac, events.payback_months) == (
        D("176.00"),
        D("0.16"),
        D("24.55"),
    )
    # no channel: no spend on record, so no CAC and nothing divided by it
    organic = rows["", ""]
    assert (organic.new_customers, organic.spend, organic.cac) == (1, D("0.00"), None)
    assert (organic.average_first_year_revenue, organic.ltv) == (D("300.00"), D("80.00"))
    assert (organic.ltv_to_cac, organic.payback_months) == (None, None)
    # social: spend but no customer: every per-customer figure is null
    social = rows["social", "launch"]
    assert (social.new_customers, social.spend) == (0, D("500.00"))
    assert (social.cac, social.average_first_year_revenue, social.arpa, social.ltv) == (
        None,
        None,
        None,
        None,
    )
    assert (social.ltv_to_cac, social.payback_months) == (None, None)


def test_the_gross_margin_setting_changes_ltv_and_payback(scenario, settings) -> None:
    # given a gross margin of 50 %
    settings.REPORTING_GROSS_MARGIN = "0.50"
    # when March is computed
    report = acquisition_economics(month_from=date(2026, 3, 1), month_to=date(2026, 3, 1))
    # then search/spring: LTV 200 x 0.5 / 0.25 = 400; payback 500 / 100 = 5
    search = next(r for r in report.rows if r.channel == "search")
    assert (report.gross_margin, search.ltv, search.payback_months) == (
        D("0.50"),
        D("400.00"),
        D("5.00"),
    )
    assert search.ltv_to_cac == D("0.80")


def test_no_churn_leaves_ltv_null_rather_than_infinite(scenario) -> None:
    # given February, when the four started paying and nobody had paid at its start
    # when February is computed
    report = acquisition_economics(month_from=date(2026, 2, 1), month_to=date(2026, 2, 1))
    # then churn is undefined and LTV with it; CAC 999 / 4 = 249.75 still stands
    search = next(r for r in report.rows if r.channel == "search")
    assert report.monthly_churn is None
    assert (search.new_customers, search.cac) == (4, D("249.75"))
    assert (search.ltv, search.ltv_to_cac) == (None, None)


def test_the_acquisition_api_renders_the_report(scenario, client_for) -> None:
    # given the March scenario and an auditor
    client = client_for(Role.AUDITOR)
    # when March is asked for
    response = client.get(ACQUISITION, {"from": "2026-03", "to": "2026-03"})
    # then the figures go out as decimal strings, nulls as null
    assert response.status_code == 200
    body = response.json()
    assert (body["currency"], body["monthly_churn"], body["gross_margin"]) == (
        "USD",
        "25.00",
        "0.8000",
    )
    search = next(r for r in body["rows"] if r["channel"] == "search")
    assert search == {
        "channel": "search",
        "campaign": "spring",
        "new_customers": 2,
        "spend": "1000.00",
        "cac": "500.00",
        "average_first_year_revenue": "2400.00",
        "arpa": "200.00",
        "ltv": "640.00",
        "ltv_to_cac": "1.28",
        "payback_months": "3.13",
    }
    social = next(r for r in body["rows"] if r["channel"] == "social")
    assert social["cac"] is None


def test_spend_without_a_rate_is_refused_not_misreported(make_user, client_for) -> None:
    # given spend in GBP and no GBP rate
    marketing_spend_record(
        actor=make_user(Role.FINANCE_ADMIN),
        channel="radio",
        campaign="",
        period=date(2026, 3, 1),
        amount=D("100.00"),
        currency="GBP",
    )
    # when March's acquisition is asked for
    response = client_for(Role.CONTROLLER).get(ACQUISITION, {"from": "2026-03", "to": "2026-03"})
    # then a 400 names the missing rate
    assert response.status_code == 400
    assert response.json()["code"] == "fx_rate_missing"


def test_the_conflict_names_the_amount_on_record(make_user) -> None:
    # given 1,000.00 on record
    admin = make_user(Role.FINANCE_ADMIN)
    key = {"channel": "search", "campaign": "", "period": date(2026, 3, 1), "currency": "USD"}
    marketing_spend_record(actor=admin, amount=D("1000.00"), **key)
    # when 1,000.01 is recorded without replace
    with pytest.raises(MarketingSpendExists) as refused:
        marketing_spend_record(actor=admin, amount=D("1000.01"), **key)
    # then it is refused and the row is unchanged
    assert refused.value.status_code == 409
    assert MarketingSpend.objects.get().amount == D("1000.0000")


def test_the_schema_lists_the_marketing_operations(client_for) -> None:
    # given the OpenAPI schema
    response = client_for(Role.AUDITOR).get("/api/schema/", {"format": "json"})
    # then the three operations are in it
    paths = response.json()["paths"]
    assert {"get", "post"} <= set(paths["/api/reporting/marketing-spend"])
    assert "get" in paths["/api/reporting/acquisition"]


@given(
    start=st.dates(min_value=date(1900, 1, 1), max_value=date(2400, 12, 1)),
    months=st.integers(min_value=0, max_value=240),
)
def test_months_between_counts_each_month_once(start: date, months: int) -> None:
    # given a first month and a number of months after it
    first = start.replace(day=1)
    last = add_months(first, months)
    # when the months between are listed
    listed = months_between(first, last)
    # then one per month, consecutive, from the first to the last
    assert len(listed) == months + 1
    assert listed[0] == first
    assert listed[-1] == last
    assert all(add_months(a, 1) == b for a, b in pairwise(listed))


# --- the workspace list ------------------------------------------------------------------------


def test_the_admin_lists_spend_read_only(make_user, client_for) -> None:
    # given 1,250.00 USD and 150,000 JPY recorded for March
    admin = make_user(Role.FINANCE_ADMIN)
    for amount, currency in (("1250.00", "USD"), ("150000", "JPY")):
        marketing_spend_record(
            actor=admin,
            channel="search",
            campaign="spring",
            period=date(2026, 3, 1),
            amount=D(amount),
            currency=currency,
        )
    spend = MarketingSpend.objects.get(currency="USD")
    auditor = client_for(Role.AUDITOR)
    # when an auditor opens the list, a row and the add page, and tries to change the row
    listed = auditor.get(reverse("admin:reporting_marketingspend_changelist"))
    shown = auditor.get(reverse("admin:reporting_marketingspend_change", args=[spend.pk]))
    add = auditor.get(reverse("admin:reporting_marketingspend_add"))
    change = auditor.post(
        reverse("admin:reporting_marketingspend_change", args=[spend.pk]), {"channel": "x"}
    )
    # then the list shows month, channel, campaign and the amount in its currency's units
    assert listed.status_code == 200
    text = listed.content.decode()
    assert "2026-03" in text
    assert "1,250.00 USD" in text
    assert "150,000 JPY" in text
    # and nothing can be added or changed
    assert shown.status_code == 200
    assert (add.status_code, change.status_code) == (403, 403)
    assert MarketingSpend.objects.get(pk=spend.pk).channel == "search"


def test_the_admin_list_is_for_those_who_read_financial_reports(client_for) -> None:
    # given an AR clerk
    # when they open the list
    response = client_for(Role.AR_CLERK).get(reverse("admin:reporting_marketingspend_changelist"))
    # then it is refused
    assert response.status_code == 403


def test_acquisition_reads_a_fixed_number_of_queries(scenario, make_user) -> None:
    # given the March scenario, read once
    march = {"month_from": date(2026, 3, 1), "month_to": date(2026, 3, 1)}
    with CaptureQueriesContext(connection) as before:
        acquisition_economics(**march)
    # and ten more search customers with an invoice each in March
    admin = make_user(Role.FINANCE_ADMIN)
    for n in range(10):
        with time_machine.travel(at(date(2026, 3, 3)), tick=False):
            more = customer_create(
                actor=admin,
                name=f"More{n}",
                email=f"more{n}@x.example",
                currency="USD",
                acquisition_channel="search",
                campaign="spring",
                tax_exempt=True,
            )
        invoice_create(
            actor=admin,
            customer_id=more.pk,
            issue=True,
            issue_date=date(2026, 3, 3),
            due_date=date(2026, 3, 3),
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(100), tax_rate=D(0))],
        )
    # when March is computed again
    with CaptureQueriesContext(connection) as after:
        report = acquisition_economics(**march)
    # then it took as many queries as before, and counts the twelve search customers
    assert len(after.captured_queries) == len(before.captured_queries)
    assert next(r for r in report.rows if r.channel == "search").new_customers == 12


# --- concurrent posts ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_records_of_one_month_make_one_row(make_user) -> None:
    # given eight callers at a barrier: four with 1,000.00, four with 1,250.00
    admin = make_user(Role.FINANCE_ADMIN)
    barrier = threading.Barrier(8)
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(amount: str) -> None:
        try:
            barrier.wait(timeout=10)
            result = marketing_spend_record(
                actor=admin,
                channel="search",
                campaign="spring",
                period=date(2026, 3, 1),
                amount=D(amount),
                currency="USD",
            )
            with lock:
                outcomes.append((amount, result.outcome))
        except MarketingSpendExists as exc:
            with lock:
                outcomes.append((amount, exc.code))
        finally:
            connection.close()

    # when they record the same channel, campaign and month at once
    threads = [threading.Thread(target=record, args=(a,)) for a in ["1000.00", "1250.00"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # then one row: one caller created it, those with its amount got it back, the others 409
    spend = MarketingSpend.objects.get()
    winner = f"{spend.amount:.2f}"
    assert len(outcomes) == 8
    assert sorted(o for a, o in outcomes if a == winner) == ["created"] + ["unchanged"] * 3
    assert [o for a, o in outcomes if a != winner] == ["marketing_spend_exists"] * 4


def test_a_customer_brought_over_counts_from_the_day_they_were_won(scenario, make_user) -> None:
    # given, recorded today (in May), a search/spring customer won on March 12th (moved over
    # from an earlier system) with a 600.00 invoice of March 20th
    admin = make_user(Role.FINANCE_ADMIN)
    with time_machine.travel(at(date(2026, 5, 4)), tick=False):
        moved = customer_create(
            actor=admin,
            name="Moved",
            email="moved@x.example",
            currency="USD",
            acquisition_channel="search",
            campaign="spring",
            tax_exempt=True,
            acquired_on=date(2026, 3, 12),
        )
        invoice_create(
            actor=admin,
            customer_id=moved.pk,
            issue=True,
            issue_date=date(2026, 3, 20),
            due_date=date(2026, 3, 20),
            lines=[LineInput(description="x", quantity=D(1), unit_price=D("600.00"))],
        )
    # when March's economics are computed
    report = acquisition_economics(month_from=date(2026, 3, 1), month_to=date(2026, 3, 1))
    # then March has three search/spring customers: (2,400 + 2,400 + 600) / 3 = 1,800
    search = next(r for r in report.rows if (r.channel, r.campaign) == ("search", "spring"))
    assert (search.new_customers, search.average_first_year_revenue) == (3, D("1800.00"))
    # and May, when the record was made, has none of them
    may = acquisition_economics(month_from=date(2026, 5, 1), month_to=date(2026, 5, 1))
    assert all(r.new_customers == 0 for r in may.rows)


def test_customer_since_through_the_api(client_for) -> None:
    # given a finance admin's client
    client = client_for(Role.FINANCE_ADMIN)
    body = {"name": "Old Co", "email": "old@x.example", "currency": "USD"}
    # when a customer is made with the day they were won, one without, and one in the future
    won = client.post(
        "/api/billing/customers", {**body, "acquired_on": "2025-06-01"}, format="json"
    )
    plain = client.post("/api/billing/customers", body, format="json")
    future = client.post(
        "/api/billing/customers", {**body, "acquired_on": "2999-01-01"}, format="json"
    )
    # then the day is kept, today is the default, and a future day is refused naming the field
    assert (won.status_code, won.json()["acquired_on"]) == (201, "2025-06-01")
    assert plain.json()["acquired_on"] == timezone.localdate().isoformat()
    assert future.status_code == 400
    assert "acquired_on" in str(future.json())
