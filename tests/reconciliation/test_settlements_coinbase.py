"""Coinbase Commerce settlements: the merchant's settlement export (our written-down shape),
each charge read back from the Commerce API (a local fake with its shapes), linked to
billing's payments by charge code and refunds by refund id, checked to the penny, imported
once (a malformed export, an unknown charge or a restated settlement stores nothing), and
reconciled against the bank deposit as one entry that brings processor clearing to zero."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.checks import ar_subledger_check
from billing.models import Customer
from billing.services.customers import customer_create
from billing.services.refunds import refund_issue
from core.exceptions import PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.roles import Role
from reconciliation.enums import ExceptionKind, PayoutStatus
from reconciliation.feeds.errors import FeedError
from reconciliation.models import (
    AuditEvent,
    BankAccount,
    Payout,
    PayoutItem,
    ReconciliationException,
)
from reconciliation.payouts.coinbase_settlements import CoinbaseConfig
from reconciliation.services_payouts import payout_reconcile
from reconciliation.services_settlements import (
    SettlementConflict,
    SettlementRefused,
    coinbase_settlement_import,
)
from tests.conftest import verified_client
from tests.reconciliation.fakes.coinbase_commerce_server import (
    API_KEY,
    FakeCoinbaseCommerce,
    charge,
    export,
    refund,
    running_fake_coinbase_commerce,
)
from tests.reconciliation.settlement_helpers import (
    balance,
    bank_line,
    entry_lines,
    invoice,
    processor_payment,
    trial_balance_is_zero,
)

D = Decimal
pytestmark = pytest.mark.django_db
TODAY = dt.date.today()  # noqa: DTZ011 (payments and lines are dated today)
SETTLED_AT = f"{TODAY - dt.timedelta(days=1)}T12:00:00Z"
SETTLEMENT = "cbs_2025_0001"
CODES = ["CBCODE01", "CBCODE02", "CBCODE03"]


@pytest.fixture
def fake() -> Iterator[FakeCoinbaseCommerce]:
    with running_fake_coinbase_commerce() as fake:
        yield fake


def config(fake: FakeCoinbaseCommerce) -> CoinbaseConfig:
    return CoinbaseConfig(api_key=API_KEY, api_base=fake.url, timeout_seconds=5.0)


@pytest.fixture
def coinbase_settings(settings, fake):
    settings.COINBASE_COMMERCE_API_KEY = API_KEY
    settings.COINBASE_COMMERCE_API_BASE = fake.url
    return settings


@pytest.fixture
def clerk(make_user):
    return make_user(Role.AR_CLERK)


@pytest.fixture
def usd_account(make_bank_account) -> BankAccount:
    return make_bank_account("USD", name="US operating")


@pytest.fixture
def customer(clerk) -> Customer:
    return customer_create(actor=clerk, name="Acme Corp", email="ap@acme.example", currency="USD")


@pytest.fixture
def paid(clerk, finance_admin, customer, fake, django_capture_on_commit_callbacks):
    """Three invoices paid in crypto through Coinbase (100.00, 25.00, 50.00; 1% fees, recorded
    under their charge codes) and 15.00 of the first refunded."""
    capture = django_capture_on_commit_callbacks
    invoices = [invoice(clerk, customer, a, capture) for a in ("100.00", "25.00", "50.00")]
    payments = [
        processor_payment(
            customer, inv, processor="coinbase_commerce", charge_id=code, method="cryptocurrency"
        )
        for code, inv in zip(CODES, invoices, strict=True)
    ]
    rf = refund_issue(
        actor=finance_admin,
        customer_id=customer.pk,
        amount=D("15.00"),
        reason="Partly unhappy",
        payment_id=payments[0].pk,
        processor_refund_id="cbr_0001",
    )
    fake.add(
        charge("CBCODE01", "100.00", "1.00"),
        charge("CBCODE02", "25.00", "0.25"),
        charge("CBCODE03", "50.00", "0.50"),
    )
    return {"payments": payments, "refund": rf}


def the_export(amount: str = "158.25", **kw) -> bytes:
    refunds = kw.pop("refunds", [refund("cbr_0001", "CBCODE01", "15.00")])
    return export(SETTLEMENT, amount, kw.pop("codes", CODES), refunds, settled_at=SETTLED_AT, **kw)


def test_coinbase_settlement_with_fees_and_a_refund_reconciles_to_the_penny(
    fake, paid, usd_account, clerk
) -> None:
    # given: billing put 175.00 in clearing and took the 15.00 refund back out
    assert balance(AccountRole.PROCESSOR_CLEARING) == D("160.00")
    cash_before = balance(usd_account.ledger_account)
    result = coinbase_settlement_import(actor=clerk, data=the_export(), config=config(fake))
    deposit = bank_line(usd_account, "158.25", booking_date=TODAY, description="COINBASE")

    # when
    payout = payout_reconcile(payout_id=Payout.objects.get().pk, line_id=deposit.pk, actor=clerk)

    # then: the charges as the API gave them, linked by code; the refund linked by its id
    assert (result.created, result.exceptions) == (1, 0)
    assert (payout.provider, payout.external_id, payout.arrival_date) == (
        "coinbase_commerce",
        SETTLEMENT,
        TODAY - dt.timedelta(days=1),
    )
    items = list(PayoutItem.objects.filter(payout=payout).order_by("pk"))
    assert [(i.category, i.charge_id, i.amount, i.fee, i.net) for i in items] == [
        ("charge", "CBCODE01", D("100.00"), D("1.00"), D("99.00")),
        ("charge", "CBCODE02", D("25.00"), D("0.25"), D("24.75")),
        ("charge", "CBCODE03", D("50.00"), D("0.50"), D("49.50")),
        ("refund", "CBCODE01", D("-15.00"), D("0.00"), D("-15.00")),
    ]
    payments = paid["payments"]
    assert [i.payment_id for i in items] == [p.pk for p in payments] + [payments[0].pk]
    assert items[3].refund_id == paid["refund"].pk
    assert (payout.charges, payout.refunds, payout.fees) == (D("175.00"), D("-15.00"), D("1.75"))
    # one entry: Dr bank 158.25 + Dr fees 1.75 / Cr clearing 160.00; clearing back to zero
    entry = JournalEntry.objects.get(pk=payout.journal_entry_id)
    assert entry_lines(entry) == sorted(
        [
            (usd_account.ledger_account.role or "bank", D("158.25"), D(0)),
            (AccountRole.PROCESSOR_FEES, D("1.75"), D(0)),
            (AccountRole.PROCESSOR_CLEARING, D(0), D("160.00")),
        ]
    )
    assert balance(usd_account.ledger_account) - cash_before == D("158.25")
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)
    assert trial_balance_is_zero()
    assert ar_subledger_check() == []
    assert payout.status == PayoutStatus.RECONCILED
    # every charge was read from the API with the documented headers
    assert sorted(r.path for r in fake.requests) == [f"/charges/{c}" for c in CODES]
    assert {r.headers["x-cc-version"] for r in fake.requests} == {"2018-03-22"}


def test_the_same_export_again_changes_nothing(fake, paid, clerk) -> None:
    # given
    coinbase_settlement_import(actor=clerk, data=the_export(), config=config(fake))
    before = list(Payout.objects.values())
    items = list(PayoutItem.objects.values())

    # when
    again = coinbase_settlement_import(actor=clerk, data=the_export(), config=config(fake))

    # then
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert list(Payout.objects.values()) == before
    assert list(PayoutItem.objects.values()) == items


def test_an_export_restating_a_settlement_with_other_figures_is_refused(fake, paid, clerk) -> None:
    # given
    coinbase_settlement_import(actor=clerk, data=the_export(), config=config(fake))
    before = list(Payout.objects.values())

    # when
    with pytest.raises(SettlementConflict) as refused:
        coinbase_settlement_import(
            actor=clerk, data=the_export("173.25", refunds=[]), config=config(fake)
        )

    # then
    assert (refused.value.code, refused.value.status_code) == ("settlement_restated", 409)
    assert list(Payout.objects.values()) == before


def test_a_settlement_that_does_not_add_up_is_an_exception_with_its_difference(
    fake, paid, clerk
) -> None:
    # when: Coinbase says 160.00, the charges and refund net to 158.25
    result = coinbase_settlement_import(actor=clerk, data=the_export("160.00"), config=config(fake))

    # then
    payout = Payout.objects.get()
    assert (result.exceptions, payout.status) == (1, PayoutStatus.EXCEPTION)
    exc = ReconciliationException.objects.get()
    assert (exc.kind, exc.key) == (ExceptionKind.PAYOUT_MISMATCH, f"payout_mismatch:{SETTLEMENT}")
    assert (exc.amount, exc.difference, exc.currency) == (D("160.00"), D("-1.75"), "USD")


def test_a_refund_billing_has_not_recorded_is_an_exception(fake, paid, clerk) -> None:
    # given: a second refund, of 5.00, billing never recorded
    refunds = [refund("cbr_0001", "CBCODE01", "15.00"), refund("cbr_0002", "CBCODE02", "5.00")]

    # when
    coinbase_settlement_import(
        actor=clerk, data=the_export("153.25", refunds=refunds), config=config(fake)
    )

    # then
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.EXCEPTION
    assert "refund cbr_0002 of 5.00 USD is not recorded in billing" in payout.problem


def test_a_charge_not_completed_is_an_exception(fake, paid, clerk) -> None:
    # given: the third charge's timeline ends UNRESOLVED
    fake.add(charge("CBCODE03", "50.00", "0.50", status="UNRESOLVED"))

    # when
    coinbase_settlement_import(actor=clerk, data=the_export(), config=config(fake))

    # then
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.EXCEPTION
    assert "Charge CBCODE03 is UNRESOLVED" in payout.problem


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["settlement"].pop("id"), "settlement"),
        (lambda d: d["settlement"].update(amount=158.25), "settlement"),
        (lambda d: d["settlement"].update(amount="158.251"), "more decimals"),
        (lambda d: d["settlement"].update(amount="NaN"), "settlement"),
        (lambda d: d["charges"].append({"code": "CBCODE01"}), "listed twice"),
        (
            lambda d: d["refunds"][0].update(amount={"amount": "-1", "currency": "USD"}),
            "refunds[0]",
        ),
        (lambda d: d.update(charges=[{"code": "NOSUCHCH"}]), "no charge NOSUCHCH"),
    ],
)
def test_a_malformed_export_is_refused_whole(fake, paid, clerk, change, named) -> None:
    # given
    data = json.loads(the_export())
    change(data)
    audits = AuditEvent.objects.count()

    # when
    with pytest.raises(SettlementRefused) as refused:
        coinbase_settlement_import(actor=clerk, data=json.dumps(data).encode(), config=config(fake))

    # then: nothing stored
    assert named in refused.value.message
    assert Payout.objects.count() == 0
    assert ReconciliationException.objects.count() == 0
    assert AuditEvent.objects.count() == audits


def test_coinbase_failing_stores_nothing(fake, paid, clerk) -> None:
    fake.failing = True
    with pytest.raises(FeedError) as refused:
        coinbase_settlement_import(actor=clerk, data=the_export(), config=config(fake))
    assert refused.value.code == "provider_unavailable"
    assert Payout.objects.count() == 0


def test_import_needs_the_permission(fake, make_user) -> None:
    with pytest.raises(PermissionDeniedError):
        coinbase_settlement_import(
            actor=make_user(Role.AUDITOR), data=the_export(), config=config(fake)
        )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [(Role.AUDITOR, 403), (Role.APPROVER, 403), (Role.AR_CLERK, 200), (Role.CONTROLLER, 200)],
)
def test_api_upload(coinbase_settings, fake, paid, client_for, role, expected) -> None:
    # when
    response = client_for(role).post(
        "/api/reconciliation/payouts/import/coinbase",
        {"file": SimpleUploadedFile("settlement.json", the_export())},
        format="multipart",
    )

    # then
    assert response.status_code == expected
    assert Payout.objects.filter(provider="coinbase_commerce").count() == (expected == 200)


def test_api_refusals_are_4xx_with_a_reason(coinbase_settings, fake, paid, client_for) -> None:
    client = client_for(Role.AR_CLERK)
    url = "/api/reconciliation/payouts/import/coinbase"

    bad = client.post(url, {"file": SimpleUploadedFile("s.json", b"{not json")}, format="multipart")
    missing = client.post(url, {}, format="multipart")
    client.post(url, {"file": SimpleUploadedFile("s.json", the_export())}, format="multipart")
    restated = client.post(
        url, {"file": SimpleUploadedFile("s.json", the_export("1.00"))}, format="multipart"
    )

    assert (bad.status_code, bad.json()["code"]) == (400, "settlement_refused")
    assert "not JSON" in bad.json()["message"]
    assert (missing.status_code, missing.json()["code"]) == (400, "invalid")
    assert (restated.status_code, restated.json()["code"]) == (409, "settlement_restated")


def test_admin_upload(coinbase_settings, fake, paid, finance_admin, make_user) -> None:
    # given
    client = verified_client(finance_admin)
    url = "/admin/reconciliation/payout/import-coinbase/"

    # when
    form = client.get(url)
    posted = client.post(url, {"file": SimpleUploadedFile("s.json", the_export())})
    auditor = verified_client(make_user(Role.AUDITOR)).get(url)

    # then
    assert form.status_code == 200
    assert posted.status_code == 302
    assert Payout.objects.get().external_id == SETTLEMENT
    assert auditor.status_code == 403
