"""PayPal settlements from the Transaction Search report (a local fake with its documented
shapes): delimited by withdrawals to the bank, linked to billing's payments and refunds,
checked to the penny with fees, refunds, holds and conversions, imported once (a partial or
malformed report stores nothing), and reconciled against the bank deposit as one entry that
brings processor clearing back to zero."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from billing.checks import ar_functional_check, ar_subledger_check
from billing.models import Customer
from billing.services.customers import customer_create
from billing.services.refunds import refund_issue
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance
from core.roles import Role
from reconciliation.enums import ExceptionKind, MatchStatus, PayoutStatus, StatementLineStatus
from reconciliation.feeds.errors import FeedError
from reconciliation.models import (
    AuditEvent,
    BankAccount,
    Match,
    Payout,
    PayoutItem,
    ReconciliationException,
)
from reconciliation.payouts import paypal_settlements
from reconciliation.payouts.paypal_settlements import PayPalConfig
from reconciliation.payouts.settlements import (
    Settlement,
    SettlementItem,
    settlement_check,
    settlement_totals,
)
from reconciliation.services_matching import match_undo, reconcile
from reconciliation.services_payouts import PayoutConflict, payout_reconcile
from reconciliation.services_settlements import paypal_settlements_import
from tests.conftest import verified_client
from tests.reconciliation.fakes.paypal_reporting_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakePayPalReporting,
    running_fake_paypal_reporting,
    transaction,
)
from tests.reconciliation.settlement_helpers import (
    balance,
    balance_in,
    bank_line,
    entry_lines,
    entry_lines_in,
    invoice,
    processor_payment,
    trial_balance_is_zero,
)

D = Decimal
pytestmark = pytest.mark.django_db
TODAY = dt.date.today()  # noqa: DTZ011 (payments and lines are dated today)
SINCE = TODAY - dt.timedelta(days=7)
WITHDRAWAL = "9WD00000000000002"


def at(days_ago: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(TODAY - dt.timedelta(days=days_ago), dt.time(hour), tzinfo=dt.UTC)


@pytest.fixture
def fake() -> Iterator[FakePayPalReporting]:
    with running_fake_paypal_reporting() as fake:
        yield fake


def config(fake: FakePayPalReporting) -> PayPalConfig:
    paypal_settlements._tokens.clear()
    return PayPalConfig(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, api_base=fake.url, timeout_seconds=5.0
    )


@pytest.fixture
def paypal_settings(settings, fake):
    paypal_settlements._tokens.clear()
    settings.PAYPAL_CLIENT_ID = CLIENT_ID
    settings.PAYPAL_CLIENT_SECRET = CLIENT_SECRET
    settings.PAYPAL_API_BASE = fake.url
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
def paid(clerk, finance_admin, customer, django_capture_on_commit_callbacks):
    """Three invoices paid through PayPal (100.00, 25.00, 50.00; recorded under their capture
    ids) and 15.00 of the first refunded (recorded under PayPal's refund id)."""
    capture = django_capture_on_commit_callbacks
    invoices = [invoice(clerk, customer, a, capture) for a in ("100.00", "25.00", "50.00")]
    payments = [
        processor_payment(
            customer, inv, processor="paypal", charge_id=f"8CAP0000000000{n}", method="credit_card"
        )
        for n, inv in enumerate(invoices, start=1)
    ]
    refund = refund_issue(
        actor=finance_admin,
        customer_id=customer.pk,
        amount=D("15.00"),
        reason="Partly unhappy",
        payment_id=payments[0].pk,
        processor_refund_id="7REF00000000001",
    )
    return {"payments": payments, "refund": refund}


def serve_report(
    fake: FakePayPalReporting, *, withdrawal: str = "-152.42", extra: tuple = ()
) -> None:
    """A month of PayPal activity: an earlier settlement (withdrawn 11 days ago), then the
    three captures (fees 3.98, 1.36, 2.24) and the 15.00 refund, a pending payment that has
    not moved the balance, the withdrawal of 152.42 yesterday, and a payment after it (the
    next settlement's)."""
    fake.add(
        transaction("1OLD0000000000001", "T0006", "10.00", "-0.79", at=at(12)),
        transaction("9WD00000000000001", "T0400", "-9.21", at=at(11)),
        transaction("8CAP00000000001", "T0006", "100.00", "-3.98", at=at(5, 9)),
        transaction("8CAP00000000002", "T0006", "25.00", "-1.36", at=at(5, 10)),
        transaction("8CAP00000000003", "T0006", "50.00", "-2.24", at=at(4)),
        transaction(
            "7REF00000000001", "T1107", "-15.00", "0.00", at=at(3), reference="8CAP00000000001"
        ),
        transaction("1PEND000000000001", "T0006", "30.00", "-1.54", at=at(2), status="P"),
        *extra,
        transaction(WITHDRAWAL, "T0400", withdrawal, at=at(1)),
        transaction("1NEXT000000000001", "T0006", "40.00", "-1.89", at=at(0, 1)),
    )


def import_(fake, clerk, **kw):
    return paypal_settlements_import(
        actor=clerk, since=SINCE, until=TODAY, config=config(fake), **kw
    )


# --- the must-have -----------------------------------------------------------------------------


def test_paypal_settlement_with_fees_and_a_refund_reconciles_to_the_penny(
    fake, paid, usd_account, clerk
) -> None:
    # given: billing put 175.00 of PayPal payments in clearing and took 15.00 back out
    serve_report(fake)
    assert balance(AccountRole.PROCESSOR_CLEARING) == D("160.00")
    cash_before = balance(usd_account.ledger_account)
    fees_before = balance(AccountRole.PROCESSOR_FEES)
    result = import_(fake, clerk)
    deposit = bank_line(usd_account, "152.42", booking_date=TODAY, description="PAYPAL TRANSFER")

    # when
    payout = payout_reconcile(
        payout_id=Payout.objects.get(external_id=WITHDRAWAL).pk, line_id=deposit.pk, actor=clerk
    )

    # then: one settlement, the withdrawal's, with the four transactions it swept
    assert (result.fetched, result.created, result.exceptions) == (1, 1, 0)
    assert (payout.provider, payout.external_id, payout.arrival_date) == (
        "paypal",
        WITHDRAWAL,
        TODAY - dt.timedelta(days=1),
    )
    items = list(PayoutItem.objects.filter(payout=payout).order_by("balance_transaction_id"))
    assert [(i.balance_transaction_id, i.category, i.amount, i.fee, i.net) for i in items] == [
        ("7REF00000000001", "refund", D("-15.00"), D("0.00"), D("-15.00")),
        ("8CAP00000000001", "charge", D("100.00"), D("3.98"), D("96.02")),
        ("8CAP00000000002", "charge", D("25.00"), D("1.36"), D("23.64")),
        ("8CAP00000000003", "charge", D("50.00"), D("2.24"), D("47.76")),
    ]
    payments = paid["payments"]
    assert [i.payment_id for i in items] == [payments[0].pk] + [p.pk for p in payments]
    assert [i.refund_id for i in items] == [paid["refund"].pk, None, None, None]
    assert (payout.charges, payout.refunds, payout.fees, payout.holds, payout.amount) == (
        D("175.00"),
        D("-15.00"),
        D("7.58"),
        D("0.00"),
        D("152.42"),
    )
    # one balanced entry: Dr bank 152.42 + Dr fees 7.58 / Cr clearing 160.00
    entry = JournalEntry.objects.get(pk=payout.journal_entry_id)
    assert entry.entry_date == deposit.booking_date
    assert entry_lines(entry) == sorted(
        [
            (usd_account.ledger_account.role or "bank", D("152.42"), D(0)),
            (AccountRole.PROCESSOR_FEES, D("7.58"), D(0)),
            (AccountRole.PROCESSOR_CLEARING, D(0), D("160.00")),
        ]
    )
    assert balance(usd_account.ledger_account) - cash_before == D("152.42")
    assert balance(AccountRole.PROCESSOR_FEES) - fees_before == D("7.58")
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)
    assert trial_balance_is_zero()
    assert ar_subledger_check() == []
    assert payout.status == PayoutStatus.RECONCILED
    deposit.refresh_from_db()
    assert deposit.status == StatementLineStatus.MATCHED
    assert Match.objects.get(lines__line=deposit).status == MatchStatus.APPLIED


