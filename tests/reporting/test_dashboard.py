"""The finance dashboard (reporting.dashboard, the admin index and its polled fragment)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.models import Invoice, ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payment_methods import payment_method_add
from billing.services.payments import payment_record
from core.fx import fx_rate_set
from core.roles import Role
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from receivables.selectors import collections_worklist
from receivables.services.collections import collection_pause_create
from reporting.dashboard import dashboard_figures, payment_success_panel

AS_OF = date(2026, 6, 30)
PANELS = "admin:reporting_dashboard_panels"
pytestmark = pytest.mark.django_db


@pytest.fixture
def book(make_user):
    """Invoices due today, 30, 31 and 91 days before 2026-06-30 (USD and EUR) and a vendor
    bill of 250.00 USD due 45 days before."""
    admin = make_user(Role.FINANCE_ADMIN)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1"), rate_date=date(2026, 2, 1))
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    euro = customer_create(actor=admin, name="Euro AG", email="e@x.example", currency="EUR")

    def inv(customer, amount: str, due: date):
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=date(2026, 2, 1),
            due_date=due,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    inv(acme, "1000.00", date(2026, 6, 30))  # current
    inv(acme, "200.00", date(2026, 5, 31))  # 1-30
    inv(acme, "300.00", date(2026, 5, 30))  # 31-60
    inv(euro, "400.00", date(2026, 3, 31))  # over 90
    clerk = make_user(Role.AP_CLERK)
    vendor = vendor_create(
        actor=clerk,
        name="Globex Supplies",
        email="globex@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number="123456789"
        ),
    )
    vendor = vendor_activate(vendor_id=vendor.pk, actor=make_user(Role.CONTROLLER))
    bill = bill_create(
        actor=clerk,
        vendor_id=vendor.pk,
        number="G-77",
        currency="USD",
        bill_date=date(2026, 4, 1),
        due_date=date(2026, 5, 16),
        lines=[BillLineInput(description="Paper", quantity=D(1), unit_price=D("250.00"))],
    )
    bill_approve(bill_id=bill.pk, actor=make_user(Role.APPROVER))
    return acme, euro


def test_figures_of_a_small_book(make_user, book) -> None:
    # given the book above and a finance administrator
    admin = make_user(Role.FINANCE_ADMIN)
    # when the dashboard is computed as of 2026-06-30
    d = dashboard_figures(admin, AS_OF)
    # then AR and AP are in their buckets per currency
    assert d.ar is not None
    assert d.ap is not None
    assert d.ar.totals["USD"] == {
        "current": D("1000.00"),
        "1-30": D("200.00"),
        "31-60": D("300.00"),
        "61-90": D(0),
        "90+": D(0),
        "total": D("1500.00"),
    }
    assert d.ar.totals["EUR"]["90+"] == D("400.00")
    assert d.ar.totals["EUR"]["total"] == D("400.00")
    assert d.ar.item_count == 4
    assert d.ap.totals["USD"]["31-60"] == D("250.00")
    assert d.ap.totals["USD"]["total"] == D("250.00")
    # and three invoices are overdue (the one due that day is not)
    counts = {c.code: c.count for c in d.counts}
    assert counts["overdue_invoices"] == 3
    # all three are on the collections worklist (nothing paused); no exception is assigned
    assert counts["collections_worklist"] == 3
    assert counts["my_reconciliation_exceptions"] == 0
    assert counts["failed_tasks"] == 0
    assert all(c.how for c in d.counts)


def test_the_worklist_count_leaves_out_paused_customers_and_invoices(make_user, book) -> None:
    # given Acme's collections paused, and one of its overdue invoices paused on its own too
    acme, _euro = book
    admin = make_user(Role.FINANCE_ADMIN)
    one = Invoice.objects.get(customer=acme, due_date=date(2026, 5, 31))
    collection_pause_create(
        actor=admin, reason="Restructuring", customer_id=acme.pk, start_date=date(2026, 6, 1)
    )
    collection_pause_create(
        actor=admin, reason="Query", invoice_id=one.pk, start_date=date(2026, 6, 1)
    )
    # when the dashboard is computed as of 2026-06-30
    counts = {c.code: c.count for c in dashboard_figures(admin, AS_OF).counts}
    # then three invoices are overdue, and only Euro AG's is left to chase, as the worklist
    # itself lists
    assert counts["overdue_invoices"] == 3
    assert counts["collections_worklist"] == 1
    assert collections_worklist(as_of=AS_OF).count() == 1


def test_an_ap_clerk_sees_the_ap_panels_but_not_ar_nor_the_financial_ones(make_user, book) -> None:
    # given an AP clerk
    clerk = make_user(Role.AP_CLERK)
    # when their dashboard is computed
    d = dashboard_figures(clerk, AS_OF)
    # then AP and the AP queues are there, AR, cash, ratios, MRR and the projection are not
    assert d.ap is not None
    assert d.ap.totals["USD"]["total"] == D("250.00")
    assert d.ar is None
    assert (d.cash, d.ratios, d.mrr, d.payments, d.projection) == (None, None, None, None, None)
    assert [c.code for c in d.counts] == [
        "approvals_waiting",
        "reconciliation_suggestions",
        "open_reconciliation_exceptions",
        "my_reconciliation_exceptions",
    ]


def test_a_controller_sees_every_panel(make_user, book) -> None:
    # given a controller
    controller = make_user(Role.CONTROLLER)
    # when their dashboard is computed
    d = dashboard_figures(controller, AS_OF)
    # then every panel is there
    assert d.ar is not None
    assert d.ap is not None
    assert d.cash is not None
    assert d.ratios is not None
    assert d.mrr is not None
    assert d.payments is not None
    assert d.projection is not None
    assert [f.code for f in d.ratios] == [
        "dso_30",
        "dso_90",
        "dpo_30",
        "dpo_90",
        "cei_30",
        "cei_90",
    ]
    assert all(f.how for f in d.ratios)
    assert "overdue_invoices" in {c.code for c in d.counts}
    assert "disputes_evidence_due" in {c.code for c in d.counts}
    # AR as the ledger carries it: 1,500.00 USD and 400.00 EUR open
    assert d.cash.total.values == {}


def test_the_fragment_renders_the_panels_with_their_tooltips_and_next_poll(
    client_for, book
) -> None:
    # given a controller's verified session
    client = client_for(Role.CONTROLLER)
    # when the fragment is fetched as of 2026-06-30
    response = client.get(reverse(PANELS), {"as_of": AS_OF.isoformat()})
    # then it carries the AR total per currency, the how of each figure and its own poll
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-figure="ar-USD">1,500.00 USD<' in html
    assert 'data-figure="ar-EUR">400.00 EUR<' in html
    assert 'data-figure="ap-USD">250.00 USD<' in html
    assert 'hx-trigger="every 30s"' in html
    assert f'hx-get="{reverse(PANELS)}?as_of=2026-06-30"' in html
    assert 'hx-swap="outerHTML"' in html
    assert "by days past its due date" in html
    assert html.count('class="dashboard-chart"') >= 3
    assert "<html" not in html


def test_an_ap_clerk_page_has_no_ar_panel(client_for, book) -> None:
    # given an AP clerk's session
    client = client_for(Role.AP_CLERK)
    # when the start page is shown
    response = client.get(reverse("admin:index"), {"as_of": AS_OF.isoformat()})
    # then it has the AP panel and not the AR one
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="panel-ap"' in html
    assert 'id="panel-ar"' not in html
    assert 'id="panel-cash"' not in html
    assert "Finance back-office" in html


@pytest.mark.parametrize("value", ["2026-02-30", "yesterday", "2999-01-01"])
def test_a_bad_as_of_shows_a_message_and_today(client_for, value) -> None:
    # given a controller
    client = client_for(Role.CONTROLLER)
    # when the page and the fragment are asked for a bad day
    page = client.get(reverse("admin:index"), {"as_of": value})
    fragment = client.get(reverse(PANELS), {"as_of": value})
    # then both answer with a message, not an error
    for response in (page, fragment):
        assert response.status_code == 200
        assert 'id="dashboard-as-of-error"' in response.content.decode()


def test_the_fragment_needs_a_verified_staff_session(client, make_user) -> None:
    # given no session
    # when the fragment is fetched
    response = client.get(reverse(PANELS))
    # then the admin login is asked for
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def _at(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def test_payment_success_per_week_by_processor_and_method(make_user, book) -> None:
    # given, in the 12 weeks to 2026-06-30 (weeks end on Tuesdays: the last is 06-24..06-30),
    # paypal: 2 succeeded and 1 failed (insufficient_funds) in the last week; stripe: 1 failed
    # (card_declined) and 1 unknown in the week before; plus a pending charge and a failure
    # from before the 12 weeks, both left out
    admin = make_user(Role.FINANCE_ADMIN)
    acme, _euro = book
    ach = payment_method_add(
        actor=admin,
        customer_id=acme.pk,
        type="ach",
        bank_account_holder="Acme",
        bank_routing_number="110000000",
        bank_account_number="000123456789",
    )
    keys = iter(range(1, 100))

    def attempt(processor: str, status: str, day: date, code: str = "") -> None:
        payment = None
        if status == AttemptStatus.SUCCEEDED:
            payment = payment_record(
                actor=admin,
                customer_id=acme.pk,
                amount=D("10.00"),
                currency="USD",
                method="ach",
                received_date=day,
            )
        ProcessorAttempt.objects.create(
            processor=processor,
            customer=acme,
            payment_method=ach,
            currency="USD",
            amount=Money("10.00", "USD"),
            amount_minor=1000,
            status=status,
            payment=payment,
            failure_code=code,
            idempotency_key=f"bo_attempt_dash_{next(keys)}",
            created_at=_at(day),
        )

    attempt("paypal", AttemptStatus.SUCCEEDED, date(2026, 6, 25))
    attempt("paypal", AttemptStatus.SUCCEEDED, date(2026, 6, 30))
    attempt("paypal", AttemptStatus.FAILED, date(2026, 6, 24), "insufficient_funds")
    attempt("stripe", AttemptStatus.FAILED, date(2026, 6, 20), "card_declined")
    attempt("stripe", AttemptStatus.UNKNOWN, date(2026, 6, 17))
    attempt("stripe", AttemptStatus.PENDING, date(2026, 6, 29))
    attempt("stripe", AttemptStatus.FAILED, date(2026, 4, 7), "expired_card")
    # when the panel is computed
    panel = payment_success_panel(as_of=AS_OF)
    # then 2 of 5 finished charges succeeded, each week's rate in its place
    none = [None] * 10
    assert (panel.attempted, panel.succeeded) == (5, 2)
    assert panel.week_ends[0] == date(2026, 4, 14)
    assert panel.week_ends[-1] == AS_OF
    assert [(s.label, s.rates) for s in panel.by_processor] == [
        ("paypal", [*none, None, D("66.67")]),
        ("stripe", [*none, D("0.00"), None]),
    ]
    assert [(s.label, s.attempted, s.succeeded, s.rates[-2:]) for s in panel.by_method] == [
        ("ach", 5, 2, [D("0.00"), D("66.67")]),
    ]
    assert panel.top_decline_codes == [("card_declined", 1), ("insufficient_funds", 1)]


# --- API -------------------------------------------------------------------------------------

API = "/api/reporting/dashboard"


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        (Role.AR_CLERK, {"ar"}, {"ap", "cash", "ratios", "mrr", "payment_success", "projection"}),
        (Role.AP_CLERK, {"ap"}, {"ar", "cash", "ratios", "mrr", "payment_success", "projection"}),
        (
            Role.CONTROLLER,
            {"ar", "ap", "cash", "ratios", "mrr", "payment_success", "projection"},
            set(),
        ),
    ],
)
def test_the_api_gives_each_role_its_panels(client_for, book, role, visible, hidden) -> None:
    # given a person in the role
    client = client_for(role)
    # when the dashboard's figures are asked for as of 2026-06-30
    response = client.get(API, {"as_of": AS_OF.isoformat()})
    # then the panels of the role are there, the others null
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["as_of"] == "2026-06-30"
    assert {k for k in visible | hidden if body[k] is not None} == visible
    if "ar" in visible:
        usd = next(c for c in body["ar"]["currencies"] if c["currency"] == "USD")
        assert usd["total"] == "1500.0000"
        assert [b["amount"] for b in usd["buckets"]] == [
            "1000.0000",
            "200.0000",
            "300.0000",
            "0.0000",
            "0.0000",
        ]
        assert body["ar"]["how"]
    if "ap" in visible:
        assert body["ap"]["currencies"][0]["total"] == "250.0000"


def test_the_api_refuses_a_bad_date_and_callers_without_the_dashboard(
    client_for, integration_client, client
) -> None:
    # given a controller, an integration token (no dashboard permission) and nobody
    controller = client_for(Role.CONTROLLER)
    # when they ask
    bad = controller.get(API, {"as_of": "2026-02-30"})
    future = controller.get(API, {"as_of": "2999-01-01"})
    integration = integration_client.get(API)
    anonymous = client.get(API)
    # then a bad date is 400 naming the parameter, the others are refused
    assert bad.status_code == 400
    assert "as_of" in str(bad.json())
    assert future.status_code == 400
    assert "as_of" in str(future.json())
    assert integration.status_code == 403
    assert anonymous.status_code in (401, 403)


def test_the_api_is_in_the_openapi_schema(client_for) -> None:
    # given a controller
    client = client_for(Role.CONTROLLER)
    # when the schema is fetched
    response = client.get("/api/schema/", {"format": "json"})
    # then the dashboard route is described with its as_of parameter
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/reporting/dashboard"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["as_of"]


def test_the_queries_do_not_grow_with_the_book(make_user, book) -> None:
    # given the dashboard of a controller counted once
    controller = make_user(Role.CONTROLLER)
    acme, _euro = book

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            dashboard_figures(controller, AS_OF)
        return len(captured)

    queries()  # the first call also fills the per-process caches (accounts, settings)
    before = queries()
    # when three more invoices are issued
    admin = make_user(Role.FINANCE_ADMIN)
    for due in (date(2026, 6, 1), date(2026, 4, 1), date(2026, 7, 15)):
        invoice_create(
            actor=admin,
            customer_id=acme.pk,
            issue=True,
            issue_date=date(2026, 2, 1),
            due_date=due,
            lines=[LineInput(description="y", quantity=D(1), unit_price=D("5.00"), tax_rate=D(0))],
        )
    # then the dashboard reads them with the same number of queries
    assert queries() == before
