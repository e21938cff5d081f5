"""Stripe payouts itemised into balance transactions and checked to the penny, against a
local HTTP fake of the Stripe API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from reconciliation.feeds import FeedError, FeedErrorCode
from reconciliation.payouts.stripe_payouts import (
    PayoutProblem,
    PayoutTotals,
    StripeConfig,
    amount_from_minor,
    payout_check,
    payout_from,
    payout_totals,
    stripe_payout_get,
    stripe_payouts_list,
)
from tests.reconciliation.fakes.stripe_payouts_server import (
    API_KEY,
    FakeStripePayouts,
    balance_transaction,
    payout_object,
    running_fake_stripe_payouts,
)

NOV_20 = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp())
DAY = 86_400


@pytest.fixture
def fake() -> Iterator[FakeStripePayouts]:
    with running_fake_stripe_payouts() as fake:
        yield fake


def config(fake: FakeStripePayouts, **overrides) -> StripeConfig:
    values = {
        "api_key": API_KEY,
        "api_base": fake.url,
        "timeout_seconds": 5.0,
        "max_network_retries": 0,
        **overrides,
    }
    return StripeConfig(**values)


def charge(charge_id: str, amount: int, *, invoice: str, invoice_number: str) -> dict:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "currency": "usd",
        "customer": "cus_Acme0001",
        "invoice": invoice,
        "metadata": {"invoice_number": invoice_number},
        "payment_intent": f"pi_{charge_id[3:]}",
        "status": "succeeded",
    }


def mixed_payout(fake: FakeStripePayouts, payout_amount: int = 6577) -> None:
    """Two charges with fees, a refund of the first and a lost dispute on the second."""
    fake.add_source(
        charge("ch_A001", 10000, invoice="in_A001", invoice_number="INV-2026-0041"),
        charge("ch_A002", 2500, invoice="in_A002", invoice_number="INV-2026-0042"),
        {
            "id": "re_A001",
            "object": "refund",
            "amount": 1500,
            "charge": "ch_A001",
            "currency": "usd",
            "metadata": {"backoffice_refund": "rf-1"},
            "status": "succeeded",
        },
        {
            "id": "dp_A002",
            "object": "dispute",
            "amount": 2500,
            "charge": "ch_A002",
            "currency": "usd",
            "metadata": {},
            "status": "lost",
            "reason": "fraudulent",
        },
    )
    fake.add_payout(
        payout_object("po_A", payout_amount, arrival_date=NOV_20),
        [
            balance_transaction(
                "txn_c1", "charge", 10000, 320, source="ch_A001", created=NOV_20 - 5 * DAY
            ),
            balance_transaction(
                "txn_c2", "charge", 2500, 103, source="ch_A002", created=NOV_20 - 5 * DAY + 1
            ),
            balance_transaction(
                "txn_r1", "refund", -1500, source="re_A001", created=NOV_20 - 4 * DAY
            ),
            balance_transaction(
                "txn_d1",
                "adjustment",
                -2500,
                1500,
                source="dp_A002",
                reporting_category="dispute",
                created=NOV_20 - 3 * DAY,
                description="Chargeback withdrawal for ch_A002",
            ),
        ],
    )


def test_stripe_payout_with_fees_and_a_refund_reconciles_to_the_penny(fake):
    # given charges 100.00 and 25.00 (fees 3.20 and 1.03), a refund of 15.00 and a dispute
    # of 25.00 with its 15.00 fee: 96.80 + 23.97 - 15.00 - 40.00 = 65.77
    mixed_payout(fake)

    # when
    payout = stripe_payout_get(config=config(fake), payout_id="po_A")

    # then
    assert (payout.id, payout.amount, payout.currency, payout.status) == (
        "po_A",
        Decimal("65.77"),
        "USD",
        "paid",
    )
    assert payout.arrival_date == dt.date(2026, 11, 20)
    assert payout_check(payout) == []
    assert payout_totals(payout) == PayoutTotals(
        currency="USD",
        gross=Decimal("85.00"),
        charges=Decimal("125.00"),
        refunds=Decimal("-15.00"),
        disputes=Decimal("-25.00"),
        other=Decimal("0.00"),
        fees=Decimal("19.23"),
        net=Decimal("65.77"),
        count=4,
    )
    # the payout's own balance transaction is kept apart, and matches
    assert payout.payout_transaction is not None
    assert payout.payout_transaction.amount == Decimal("-65.77")
    assert [i.id for i in payout.items] == ["txn_d1", "txn_r1", "txn_c2", "txn_c1"]


def test_payout_items_carry_their_charge_and_invoice(fake):
    # given
    mixed_payout(fake)

    # when
    items = {i.id: i for i in stripe_payout_get(config=config(fake), payout_id="po_A").items}

    # then the charge's metadata and invoice came with the expanded source
    c1 = items["txn_c1"]
    assert (c1.type, c1.amount, c1.fee, c1.net) == (
        "charge",
        Decimal("100.00"),
        Decimal("3.20"),
        Decimal("96.80"),
    )
    assert (c1.source_id, c1.charge_id, c1.invoice, c1.customer) == (
        "ch_A001",
        "ch_A001",
        "in_A001",
        "cus_Acme0001",
    )
    assert c1.metadata == {"invoice_number": "INV-2026-0041"}
    assert c1.payment_intent == "pi_A001"
    assert c1.fee_details[0].amount == Decimal("3.20")
    # a refund and a dispute point to the charge they take back
    assert (items["txn_r1"].category, items["txn_r1"].charge_id) == ("refund", "ch_A001")
    assert (items["txn_d1"].category, items["txn_d1"].charge_id) == ("dispute", "ch_A002")
    assert items["txn_d1"].net == Decimal("-40.00")
    # the SDK asked for the payout's transactions with their sources expanded
    request = fake.requests[-1]
    assert request.path == "/v1/balance_transactions"
    assert request.query["payout"] == "po_A"
    assert request.query["expand"] == {"0": "data.source"}


def test_a_payout_that_does_not_add_up_is_reported_with_the_difference(fake):
    # given a payout one cent more than its transactions
    mixed_payout(fake, payout_amount=6578)

    # when
    problems = payout_check(stripe_payout_get(config=config(fake), payout_id="po_A"))

    # then
    assert problems == [
        PayoutProblem(
            code="net_mismatch",
            message="Payout po_A: its 4 transactions net to 65.77 USD, the payout is 65.78 USD "
            "(difference -0.01).",
            expected=Decimal("65.78"),
            actual=Decimal("65.77"),
        )
    ]
    assert problems[0].difference == Decimal("-0.01")


def test_an_item_whose_net_is_not_amount_less_fee_is_reported(fake):
    # given a balance transaction whose net is off by 2 cents, and the payout built on it
    fake.add_payout(
        payout_object("po_B", 9682, arrival_date=NOV_20),
        [balance_transaction("txn_b1", "charge", 10000, 320, net=9682, source="ch_B")],
    )

    # when
    problems = payout_check(stripe_payout_get(config=config(fake), payout_id="po_B"))

    # then
    assert [(p.code, p.item_id, p.difference) for p in problems] == [
        ("item_net_mismatch", "txn_b1", Decimal("0.02")),
    ]


def test_standalone_fee_items_count_as_fees(fake):
    # given a charge and a separate Radar fee of 0.05
    fake.add_payout(
        payout_object("po_F", 9675, arrival_date=NOV_20),
        [
            balance_transaction("txn_f1", "charge", 10000, 320, source="ch_F"),
            balance_transaction(
                "txn_f2",
                "stripe_fee",
                -5,
                source=None,
                reporting_category="fee",
                description="Radar for Fraud Teams",
            ),
        ],
    )

    # when
    payout = stripe_payout_get(config=config(fake), payout_id="po_F")

    # then charges + refunds + disputes + other - fees == net
    assert payout_check(payout) == []
    totals = payout_totals(payout)
    assert (totals.charges, totals.fees, totals.gross, totals.net) == (
        Decimal("100.00"),
        Decimal("3.25"),
        Decimal("99.95"),
        Decimal("96.75"),
    )
    assert totals.charges + totals.refunds + totals.disputes + totals.other - totals.fees == (
        totals.net
    )


def test_jpy_is_zero_decimal_and_usd_two(fake):
    # given a JPY payout: 1999 yen charged, 60 yen fee
    fake.add_payout(
        payout_object("po_JPY", 1939, arrival_date=NOV_20, currency="jpy"),
        [balance_transaction("txn_j1", "charge", 1999, 60, source="ch_J", currency="jpy")],
    )

    # when
    payout = stripe_payout_get(config=config(fake), payout_id="po_JPY")

    # then
    assert (payout.amount, payout.currency) == (Decimal("1939"), "JPY")
    assert (payout.items[0].amount, payout.items[0].fee) == (Decimal("1999"), Decimal("60"))
    assert payout_check(payout) == []
    assert payout_totals(payout).fees == Decimal("60")


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1912, "usd", "19.12"),
        (-2500, "usd", "-25.00"),
        (1999, "jpy", "1999"),
        (18600, "kwd", "18.600"),
        # Stripe's API keeps ISK two-decimal and MGA zero-decimal, unlike ISO 4217
        (500, "isk", "5.00"),
        (500, "mga", "500"),
    ],
)
def test_minor_units_convert_exactly(minor, currency, expected):
    assert str(amount_from_minor(minor, currency)) == expected


@pytest.mark.parametrize("value", ["10.00", 10.0, None, True])
def test_an_amount_that_is_not_integer_minor_units_is_refused(value):
    with pytest.raises(FeedError) as caught:
        amount_from_minor(value, "usd")
    assert caught.value.feed_code is FeedErrorCode.BAD_RESPONSE
    assert "not an integer number of minor units of USD" in caught.value.message


def test_payouts_for_a_period_page_through_all_transactions(fake):
    # given 120 charges in one payout (two pages of 100), and payouts before and after
    rows = [
        balance_transaction(
            f"txn_{n:03d}", "charge", 1000, 59, source=f"ch_{n:03d}", created=NOV_20 - 3 * DAY + n
        )
        for n in range(120)
    ]
    fake.add_payout(payout_object("po_big", 120 * 941, arrival_date=NOV_20), rows)
    fake.add_payout(
        payout_object("po_before", 941, arrival_date=NOV_20 - 30 * DAY),
        [balance_transaction("txn_x", "charge", 1000, 59, source="ch_x")],
    )
    fake.add_payout(
        payout_object("po_next_day", 941, arrival_date=NOV_20 + DAY),
        [balance_transaction("txn_y", "charge", 1000, 59, source="ch_y")],
    )

    # when
    payouts = stripe_payouts_list(
        config=config(fake), arrival_from=dt.date(2026, 11, 1), arrival_to=dt.date(2026, 11, 21)
    )

    # then
    assert [p.id for p in payouts] == ["po_big", "po_next_day"]
    big = payouts[0]
    assert len(big.items) == 120
    assert payout_check(big) == []
    assert payout_totals(big).net == Decimal("1129.20")
    listing = next(r for r in fake.requests if r.path == "/v1/payouts")
    assert listing.query["arrival_date"] == {
        "gte": str(int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp())),
        "lt": str(int(dt.datetime(2026, 11, 22, tzinfo=dt.UTC).timestamp())),
    }
    pages = [r for r in fake.requests if r.query.get("payout") == "po_big"]
    assert [r.query.get("starting_after") for r in pages] == [
        None,
        pages[1].query["starting_after"],
    ]


def test_a_manual_payout_cannot_be_itemised(fake):
    # given
    fake.add_payout(payout_object("po_manual", 5000, arrival_date=NOV_20, automatic=False), [])

    # when
    payout = stripe_payout_get(config=config(fake), payout_id="po_manual")

    # then
    assert payout.items == ()
    assert [(p.code, p.difference) for p in payout_check(payout)] == [
        ("no_items", Decimal("-50.00")),
    ]
    assert not [r for r in fake.requests if r.path == "/v1/balance_transactions"]


def test_a_failed_payout_is_reported(fake):
    # given
    failed = payout_object("po_failed", 941, arrival_date=NOV_20, status="failed")
    failed["failure_code"] = "account_closed"
    fake.add_payout(failed, [balance_transaction("txn_f", "charge", 1000, 59, source="ch_f")])

    # when
    problems = payout_check(stripe_payout_get(config=config(fake), payout_id="po_failed"))

    # then
    assert [p.code for p in problems] == ["payout_not_paid"]
    assert problems[0].message == "Payout po_failed is failed (account_closed): no deposit."


def test_stripe_errors_are_feed_errors(fake):
    # given a wrong key
    with pytest.raises(FeedError) as caught:
        stripe_payout_get(config=config(fake, api_key="sk_test_wrong"), payout_id="po_A")
    assert caught.value.feed_code is FeedErrorCode.INVALID_CREDENTIALS
    assert caught.value.http_status == 401

    # and a 500
    fake.add_payout(payout_object("po_C", 0, arrival_date=NOV_20), [])
    fake.queue_error("server_error")
    with pytest.raises(FeedError) as caught:
        stripe_payout_get(config=config(fake), payout_id="po_C")
    assert caught.value.feed_code is FeedErrorCode.PROVIDER_UNAVAILABLE
    assert caught.value.retryable is True

    # and an unknown payout
    with pytest.raises(FeedError) as caught:
        stripe_payout_get(config=config(fake), payout_id="po_missing")
    assert (caught.value.feed_code, caught.value.provider_code) == (
        FeedErrorCode.INVALID_REQUEST,
        "resource_missing",
    )


# --- the real-shaped files of ../shared/data/stripe ----------------------------------------


def load(shared_data, name: str) -> dict:
    return json.loads((shared_data / "stripe" / name).read_text())


@pytest.mark.corpus
def test_corpus_charge_and_reinstated_dispute_reconcile(fake, shared_data):
    # given the charge's balance transaction (2000 - 88 fee), the dispute's withdrawal and
    # reinstatement (-1000 - 1500 fee, then +1000 + 1500 back), served as Stripe sends them
    charge_txn = load(shared_data, "balance_transaction_charge.json")
    charge_obj = load(shared_data, "charge.json")
    dispute = load(shared_data, "dispute_funds_reinstated_full.json")
    payout = load(shared_data, "payout_bank_account.json")
    # the payout file is dj-stripe's, which stores amount as a decimal string ("10.00"); the
    # API sends integer minor units, so the test gives it the amount its transactions net to
    payout = {**payout, "amount": 1912}
    fake.add_source(charge_obj, dispute)
    fake.add_payout(
        payout, [charge_txn, *dispute["balance_transactions"]], with_own_transaction=False
    )

    # when
    result = stripe_payout_get(config=config(fake), payout_id=payout["id"])

    # then
    assert payout_check(result) == []
    assert payout_totals(result) == PayoutTotals(
        currency="USD",
        gross=Decimal("20.00"),
        charges=Decimal("20.00"),
        refunds=Decimal("0.00"),
        disputes=Decimal("0.00"),
        other=Decimal("0.00"),
        fees=Decimal("0.88"),
        net=Decimal("19.12"),
        count=3,
    )
    items = {i.id: i for i in result.items}
    charge_item = items["txn_fake_ch_fakefakefakefakefake0001"]
    assert (charge_item.charge_id, charge_item.invoice, charge_item.customer) == (
        "ch_fakefakefakefakefake0001",
        "in_fakefakefakefakefake0001",
        "cus_6lsBvm5rJ0zyHc",
    )
    assert charge_item.metadata == {"djstripe_test_fake_id": "ch_fakefakefakefakefake0001"}
    assert {items[t["id"]].charge_id for t in dispute["balance_transactions"]} == {
        "ch_fakefakefakefakefake0001"
    }
    assert [items[t["id"]].net for t in dispute["balance_transactions"]] == [
        Decimal("-25.00"),
        Decimal("25.00"),
    ]
    assert result.arrival_date == dt.date(2021, 8, 23)


@pytest.mark.corpus
def test_corpus_payout_with_a_decimal_string_amount_is_refused_clearly(shared_data):
    # given dj-stripe's payout fixture, whose amount is "10.00" rather than 1000
    payout = load(shared_data, "payout_bank_account.json")

    # when
    with pytest.raises(FeedError) as caught:
        payout_from(payout)

    # then
    assert caught.value.feed_code is FeedErrorCode.BAD_RESPONSE
    assert caught.value.message == (
        "Stripe payout po_1JR569QuFmP1Mw5uxasKoRx5 is '10.00', not an integer number of minor "
        "units of USD."
    )