def test_holds_keep_money_out_of_one_settlement_and_their_release_pays_it_in_the_next(
    fake, paid, customer, usd_account, clerk, django_capture_on_commit_callbacks
) -> None:
    # given: 20.00 held before the withdrawal (132.42 paid out); then the hold released and a
    # 40.00 payment (no fee) withdrawn as 60.00
    serve_report(
        fake,
        withdrawal="-132.42",
        extra=(transaction("4HOLD000000000001", "T1503", "-20.00", at=at(2, 13)),),
    )
    fake.rows = [
        r for r in fake.rows if r["transaction_info"]["transaction_id"] != "1NEXT000000000001"
    ]
    fake.add(
        transaction("1NEXT000000000001", "T0006", "40.00", "0.00", at=at(0, 1)),
        transaction("4HOLD00000000001R", "T1105", "20.00", at=at(0, 2)),
        transaction("9WD00000000000003", "T0400", "-60.00", at=at(0, 3)),
    )
    inv = invoice(clerk, customer, "40.00", django_capture_on_commit_callbacks)
    processor_payment(
        customer, inv, processor="paypal", charge_id="1NEXT000000000001", method="credit_card"
    )
    import_(fake, clerk)
    first = Payout.objects.get(external_id=WITHDRAWAL)
    second = Payout.objects.get(external_id="9WD00000000000003")

    # when the first deposit is reconciled
    payout_reconcile(
        payout_id=first.pk,
        line_id=bank_line(usd_account, "132.42", booking_date=TODAY).pk,
        actor=clerk,
    )

    # then the held 20.00 stays in clearing (with the 40.00 of the next settlement)
    first.refresh_from_db()
    assert (first.status, first.holds, first.fees, first.amount) == (
        PayoutStatus.RECONCILED,
        D("-20.00"),
        D("7.58"),
        D("132.42"),
    )
    assert balance(AccountRole.PROCESSOR_CLEARING) == D("60.00")

    # when the second (the release and the 40.00 payment) is reconciled too
    payout_reconcile(
        payout_id=second.pk,
        line_id=bank_line(usd_account, "60.00", booking_date=TODAY).pk,
        actor=clerk,
    )

    # then clearing is back to zero
    second.refresh_from_db()
    assert (second.status, second.holds, second.charges, second.amount) == (
        PayoutStatus.RECONCILED,
        D("20.00"),
        D("40.00"),
        D("60.00"),
    )
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)
    assert trial_balance_is_zero()


