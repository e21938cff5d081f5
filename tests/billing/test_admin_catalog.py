"""Billing admin, second part: catalog, subscriptions with their transition buttons, the
billing run, credit notes, and the read-only processor and usage records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from djmoney.money import Money

from billing.enums import InvoiceStatus, SubscriptionStatus
from billing.models import (
    CreditNote,
    Customer,
    Invoice,
    PaymentMethod,
    Price,
    ProcessorAttempt,
    Product,
    Subscription,
    UsageEvent,
    WebhookEvent,
)
from billing.services.credit_notes import credit_note_issue
from billing.services.payment_methods import payment_method_add
from billing.services.subscriptions import (
    ItemInput,
    UsageInput,
    price_create,
    product_create,
    subscription_create,
    usage_ingest,
)
from core.ledger.models import JournalEntry
from core.roles import Role
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db

ACCOUNT_NUMBER = "000123456789"


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:billing_{name}", args=args)


@pytest.fixture
def admin_client_for(make_user: Callable[..., User]) -> Callable[[str], Any]:
    def make(role: str) -> Any:
        return verified_client(make_user(role))

    return make


@pytest.fixture
def tax_free(customer: Customer) -> Customer:
    customer.tax_exempt = True
    customer.save()
    return customer


@pytest.fixture
def plan(db: None) -> Price:
    product = product_create(actor=None, name="Pro plan")
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("30.00"),
        nickname="Pro",
    )


@pytest.fixture
def subscription(tax_free: Customer, plan: Price) -> Subscription:
    return subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(plan.pk, D(2))],
        start_date=date(2026, 4, 1),
    )


def price_form(**overrides: str) -> dict[str, str]:
    product = Product.objects.get(name="Pro plan")
    data = {
        "product": str(product.pk),
        "nickname": "Volume",
        "currency": "USD",
        "type": "tiered_graduated",
        "interval": "month",
        "unit_amount": "",
        "package_size": "",
        "tiers": "",
        "metric": "",
        "aggregation": "",
    }
    return data | overrides


# --- Pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.FINANCE_ADMIN, Role.AUDITOR])
def test_pages_render_for_finance_admin_and_auditor(
    role: str,
    admin_client_for,
    subscription: Subscription,
    plan: Price,
    make_invoice: Callable[..., Invoice],
    finance_admin: User,
    clerk: User,
    customer: Customer,
) -> None:
    # given one record of each kind
    invoice = make_invoice("80.00")
    note = credit_note_issue(actor=finance_admin, invoice_id=invoice.pk, reason="goodwill")
    method = payment_method_add(
        actor=clerk,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder="Acme Corp",
        bank_routing_number="110000000",
        bank_account_number=ACCOUNT_NUMBER,
    )
    attempt = ProcessorAttempt.objects.create(
        processor="stripe",
        customer=customer,
        payment_method=method,
        invoice=invoice,
        currency="USD",
        amount=Money("80.00", "USD"),
        amount_minor=8000,
        idempotency_key="bo_attempt_test_1",
    )
    event = WebhookEvent.objects.create(
        provider="stripe", event_id="evt_1", type="charge.succeeded", payload={"id": "evt_1"}
    )
    metered = price_create(
        actor=None,
        product_id=plan.product_id,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("0.50"),
        metric="api_calls",
        aggregation="sum",
    )
    metered_sub = subscription_create(
        actor=None,
        customer_id=customer.pk,
        items=[ItemInput(metered.pk)],
        start_date=date(2026, 4, 1),
    )
    usage_ingest(
        actor=None,
        events=[
            UsageInput(
                subscription_item_id=metered_sub.items.get().pk,
                metric="api_calls",
                quantity=D(7),
                occurred_at=datetime(2026, 4, 2, 12, tzinfo=UTC),
                idempotency_key="usage-key-1",
            )
        ],
    )
    usage = UsageEvent.objects.get()
    client = admin_client_for(role)
    pages = {
        "product list": url("product_changelist"),
        "product": url("product_change", plan.product_id),
        "product history": url("product_history", plan.product_id),
        "price list": url("price_changelist"),
        "price": url("price_change", plan.pk),
        "price history": url("price_history", plan.pk),
        "subscription list": url("subscription_changelist"),
        "subscription": url("subscription_change", subscription.pk),
        "subscription history": url("subscription_history", subscription.pk),
        "credit note list": url("creditnote_changelist"),
        "credit note": url("creditnote_change", note.pk),
        "credit note history": url("creditnote_history", note.pk),
        "payment method list": url("paymentmethod_changelist"),
        "payment method": url("paymentmethod_change", method.pk),
        "attempt list": url("processorattempt_changelist"),
        "attempt": url("processorattempt_change", attempt.pk),
        "webhook list": url("webhookevent_changelist"),
        "webhook": url("webhookevent_change", event.pk),
        "usage list": url("usageevent_changelist"),
        "usage": url("usageevent_change", usage.pk),
    }

    # when
    responses = {name: client.get(address) for name, address in pages.items()}

    # then
    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(pages, 200)
    assert "Pro (USD/month)" in responses["subscription"].content.decode()
    assert note.number in responses["credit note list"].content.decode()
    assert "\u2022\u2022\u2022\u20226789" in responses["payment method"].content.decode()
    assert "usage-key-1" in responses["usage list"].content.decode()


@pytest.mark.parametrize(
    ("role", "status"), [(Role.FINANCE_ADMIN, 200), (Role.AR_CLERK, 200), (Role.AUDITOR, 403)]
)
def test_subscription_add_page_follows_the_add_permission(
    role: str, status: int, admin_client_for
) -> None:
    # when
    response = admin_client_for(role).get(url("subscription_add"))

    # then
    assert response.status_code == status


def test_lists_filter_and_search(admin_client_for, plan: Price, subscription: Subscription) -> None:
    # given a metered price beside the licensed one, and a paused subscription beside it
    metered = price_create(
        actor=None,
        product_id=plan.product_id,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("0.01"),
        metric="api_calls",
        aggregation="sum",
        nickname="API calls",
    )
    other = Customer.objects.create(name="Initech", email="ap@initech.example", currency="USD")
    paused = subscription_create(actor=None, customer_id=other.pk, items=[ItemInput(plan.pk)])
    Subscription.objects.filter(pk=paused.pk).update(status=SubscriptionStatus.PAUSED)
    client = admin_client_for(Role.AUDITOR)

    # when
    metered_list = client.get(url("price_changelist"), {"metered": "yes"})
    licensed_list = client.get(url("price_changelist"), {"metered": "no"})
    paused_list = client.get(url("subscription_changelist"), {"status": "paused"})
    searched = client.get(url("subscription_changelist"), {"q": "initech"})

    # then
    assert [p.pk for p in metered_list.context["cl"].result_list] == [metered.pk]
    assert [p.pk for p in licensed_list.context["cl"].result_list] == [plan.pk]
    assert [s.pk for s in paused_list.context["cl"].result_list] == [paused.pk]
    assert [s.pk for s in searched.context["cl"].result_list] == [paused.pk]


# --- Catalog ------------------------------------------------------------------------------


def test_price_add_with_bad_tiers_is_a_form_error_and_creates_nothing(
    admin_client_for, plan: Price
) -> None:
    # given tiers whose last tier is not open-ended
    client = admin_client_for(Role.FINANCE_ADMIN)
    tiers = '[{"up_to": 10, "unit_amount": "5.00"}, {"up_to": 100, "unit_amount": "4.00"}]'

    # when
    response = client.post(url("price_add"), price_form(tiers=tiers))

    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "tiers": ["Invalid tiers: the last tier must be open-ended (up_to: null)."]
    }
    assert list(Price.objects.values_list("pk", flat=True)) == [plan.pk]


def test_tiers_typed_one_per_line_make_a_tiered_price(admin_client_for, plan: Price) -> None:
    # given tiers as a clerk writes them: up to, unit price, flat fee
    client = admin_client_for(Role.FINANCE_ADMIN)
    tiers = "10  5.00\n1,000 | 4.50 | 10.00\nabove  4.00"

    # when
    response = client.post(url("price_add"), price_form(tiers=tiers))

    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    price = Price.objects.exclude(pk=plan.pk).get()
    assert [
        (t["up_to"], Decimal(str(t["unit_amount"])), Decimal(str(t.get("flat_amount") or 0)))
        for t in price.tiers
    ] == [
        (10, Decimal("5.00"), Decimal(0)),
        (1000, Decimal("4.50"), Decimal("10.00")),
        (None, Decimal("4.00"), Decimal(0)),
    ]


@pytest.mark.parametrize(
    ("tiers", "error"),
    [
        ("[{up_to: 10}]", "Tiers written as JSON must be a valid list."),
        ('[{"up_to": null}, 3]', "Tiers are a list, one tier per line."),
        ("10  abc", "Tier 1: 'abc' is not a number."),
        ("10  5.00\n50", "Tier 2: write up to how many units"),
        ('[{"up_to": null, "unit_amount": "abc"}]', "Tier 1: unit_amount must be a number."),
        ('[{"up_to": null, "price": "1"}]', "Tier 1: unknown key 'price' (allowed: "),
    ],
)
def test_price_add_rejects_malformed_tiers_on_the_form(
    admin_client_for, plan: Price, tiers: str, error: str
) -> None:
    # when
    response = admin_client_for(Role.FINANCE_ADMIN).post(url("price_add"), price_form(tiers=tiers))

    # then
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["tiers"]
    assert message.startswith(error)
    assert Price.objects.count() == 1


def test_price_add_goes_through_the_service(admin_client_for, plan: Price) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)
    tiers = '[{"up_to": 10, "unit_amount": "5.00"}, {"up_to": null, "unit_amount": "4.00"}]'

    # when
    response = client.post(url("price_add"), price_form(tiers=tiers))

    # then
    price = Price.objects.exclude(pk=plan.pk).get()
    assert response.status_code == 302
    assert response["Location"] == url("price_changelist")
    assert (price.currency, price.type, price.nickname, price.tiers) == (
        "USD",
        "tiered_graduated",
        "Volume",
        [{"up_to": 10, "unit_amount": "5.00"}, {"up_to": None, "unit_amount": "4.00"}],
    )
    assert price.history.count() == 1


def test_price_add_refused_for_an_auditor(admin_client_for, plan: Price) -> None:
    # when
    response = admin_client_for(Role.AUDITOR).post(
        url("price_add"), price_form(type="flat", unit_amount="10")
    )

    # then
    assert response.status_code == 403
    assert Price.objects.count() == 1


def test_price_change_is_limited_to_nickname_and_active(admin_client_for, plan: Price) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when the form also sends a new amount and currency
    response = client.post(
        url("price_change", plan.pk),
        {"nickname": "Pro (legacy)", "unit_amount": "1.00", "currency": "EUR"},
    )

    # then only the nickname and the flag changed, with history
    plan.refresh_from_db()
    assert response.status_code == 302
    assert (plan.nickname, plan.is_active, plan.unit_amount, plan.currency) == (
        "Pro (legacy)",
        False,
        D("30.0000"),
        "USD",
    )
    assert [h.history_type for h in plan.history.order_by("history_id")] == ["+", "~"]
    page = client.get(url("price_change", plan.pk)).content.decode()
    assert "A price is immutable once used" in page


def test_product_add_goes_through_the_service_and_has_no_delete(admin_client_for) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when
    response = client.post(url("product_add"), {"name": "Support", "description": "24/7"})
    product = Product.objects.get()
    delete = client.post(url("product_delete", product.pk), {"post": "yes"})

    # then
    assert response.status_code == 302
    assert (product.name, product.description, product.is_active) == ("Support", "24/7", True)
    assert delete.status_code == 403
    assert Product.objects.count() == 1


# --- Subscriptions ------------------------------------------------------------------------


def test_subscription_add_view_starts_a_subscription_through_the_service(
    admin_client_for, tax_free: Customer, plan: Price
) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)
    data = {
        "customer": str(tax_free.pk),
        "start_date": "2026-04-01",
        "trial_days": "14",
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "0",
        "items-0-price": str(plan.pk),
        "items-0-quantity": "3",
        "items-1-price": "",
        "items-1-quantity": "1",
    }

    # when
    response = client.post(url("subscription_add"), data, follow=True)

    # then
    sub = Subscription.objects.get()
    assert (sub.status, sub.started_on, sub.trial_end, sub.current_period_end) == (
        SubscriptionStatus.TRIALING,
        date(2026, 4, 1),
        date(2026, 4, 15),
        date(2026, 4, 15),
    )
    assert [(i.price_id, i.quantity) for i in sub.items.all()] == [(plan.pk, D(3))]
    assert messages_of(response) == [
        f"Subscription #{sub.pk} started for Acme Corp: Trialing, first period "
        "2026-04-01 to 2026-04-15."
    ]


def test_subscription_add_without_prices_is_refused_on_the_form(
    admin_client_for, tax_free: Customer, plan: Price
) -> None:
    # when
    response = admin_client_for(Role.FINANCE_ADMIN).post(
        url("subscription_add"),
        {
            "customer": str(tax_free.pk),
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "0",
            "items-0-price": "",
            "items-0-quantity": "1",
        },
    )

    # then
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "A subscription needs at least one price."
    ]
    assert Subscription.objects.count() == 0


def test_buttons_follow_state_and_permission(admin_client_for, subscription: Subscription) -> None:
    # when
    admin_page = admin_client_for(Role.FINANCE_ADMIN).get(
        url("subscription_change", subscription.pk)
    )
    controller_page = admin_client_for(Role.CONTROLLER).get(
        url("subscription_change", subscription.pk)
    )

    # then
    assert admin_page.context["subscription_tools"] == {
        "can_pause": True,
        "can_resume": False,
        "can_cancel": True,
    }
    assert url("subscription_pause", subscription.pk) in admin_page.content.decode()
    assert controller_page.context["subscription_tools"] == {
        "can_pause": False,
        "can_resume": False,
        "can_cancel": False,
    }
    assert url("subscription_pause", subscription.pk) not in controller_page.content.decode()
    assert 'name="_save"' not in admin_page.content.decode()


def test_pause_and_resume_go_through_the_services(
    admin_client_for, subscription: Subscription
) -> None:
    # given
    client = admin_client_for(Role.AR_CLERK)

    # when
    paused = client.post(url("subscription_pause", subscription.pk), follow=True)
    subscription.refresh_from_db()
    status_after_pause = subscription.status
    resumed = client.post(url("subscription_resume", subscription.pk), follow=True)
    subscription.refresh_from_db()

    # then
    assert status_after_pause == SubscriptionStatus.PAUSED
    assert messages_of(paused) == [f"Subscription #{subscription.pk} paused."]
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert messages_of(resumed) == [f"Subscription #{subscription.pk} resumed."]
    assert [h.status for h in subscription.history.order_by("history_id")] == [
        "active",
        "paused",
        "active",
    ]


def test_pause_is_post_only(admin_client_for, subscription: Subscription) -> None:
    # when
    response = admin_client_for(Role.FINANCE_ADMIN).get(url("subscription_pause", subscription.pk))

    # then
    assert response.status_code == 405
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


@pytest.mark.parametrize("role", [Role.CONTROLLER, Role.AUDITOR])
@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_pause_and_cancel_refused_without_the_change_permission(
    role: str, action: str, admin_client_for, subscription: Subscription
) -> None:
    # when
    response = admin_client_for(role).post(
        url(f"subscription_{action}", subscription.pk), {"when": "now", "on_date": "2026-04-11"}
    )

    # then nothing changed
    subscription.refresh_from_db()
    assert response.status_code == 403
    assert (subscription.status, subscription.cancel_at_period_end) == (
        SubscriptionStatus.ACTIVE,
        False,
    )
    assert Invoice.objects.count() == 0


def test_pausing_a_paused_subscription_reports_the_refusal(
    admin_client_for, subscription: Subscription
) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)
    client.post(url("subscription_pause", subscription.pk), follow=True)

    # when
    response = client.post(url("subscription_pause", subscription.pk), follow=True)

    # then
    assert messages_of(response) == ["A paused subscription cannot be paused."]
    assert subscription.history.count() == 2


def test_cancel_asks_then_cancels_at_period_end(
    admin_client_for, subscription: Subscription
) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when
    page = client.get(url("subscription_cancel", subscription.pk))
    response = client.post(
        url("subscription_cancel", subscription.pk), {"when": "period_end"}, follow=True
    )

    # then
    subscription.refresh_from_db()
    assert page.status_code == 200
    assert "At period end: the current period is billed in full" in page.content.decode()
    assert (subscription.status, subscription.cancel_at_period_end) == (
        SubscriptionStatus.ACTIVE,
        True,
    )
    assert messages_of(response) == [
        f"Subscription #{subscription.pk} ends on 2026-05-01, after its current period is billed."
    ]
    assert Invoice.objects.count() == 0


def test_cancel_now_invoices_the_days_used(
    admin_client_for, subscription: Subscription, django_capture_on_commit_callbacks
) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            url("subscription_cancel", subscription.pk),
            {"when": "now", "on_date": "2026-04-11"},
            follow=True,
        )

    # then 10 of 30 days of 2 x 30.00
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_on) == (
        SubscriptionStatus.CANCELED,
        date(2026, 4, 11),
    )
    assert [i.total.amount for i in Invoice.objects.filter(subscription=subscription)] == [
        D("20.00")
    ]
    assert messages_of(response) == [
        f"Subscription #{subscription.pk} canceled on 2026-04-11; the days used are invoiced."
    ]


def test_cancel_now_outside_the_period_reports_the_refusal(
    admin_client_for, subscription: Subscription
) -> None:
    # when
    response = admin_client_for(Role.FINANCE_ADMIN).post(
        url("subscription_cancel", subscription.pk),
        {"when": "now", "on_date": "2026-06-01"},
        follow=True,
    )

    # then
    subscription.refresh_from_db()
    assert messages_of(response) == ["Cancel within the current period."]
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert Invoice.objects.count() == 0


# --- Billing run --------------------------------------------------------------------------


def test_billing_run_preview_changes_nothing(admin_client_for, subscription: Subscription) -> None:
    # given
    client = admin_client_for(Role.CONTROLLER)
    entries = JournalEntry.objects.count()

    # when
    form = client.get(url("subscription_billing_run"))
    preview = client.post(url("subscription_billing_run"), {"as_of": "2026-05-01", "_preview": "1"})

    # then
    subscription.refresh_from_db()
    html = preview.content.decode()
    assert form.status_code == 200
    assert preview.status_code == 200
    assert (
        '<p id="preview-summary"><strong>1 subscription due as of 2026-05-01. A subscription '
        "several periods behind gets one invoice per period. Nothing has been billed yet."
        "</strong></p>"
    ) in html
    assert 'name="_run"' in html
    assert '<input type="hidden" name="previewed_as_of" value="2026-05-01"' in html
    assert Invoice.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    assert (subscription.current_period_start, subscription.current_period_end) == (
        date(2026, 4, 1),
        date(2026, 5, 1),
    )


def test_billing_run_preview_with_nothing_due_offers_no_run(
    admin_client_for, subscription: Subscription
) -> None:
    # when
    preview = admin_client_for(Role.FINANCE_ADMIN).post(
        url("subscription_billing_run"), {"as_of": "2026-04-30", "_preview": "1"}
    )

    # then
    html = preview.content.decode()
    assert "0 subscriptions due as of 2026-04-30." in html
    assert 'name="_run"' not in html


def test_billing_run_issues_the_due_invoices(
    admin_client_for, subscription: Subscription, django_capture_on_commit_callbacks
) -> None:
    # given
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            url("subscription_billing_run"),
            {"as_of": "2026-05-01", "previewed_as_of": "2026-05-01", "_run": "1"},
            follow=True,
        )

    # then
    invoice = Invoice.objects.get()
    subscription.refresh_from_db()
    assert (invoice.subscription_id, invoice.status, invoice.total.amount) == (
        subscription.pk,
        InvoiceStatus.OPEN,
        D("60.00"),
    )
    assert subscription.current_period_start == date(2026, 5, 1)
    assert messages_of(response) == [
        f"Billing run as of 2026-05-01: 1 invoice issued ({invoice.number})."
    ]


def test_billing_run_reports_failures_with_the_subscription_id(
    admin_client_for, subscription: Subscription, monkeypatch
) -> None:
    # given a run that fails for the subscription
    from billing import admin_catalog
    from billing.services.billing_run import BillingRunResult

    def failing_run(*, as_of: date, actor: Any) -> BillingRunResult:
        return BillingRunResult(as_of=as_of, failures={subscription.pk: "No FX rate."})

    monkeypatch.setattr(admin_catalog, "billing_run", failing_run)

    # when
    response = admin_client_for(Role.FINANCE_ADMIN).post(
        url("subscription_billing_run"),
        {"as_of": "2026-05-01", "previewed_as_of": "2026-05-01", "_run": "1"},
        follow=True,
    )

    # then
    assert messages_of(response) == [
        "Billing run as of 2026-05-01: no invoice issued.",
        f"Subscription #{subscription.pk} failed: No FX rate.",
    ]


@pytest.mark.parametrize("role", [Role.AR_CLERK, Role.AUDITOR])
def test_billing_run_refused_without_the_permission(
    role: str, admin_client_for, subscription: Subscription
) -> None:
    # given
    client = admin_client_for(role)

    # when
    page = client.get(url("subscription_billing_run"))
    run = client.post(
        url("subscription_billing_run"),
        {"as_of": "2026-05-01", "previewed_as_of": "2026-05-01", "_run": "1"},
    )
    listing = client.get(url("subscription_changelist"))

    # then
    assert (page.status_code, run.status_code) == (403, 403)
    assert Invoice.objects.count() == 0
    assert url("subscription_billing_run") not in listing.content.decode()


def test_billing_run_for_a_date_not_previewed_shows_its_preview_first(
    admin_client_for, subscription: Subscription
) -> None:
    # when the date is changed on the preview page before running
    response = admin_client_for(Role.FINANCE_ADMIN).post(
        url("subscription_billing_run"),
        {"as_of": "2026-05-01", "previewed_as_of": "2026-04-30", "_run": "1"},
    )

    # then
    assert response.status_code == 200
    assert "1 subscription due as of 2026-05-01." in response.content.decode()
    assert Invoice.objects.count() == 0


# --- Credit notes -------------------------------------------------------------------------


def credit_form(invoice: Invoice, extent: str = "full", **lines: str) -> dict[str, str]:
    return {
        "invoice": str(invoice.pk),
        "extent": extent,
        "reason": "Service outage",
        "issue_date": "",
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0",
        "lines-0-description": lines.get("description", ""),
        "lines-0-amount": lines.get("amount", ""),
        "lines-0-tax_rate": lines.get("tax_rate", ""),
        "lines-1-description": "",
        "lines-1-amount": "",
        "lines-1-tax_rate": "",
    }


def test_credit_note_add_view_credits_the_whole_invoice(
    admin_client_for, make_invoice: Callable[..., Invoice]
) -> None:
    # given an open invoice of 100.00 + 20.50
    invoice = make_invoice("100.00", "20.50")
    client = admin_client_for(Role.CONTROLLER)

    # when
    response = client.post(url("creditnote_add"), credit_form(invoice), follow=True)

    # then
    note = CreditNote.objects.get()
    invoice.refresh_from_db()
    assert response.redirect_chain == [(url("creditnote_change", note.pk), 302)]
    assert (note.invoice_id, note.total, note.reason) == (
        invoice.pk,
        Money("120.50", "USD"),
        "Service outage",
    )
    assert invoice.status == InvoiceStatus.PAID
    assert note.ledger_entry_id is not None
    assert messages_of(response) == [
        f"Credit note {note.number} issued on invoice {invoice.number}: 120.50 USD "
        "(120.50 USD against the invoice, 0.00 USD to the credit balance)."
    ]


def test_credit_note_add_view_credits_part_of_an_invoice(
    admin_client_for, make_invoice: Callable[..., Invoice]
) -> None:
    # given
    invoice = make_invoice("100.00")
    client = admin_client_for(Role.FINANCE_ADMIN)

    # when
    client.post(
        url("creditnote_add"),
        credit_form(invoice, "partial", description="Two days down", amount="15.00"),
    )

    # then
    note = CreditNote.objects.get()
    invoice.refresh_from_db()
    assert [(line.description, line.amount) for line in note.lines.all()] == [
        ("Two days down", Money("15.00", "USD"))
    ]
    assert (invoice.status, invoice.amount_due) == (InvoiceStatus.OPEN, Money("85.00", "USD"))


def test_credit_note_over_the_invoice_is_a_form_error_and_issues_nothing(
    admin_client_for, make_invoice: Callable[..., Invoice]
) -> None:
    # given
    invoice = make_invoice("100.00")
    entries = JournalEntry.objects.count()

    # when
    response = admin_client_for(Role.FINANCE_ADMIN).post(
        url("creditnote_add"),
        credit_form(invoice, "partial", description="Too much", amount="150.00"),
    )

    # then
    invoice.refresh_from_db()
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "150.00 USD would credit more than the invoice's 100.00 USD not yet credited."
    ]
    assert CreditNote.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    assert invoice.amount_due == Money("100.00", "USD")


def test_partial_credit_without_lines_is_a_form_error(
    admin_client_for, make_invoice: Callable[..., Invoice]
) -> None:
    # given
    invoice = make_invoice("100.00")

    # when
    response = admin_client_for(Role.FINANCE_ADMIN).post(
        url("creditnote_add"), credit_form(invoice, "partial")
    )

    # then
    assert response.context["form"].errors == {
        "extent": ["Give at least one line to credit, or credit the whole invoice."]
    }
    assert CreditNote.objects.count() == 0


@pytest.mark.parametrize("role", [Role.AR_CLERK, Role.AUDITOR])
def test_credit_note_add_refused_without_the_permission(
    role: str, admin_client_for, make_invoice: Callable[..., Invoice]
) -> None:
    # given
    invoice = make_invoice("100.00")

    # when
    response = admin_client_for(role).post(url("creditnote_add"), credit_form(invoice))

    # then
    assert response.status_code == 403
    assert CreditNote.objects.count() == 0


# --- Read-only records --------------------------------------------------------------------


def test_read_only_models_refuse_posts(
    admin_client_for,
    make_invoice: Callable[..., Invoice],
    finance_admin: User,
    clerk: User,
    customer: Customer,
) -> None:
    # given
    invoice = make_invoice("100.00")
    note = credit_note_issue(actor=finance_admin, invoice_id=invoice.pk, reason="goodwill")
    method = payment_method_add(
        actor=clerk,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder="Acme Corp",
        bank_routing_number="110000000",
        bank_account_number=ACCOUNT_NUMBER,
    )
    event = WebhookEvent.objects.create(
        provider="stripe", event_id="evt_1", type="charge.succeeded", payload={}
    )
    client = admin_client_for(Role.FINANCE_ADMIN)
    posts = {
        "credit note change": (url("creditnote_change", note.pk), {"reason": "changed"}),
        "credit note delete": (url("creditnote_delete", note.pk), {"post": "yes"}),
        "payment method change": (
            url("paymentmethod_change", method.pk),
            {"bank_account_holder": "Mallory"},
        ),
        "payment method add": (url("paymentmethod_add"), {"type": "ach"}),
        "payment method delete": (url("paymentmethod_delete", method.pk), {"post": "yes"}),
        "attempt add": (url("processorattempt_add"), {"processor": "stripe"}),
        "webhook change": (url("webhookevent_change", event.pk), {"outcome": "changed"}),
        "webhook add": (url("webhookevent_add"), {"provider": "stripe"}),
        "usage add": (url("usageevent_add"), {"metric": "x"}),
    }

    # when
    statuses = {
        name: client.post(address, data).status_code for name, (address, data) in posts.items()
    }

    # then nothing changed
    assert statuses == dict.fromkeys(posts, 403)
    note.refresh_from_db()
    method.refresh_from_db()
    event.refresh_from_db()
    assert (note.reason, method.bank_account_holder, event.outcome) == (
        "goodwill",
        "Acme Corp",
        "",
    )
    assert (PaymentMethod.objects.count(), ProcessorAttempt.objects.count()) == (1, 0)
    assert (WebhookEvent.objects.count(), UsageEvent.objects.count()) == (1, 0)


def test_bank_account_number_is_only_ever_masked(
    admin_client_for, clerk: User, customer: Customer
) -> None:
    # given a bank account whose holder changed later (two history rows)
    method = payment_method_add(
        actor=clerk,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder="Acme Corp",
        bank_routing_number="110000000",
        bank_account_number=ACCOUNT_NUMBER,
    )
    method.bank_account_number = "000999888777"
    method.bank_account_holder = "Acme Corporation"
    method.save()
    client = admin_client_for(Role.AUDITOR)

    # when
    pages = [
        client.get(url("paymentmethod_changelist")),
        client.get(url("paymentmethod_change", method.pk)),
        client.get(url("paymentmethod_history", method.pk)),
    ]

    # then
    html = "".join(p.content.decode() for p in pages)
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert "\u2022\u2022\u2022\u20226789" in html
    assert "Acme Corporation" in html
    assert ACCOUNT_NUMBER not in html
    assert "000999888777" not in html


def test_price_currency_is_picked_from_current_currencies(admin_client_for, plan: Price) -> None:
    client = admin_client_for(Role.FINANCE_ADMIN)
    # the add form offers a list of today's currencies with their names, not a code box
    page = client.get(url("price_add")).content.decode()
    assert '<select name="currency"' in page
    assert "EUR · Euro" in page
    assert "DEM · " not in page  # withdrawn currencies are not offered
    # a code that is no currency is refused on the form
    response = client.post(url("price_add"), price_form(currency="XYZ", tiers="above  4.00"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