def test_a_conversion_into_the_settlement_currency_is_counted() -> None:
    # given: a USD settlement with a payment and 9.00 converted in from another currency
    rows = [
        transaction("8CAPX", "T0006", "100.00", "-3.98", at=at(3)),
        transaction("2CONVEUR", "T0200", "-8.50", at=at(2), currency="EUR"),
        transaction("2CONVUSD", "T0200", "9.00", at=at(2)),
        transaction("9WDX", "T0400", "-105.02", at=at(1)),
    ]
    txns = [paypal_settlements.transaction_from(r, n) for n, r in enumerate(rows)]

    # when
    (settlement,) = paypal_settlements.settlements_from(txns, arrival_from=SINCE, arrival_to=TODAY)

    # then: only the USD side counts, and it adds up
    totals = settlement_totals(settlement)
    assert [i.id for i in settlement.items] == ["8CAPX", "2CONVUSD"]
    assert (totals.charges, totals.conversions, totals.fees, totals.net) == (
        D("100.00"),
        D("9.00"),
        D("3.98"),
        D("105.02"),
    )
    assert settlement_check(settlement) == []


# --- currency conversions --------------------------------------------------------------------

EUR_CAPTURE = "8CAPEUR00000001"
EUR_REFUND = "7REFEUR00000001"
CLEARING = AccountRole.PROCESSOR_CLEARING
CONVERSION = AccountRole.PROCESSOR_CONVERSION
FEES = AccountRole.PROCESSOR_FEES
FX = AccountRole.FX_GAIN_LOSS
# Bank accounts post to the chart's cash account unless given their own.
BANK = AccountRole.CASH


@pytest.fixture
def eur_paid(clerk, django_capture_on_commit_callbacks):
    """EUR 100.00 invoiced and paid through PayPal five days ago, when EUR/USD was 1.08
    (billing put EUR 100.00 worth 108.00 USD in clearing); EUR/USD is 1.09 today."""
    fx_rate_set(base="EUR", quote="USD", rate=D("1.08"), rate_date=TODAY - dt.timedelta(days=5))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.09"), rate_date=TODAY)
    customer = customer_create(
        actor=clerk, name="Berlin GmbH", email="ap@berlin.example", currency="EUR"
    )
    day = TODAY - dt.timedelta(days=5)
    inv = invoice(clerk, customer, "100.00", django_capture_on_commit_callbacks, issue_date=day)
    payment = processor_payment(
        customer,
        inv,
        processor="paypal",
        charge_id=EUR_CAPTURE,
        method="credit_card",
        received_date=day,
    )
    return {"customer": customer, "payment": payment}


def converted_rows(*, hour: int = 11) -> tuple:
    """The EUR 100.00 capture (fee 3.20) and PayPal converting its EUR 96.80 into USD 104.09
    (PayPal's rate 1.0753): both legs name the capture."""
    return (
        transaction(EUR_CAPTURE, "T0006", "100.00", "-3.20", at=at(5, hour), currency="EUR"),
        transaction(
            "2CNVEUR00000001", "T0200", "-96.80", at=at(5, hour), currency="EUR",
            reference=EUR_CAPTURE,
        ),
        transaction("2CNVUSD00000001", "T0200", "104.09", at=at(5, hour), reference=EUR_CAPTURE),
    )  # fmt: skip


def test_a_converted_payment_clears_each_currency_through_the_conversion_account(
    fake, paid, eur_paid, usd_account, clerk
) -> None:
    # given: the USD settlement of 152.42, plus the EUR payment PayPal converted into USD
    # 104.09 and withdrew with it (256.51)
    serve_report(fake, withdrawal="-256.51", extra=converted_rows())
    assert balance_in(CLEARING, "EUR") == (D("100.00"), D("108.0000"))
    cash_before = balance(usd_account.ledger_account)
    import_(fake, clerk)
    payout = Payout.objects.get(external_id=WITHDRAWAL)
    deposit = bank_line(usd_account, "256.51", booking_date=TODAY)

    # when
    payout = payout_reconcile(payout_id=payout.pk, line_id=deposit.pk, actor=clerk)

    # then: the EUR transactions are in the USD settlement, linked to billing's EUR payment
    assert payout.status == PayoutStatus.RECONCILED
    eur = {
        i.balance_transaction_id: (i.category, i.amount, i.fee, i.net, i.payment_id)
        for i in PayoutItem.objects.filter(payout=payout, currency="EUR")
    }
    assert eur == {
        EUR_CAPTURE: ("charge", D("100.00"), D("3.20"), D("96.80"), eur_paid["payment"].pk),
        "2CNVEUR00000001": ("currency_conversion", D("-96.80"), D("0.00"), D("-96.80"), None),
    }
    # its totals are its own currency's
    assert (payout.charges, payout.conversions, payout.fees, payout.amount) == (
        D("175.00"),
        D("104.09"),
        D("7.58"),
        D("256.51"),
    )
    # one balanced entry, each currency in its own; both legs of the conversion at 104.09 USD;
    # EUR booked at 108.00 came in at 104.09 + a fee worth 3.488: a loss of 0.422
    entry = JournalEntry.objects.get(pk=payout.journal_entry_id)
    z = D(0)
    assert entry_lines_in(entry) == sorted(
        [
            (BANK, "USD", D("256.51"), z, D("256.51"), z),
            (FEES, "USD", D("7.58"), z, D("7.58"), z),
            (CLEARING, "USD", z, D("160.00"), z, D("160.00")),
            (CONVERSION, "USD", z, D("104.09"), z, D("104.09")),
            (FEES, "EUR", D("3.20"), z, D("3.488"), z),
            (CLEARING, "EUR", z, D("100.00"), z, D("108.00")),
            (CONVERSION, "EUR", D("96.80"), z, D("104.09"), z),
            (FX, "EUR", z, z, D("0.422"), z),
        ]
    )
    # each currency's clearing is back to zero, in its currency and in USD
    assert balance_in(CLEARING, "EUR") == (D(0), D(0))
    assert balance_in(CLEARING, "USD") == (D(0), D(0))
    assert balance(usd_account.ledger_account) - cash_before == D("256.51")
    assert balance_in(FEES, "EUR") == (D("3.20"), D("3.4880"))
    # the conversion account holds what was converted, worth nothing in USD
    assert balance_in(CONVERSION, "EUR") == (D("96.80"), D("104.09"))
    assert balance_in(CONVERSION, "USD") == (D("-104.09"), D("-104.09"))
    assert balance_in(FX, "EUR") == (D(0), D("0.4220"))
    assert trial_balance().is_balanced
    assert trial_balance_is_zero()
    assert ar_subledger_check() == []
    assert ar_functional_check() == []


def test_a_settlement_with_a_conversion_and_a_refund_funded_by_converting_back(
    fake, eur_paid, usd_account, clerk, finance_admin
) -> None:
    # given: EUR 20.00 of the payment refunded two days later (billing at 1.08: 21.60 USD),
    # PayPal funding it by converting USD 21.62 back into EUR 20.00; 82.47 withdrawn
    refund = refund_issue(
        actor=finance_admin,
        customer_id=eur_paid["customer"].pk,
        amount=D("20.00"),
        reason="Partly unhappy",
        payment_id=eur_paid["payment"].pk,
        refund_date=TODAY - dt.timedelta(days=3),
        processor_refund_id=EUR_REFUND,
    )
    fake.add(
        *converted_rows(),
        transaction(
            "2CNVUSD00000002", "T0200", "-21.62", at=at(3), reference=EUR_REFUND,
        ),
        transaction(
            "2CNVEUR00000002", "T0200", "20.00", at=at(3), currency="EUR", reference=EUR_REFUND,
        ),
        transaction(
            EUR_REFUND, "T1107", "-20.00", "0.00", at=at(3), currency="EUR",
            reference=EUR_CAPTURE,
        ),
        transaction(WITHDRAWAL, "T0400", "-82.47", at=at(1)),
    )  # fmt: skip
    import_(fake, clerk)
    payout = Payout.objects.get(external_id=WITHDRAWAL)
    deposit = bank_line(usd_account, "82.47", booking_date=TODAY)

    # when
    payout = payout_reconcile(payout_id=payout.pk, line_id=deposit.pk, actor=clerk)

    # then: the refund is linked to billing's, and both conversions are joined
    assert PayoutItem.objects.get(balance_transaction_id=EUR_REFUND).refund_id == refund.pk
    entry = JournalEntry.objects.get(pk=payout.journal_entry_id)
    z = D(0)
    assert entry_lines_in(entry) == sorted(
        [
            (BANK, "USD", D("82.47"), z, D("82.47"), z),
            (CONVERSION, "USD", z, D("104.09"), z, D("104.09")),
            (CONVERSION, "USD", D("21.62"), z, D("21.62"), z),
            (FEES, "EUR", D("3.20"), z, D("3.488"), z),
            # the payment at 108.00 less the refund at 21.60
            (CLEARING, "EUR", z, D("80.00"), z, D("86.40")),
            (CONVERSION, "EUR", D("96.80"), z, D("104.09"), z),
            (CONVERSION, "EUR", z, D("20.00"), z, D("21.62")),
            (FX, "EUR", z, z, D("0.442"), z),
        ]
    )
    assert balance_in(CLEARING, "EUR") == (D(0), D(0))
    assert balance_in(CLEARING, "USD") == (D(0), D(0))
    assert balance_in(CONVERSION, "EUR") == (D("76.80"), D("82.47"))
    assert balance_in(CONVERSION, "USD") == (D("-82.47"), D("-82.47"))
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []
    assert ar_functional_check() == []

    # and undoing the match reverses it all
    match_undo(match_id=Match.objects.get(lines__line=deposit).pk, actor=clerk, reason="wrong")
    assert balance_in(CLEARING, "EUR") == (D("80.00"), D("86.4000"))
    assert balance_in(CONVERSION, "EUR") == (D(0), D(0))
    assert balance_in(FX, "EUR") == (D(0), D(0))


def test_a_conversion_out_of_a_kept_balance_counts_on_its_own_side() -> None:
    # given: EUR 100.00 received and kept; 50.00 of it converted into USD 53.77 and withdrawn
    rows = [
        transaction("8CAPK", "T0006", "100.00", "-3.20", at=at(4), currency="EUR"),
        transaction("2CNVEURK", "T0200", "-50.00", at=at(3), currency="EUR"),
        transaction("2CNVUSDK", "T0200", "53.77", at=at(3)),
        transaction("9WDK", "T0400", "-53.77", at=at(1)),
    ]
    txns = [paypal_settlements.transaction_from(r, n) for n, r in enumerate(rows)]

    # when
    (settlement,) = paypal_settlements.settlements_from(txns, arrival_from=SINCE, arrival_to=TODAY)

    # then: the legs are paired by their time, the EUR stays for a EUR withdrawal
    assert paypal_settlements.conversion_pairs(txns) == {
        "2CNVEURK": "2CNVUSDK",
        "2CNVUSDK": "2CNVEURK",
    }
    assert [(i.id, i.counterpart_id) for i in settlement.items] == [("2CNVUSDK", "2CNVEURK")]
    assert settlement.raw["conversions"] == {}
    assert settlement_check(settlement) == []


def test_converted_transactions_that_do_not_net_to_zero_are_an_exception() -> None:
    # given: a USD settlement with a EUR payment whose conversion is 1.00 short
    items = (
        SettlementItem("8C", "charge", D("100.00"), D("3.20"), D("96.80"), "EUR"),
        SettlementItem(
            "2E", "currency_conversion", D("-95.80"), D(0), D("-95.80"), "EUR", counterpart_id="2U"
        ),
        SettlementItem(
            "2U", "currency_conversion", D("103.01"), D(0), D("103.01"), "USD", counterpart_id="2E"
        ),
        SettlementItem("2X", "currency_conversion", D("-1.00"), D(0), D("-1.00"), "GBP"),
    )
    settlement = Settlement("paypal", "9W", D("103.01"), "USD", TODAY, "paid", items)

    # when
    problems = settlement_check(settlement)

    # then
    assert [p.code for p in problems] == [
        "conversion_unpaired",
        "conversion_mismatch",
        "conversion_mismatch",
    ]
    assert "its EUR transactions, converted into USD, net to 1.00 EUR" in problems[1].message
    assert settlement_totals(settlement).net == D("103.01")


# --- exceptions ------------------------------------------------------------------------------


def test_a_settlement_that_does_not_add_up_is_an_exception_with_its_difference(
    fake, paid, clerk, usd_account
) -> None:
    # given: PayPal withdrew 150.00, the transactions net to 152.42
    serve_report(fake, withdrawal="-150.00")

    # when
    result = import_(fake, clerk)

    # then
    payout = Payout.objects.get()
    assert result.exceptions == 1
    assert payout.status == PayoutStatus.EXCEPTION
    assert "net to 152.42 USD, the deposit is 150.00 USD" in payout.problem
    exc = ReconciliationException.objects.get()
    assert (exc.kind, exc.key, exc.payout_id) == (
        ExceptionKind.PAYOUT_MISMATCH,
        f"payout_mismatch:{WITHDRAWAL}",
        payout.pk,
    )
    assert (exc.amount, exc.difference, exc.currency) == (D("150.00"), D("2.42"), "USD")
    # and it cannot be reconciled: nothing posted
    entries = JournalEntry.objects.count()
    line = bank_line(usd_account, "150.00", booking_date=TODAY)
    with pytest.raises(PayoutConflict) as refused:
        payout_reconcile(payout_id=payout.pk, line_id=line.pk, actor=clerk)
    assert refused.value.code == "payout_exception"
    assert JournalEntry.objects.count() == entries


def test_an_unknown_transaction_type_is_an_exception_not_silence(fake, paid, clerk) -> None:
    # given: a 5.00 bank deposit into PayPal (T0300) that no category accounts for
    serve_report(
        fake,
        withdrawal="-157.42",
        extra=(transaction("3DEP0000000000001", "T0300", "5.00", at=at(2, 14)),),
    )

    # when
    import_(fake, clerk)

    # then: it adds up, but the unknown transaction makes the settlement an exception
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.EXCEPTION
    assert "3DEP0000000000001" in payout.problem
    assert "type this reconciliation does not know" in payout.problem
    assert ReconciliationException.objects.get().payout_id == payout.pk


def test_a_capture_billing_never_recorded_is_an_exception_until_it_is(
    fake, paid, clerk, customer, django_capture_on_commit_callbacks
) -> None:
    # given: a 10.00 capture (fee 0.79) of which billing knows nothing yet
    serve_report(
        fake,
        withdrawal="-161.63",
        extra=(transaction("8CAPZ999", "T0006", "10.00", "-0.79", at=at(2, 15)),),
    )
    import_(fake, clerk)
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.EXCEPTION
    assert "payment 8CAPZ999, which matches no payment recorded in billing" in payout.problem

    # when billing records it and the same period is imported again
    inv = invoice(clerk, customer, "10.00", django_capture_on_commit_callbacks)
    processor_payment(customer, inv, processor="paypal", charge_id="8CAPZ999", method="credit_card")
    again = import_(fake, clerk)

    # then the settlement adds up and links, the exception is resolved
    payout.refresh_from_db()
    assert again.updated == 1
    assert (payout.status, payout.problem) == (PayoutStatus.IMPORTED, "")
    assert ReconciliationException.objects.get().status == "resolved"
    assert PayoutItem.objects.get(balance_transaction_id="8CAPZ999").payment is not None


def test_a_refund_billing_has_not_recorded_is_an_exception(fake, paid, clerk) -> None:
    # given: a second refund, of 5.00, PayPal made but billing never recorded
    serve_report(
        fake,
        withdrawal="-147.42",
        extra=(
            transaction(
                "7REF00000000002", "T1107", "-5.00", at=at(2, 16), reference="8CAP00000000002"
            ),
        ),
    )

    # when
    import_(fake, clerk)

    # then
    payout = Payout.objects.get()
    assert payout.status == PayoutStatus.EXCEPTION
    assert "refund 7REF00000000002 of 5.00 USD is not recorded in billing" in payout.problem


# --- imported once, all or nothing --------------------------------------------------------------


def test_importing_the_same_period_again_changes_nothing(fake, paid, clerk) -> None:
    # given
    serve_report(fake)
    import_(fake, clerk)
    before = list(Payout.objects.values())
    items_before = list(PayoutItem.objects.values())

    # when
    again = import_(fake, clerk)

    # then
    assert (again.fetched, again.created, again.updated, again.unchanged) == (1, 0, 0, 1)
    assert list(Payout.objects.values()) == before
    assert list(PayoutItem.objects.values()) == items_before


def test_a_partial_report_is_refused_whole(fake, paid, clerk, monkeypatch) -> None:
    # given: three rows a page, and page 2 comes back one row short
    monkeypatch.setattr(paypal_settlements, "PAGE_SIZE", 3)
    serve_report(fake)
    fake.short_page[2] = 1
    audits = AuditEvent.objects.count()

    # when
    with pytest.raises(FeedError) as refused:
        import_(fake, clerk)

    # then: nothing stored
    assert refused.value.code == "bad_response"
    assert "the report says" in refused.value.message
    assert Payout.objects.count() == 0
    assert ReconciliationException.objects.count() == 0
    assert AuditEvent.objects.count() == audits
    pages = [r.query["page"] for r in fake.requests if r.path == "/v1/reporting/transactions"]
    assert "2" in pages


def test_a_malformed_row_refuses_the_whole_report(fake, paid, clerk) -> None:
    # given: one fee written as a JSON number instead of PayPal's decimal string
    serve_report(fake)
    fake.rows[3]["transaction_info"]["fee_amount"]["value"] = D("-1.36")

    # when
    with pytest.raises(FeedError) as refused:
        import_(fake, clerk)

    # then
    assert refused.value.code == "bad_response"
    assert "8CAP00000000002" in refused.value.message
    assert Payout.objects.count() == 0


def test_paypal_failing_stores_nothing(fake, paid, clerk) -> None:
    # given
    serve_report(fake)
    fake.queue_error("server_error")

    # when
    with pytest.raises(FeedError) as refused:
        import_(fake, clerk)

    # then
    assert (refused.value.code, refused.value.retryable) == ("provider_unavailable", True)
    assert Payout.objects.count() == 0


def test_requests_follow_the_documented_api(fake, paid, clerk) -> None:
    # given
    serve_report(fake)

    # when
    import_(fake, clerk)

    # then: a client-credentials token, then windows of at most 31 days with fields=all
    token, *reports = fake.requests
    assert (token.method, token.path, token.body) == (
        "POST",
        "/v1/oauth2/token",
        {"grant_type": "client_credentials"},
    )
    assert reports
    assert all(r.path == "/v1/reporting/transactions" for r in reports)
    for r in reports:
        assert (r.query["fields"], r.query["page"]) == ("all", "1")
        start = dt.datetime.fromisoformat(r.query["start_date"])
        end = dt.datetime.fromisoformat(r.query["end_date"])
        assert end - start <= dt.timedelta(days=31)
    assert min(r.query["start_date"] for r in reports) == (
        f"{SINCE - dt.timedelta(days=31)}T00:00:00Z"
    )


# --- matching, API, permissions -----------------------------------------------------------------


def test_the_engine_proposes_and_applies_a_paypal_deposit(fake, paid, clerk, usd_account) -> None:
    # given
    serve_report(fake)
    import_(fake, clerk)
    deposit = bank_line(
        usd_account, "152.42", booking_date=TODAY, description=f"PAYPAL {WITHDRAWAL}"
    )

    # when
    result = reconcile(bank_account_id=usd_account.pk)

    # then
    assert result.auto_matched == 1
    match = Match.objects.get()
    assert (match.rule, match.status) == ("payout", MatchStatus.APPLIED)
    assert f"PayPal settlement {WITHDRAWAL}" in match.reason
    assert Payout.objects.get().statement_line_id == deposit.pk
    assert balance(AccountRole.PROCESSOR_CLEARING) == D(0)


def test_import_needs_the_permission(fake, make_user) -> None:
    with pytest.raises(PermissionDeniedError):
        import_(fake, make_user(Role.AUDITOR))
    assert fake.requests == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [(Role.AUDITOR, 403), (Role.APPROVER, 403), (Role.AR_CLERK, 200), (Role.CONTROLLER, 200)],
)
def test_api_import_permissions(paypal_settings, fake, client_for, role, expected) -> None:
    response = client_for(role).post("/api/reconciliation/payouts/import/paypal", {})
    assert response.status_code == expected


def test_api_lists_paypal_settlements_and_imports(paypal_settings, fake, paid, client_for) -> None:
    # given
    serve_report(fake)
    clerk_client = client_for(Role.AR_CLERK)

    # when
    imported = clerk_client.post(
        "/api/reconciliation/payouts/import/paypal",
        {"since": SINCE.isoformat(), "until": TODAY.isoformat()},
        format="json",
    )
    listed = client_for(Role.AUDITOR).get("/api/reconciliation/payouts?provider=paypal")
    none = client_for(Role.AUDITOR).get("/api/reconciliation/payouts?provider=stripe")
    bad = client_for(Role.AUDITOR).get("/api/reconciliation/payouts?provider=venmo")
    backwards = clerk_client.post(
        "/api/reconciliation/payouts/import/paypal",
        {"since": TODAY.isoformat(), "until": SINCE.isoformat()},
        format="json",
    )
    fake.queue_error("server_error")
    failed = clerk_client.post("/api/reconciliation/payouts/import/paypal", {}, format="json")

    # then
    assert imported.status_code == 200
    assert imported.json() == {
        "fetched": 1, "created": 1, "updated": 0, "unchanged": 0, "exceptions": 0
    }  # fmt: skip
    (row,) = listed.json()["results"]
    assert (row["provider"], row["external_id"], row["amount"], row["fees"]) == (
        "paypal",
        WITHDRAWAL,
        "152.42",
        "7.58",
    )
    assert none.json()["results"] == []
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    assert (backwards.status_code, backwards.json()["code"]) == (400, "invalid")
    assert (failed.status_code, failed.json()["code"]) == (502, "provider_unavailable")
    detail = client_for(Role.AUDITOR).get(f"/api/reconciliation/payouts/{row['id']}")
    assert {i["balance_transaction_id"]: i["payment"] for i in detail.json()["items"]} == {
        "7REF00000000001": paid["payments"][0].pk,
        "8CAP00000000001": paid["payments"][0].pk,
        "8CAP00000000002": paid["payments"][1].pk,
        "8CAP00000000003": paid["payments"][2].pk,
    }


def test_admin_imports_from_paypal(paypal_settings, fake, paid, finance_admin) -> None:
    # given
    serve_report(fake)
    client = verified_client(finance_admin)

    # when
    get = client.get("/admin/reconciliation/payout/import-paypal/")
    response = client.post("/admin/reconciliation/payout/import-paypal/")
    listed = client.get("/admin/reconciliation/payout/?provider__exact=paypal")

    # then: the default period is the last two weeks, which holds both withdrawals; the
    # earlier one swept a payment billing never recorded
    assert get.status_code == 405
    assert response.status_code == 302
    assert set(Payout.objects.values_list("provider", "external_id", "status")) == {
        ("paypal", WITHDRAWAL, PayoutStatus.IMPORTED),
        ("paypal", "9WD00000000000001", PayoutStatus.EXCEPTION),
    }
    assert listed.status_code == 200
    assert WITHDRAWAL in listed.content.decode()
