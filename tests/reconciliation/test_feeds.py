"""Bank feed clients against local HTTP fakes: Plaid /transactions/sync and balances, Yodlee."""

from __future__ import annotations

import datetime as dt
import pickle
import socket
from collections.abc import Iterator
from decimal import Decimal

import pytest

from reconciliation.feeds import FeedError, FeedErrorCode, FeedTransaction, RetryPolicy
from reconciliation.feeds.plaid import PlaidConfig, plaid_balance_get, plaid_transactions_sync
from reconciliation.feeds.types import FeedAccount, RemovedTransaction
from reconciliation.feeds.yodlee import (
    YodleeConfig,
    yodlee_accounts_list,
    yodlee_token_get,
    yodlee_transactions_list,
)
from reconciliation.importers.fingerprint import line_fingerprints
from tests.reconciliation.fakes import plaid_server, yodlee_server
from tests.reconciliation.fakes.plaid_server import (
    ACCESS_TOKEN,
    ACCOUNT_ID,
    FakePlaid,
    plaid_account,
    plaid_transaction,
    running_fake_plaid,
)
from tests.reconciliation.fakes.yodlee_server import (
    FakeYodlee,
    running_fake_yodlee,
    yodlee_account,
    yodlee_transaction,
)

RETRY = RetryPolicy(attempts=4, base_seconds=0.5, max_seconds=8.0, max_restarts=3)


@pytest.fixture
def plaid() -> Iterator[FakePlaid]:
    with running_fake_plaid() as fake:
        yield fake


@pytest.fixture
def yodlee() -> Iterator[FakeYodlee]:
    with running_fake_yodlee() as fake:
        yield fake


def plaid_config(fake: FakePlaid, **overrides) -> PlaidConfig:
    values = {
        "host": fake.url,
        "client_id": plaid_server.CLIENT_ID,
        "secret": plaid_server.SECRET,
        "timeout_seconds": 5.0,
        "retry": RETRY,
        **overrides,
    }
    return PlaidConfig(**values)


def five_transactions() -> list[dict]:
    return [
        plaid_transaction(
            "tx-1",
            "12.30",
            "2026-11-02",
            "STARBUCKS 1523",
            merchant_name="Starbucks",
            authorized_date="2026-11-01",
        ),
        plaid_transaction("tx-2", "-2500.00", "2026-11-03", "ACME CORP PAYMENT INV-2026-0042"),
        plaid_transaction("tx-3", "89.99", "2026-11-04", "AMAZON MKTPLACE", pending=True),
        plaid_transaction("tx-4", "0.00", "2026-11-05", "CARD VERIFICATION"),
        plaid_transaction("tx-5", "1.05", "2026-11-06", "MONTHLY FEE"),
    ]


# --- Plaid /transactions/sync -------------------------------------------------------------


def test_sync_pages_through_has_more_and_returns_the_final_cursor(plaid):
    # given five transactions and pages of two
    plaid.add(*five_transactions())
    sleeps: list[float] = []

    # when
    result = plaid_transactions_sync(
        config=plaid_config(plaid), access_token=ACCESS_TOKEN, count=2, sleep=sleeps.append
    )

    # then three pages were pulled and the cursor is the one after the last page
    assert result.pages == 3
    assert result.start_cursor == ""
    assert result.next_cursor == plaid.cursor_now
    assert [r.body.get("cursor", "") for r in plaid.sync_requests()] == [
        "",
        "CAESJ0ZAKE000002",
        "CAESJ0ZAKE000004",
    ]
    assert [r.body["count"] for r in plaid.sync_requests()] == [2, 2, 2]
    assert [t.transaction_id for t in result.added] == ["tx-1", "tx-2", "tx-3", "tx-4", "tx-5"]
    assert result.modified == ()
    assert result.removed == ()
    assert result.restarts == 0
    assert result.update_status == "HISTORICAL_UPDATE_COMPLETE"
    assert sleeps == []


def test_sync_flips_plaid_signs_and_maps_the_fields(plaid):
    # given
    plaid.add(*five_transactions())

    # when
    added = plaid_transactions_sync(config=plaid_config(plaid), access_token=ACCESS_TOKEN).added

    # then Plaid's positive (money out) is negative here, and nothing went through float
    assert added[0] == FeedTransaction(
        provider="plaid",
        transaction_id="tx-1",
        account_id=ACCOUNT_ID,
        booking_date=dt.date(2026, 11, 2),
        authorized_date=dt.date(2026, 11, 1),
        amount=Decimal("-12.30"),
        currency="USD",
        pending=False,
        counterparty_name="Starbucks",
        description="STARBUCKS 1523",
        category="GENERAL_MERCHANDISE",
    )
    assert str(added[0].amount) == "-12.30"
    assert added[1].amount == Decimal("2500.00")
    assert added[1].counterparty_name == "ACME CORP PAYMENT INV-2026-0042"
    assert added[1].authorized_date is None
    assert added[2].pending is True
    # a zero stays a plain zero, not -0.00 (which would change its fingerprint)
    assert str(added[3].amount) == "0.00"


def test_unofficial_currency_code_is_used_when_there_is_no_iso_code(plaid):
    # given
    plaid.add(
        plaid_transaction(
            "tx-btc",
            "0.00120000",
            "2026-11-07",
            "COINBASE",
            iso_currency_code=None,
            unofficial_currency_code="BTC",
        )
    )

    # when
    (tx,) = plaid_transactions_sync(config=plaid_config(plaid), access_token=ACCESS_TOKEN).added

    # then
    assert (tx.currency, tx.amount) == ("BTC", Decimal("-0.00120000"))


def test_plaid_sync_resumes_from_its_cursor(plaid):
    # given a first sync whose cursor was saved
    plaid.add(*five_transactions())
    config = plaid_config(plaid)
    first = plaid_transactions_sync(config=config, access_token=ACCESS_TOKEN, count=2)
    # and, later, one new transaction, one pending that posted and one removal
    plaid.add(plaid_transaction("tx-6", "42.00", "2026-11-08", "UBER TRIP"))
    plaid.modify(plaid_transaction("tx-5", "1.50", "2026-11-06", "MONTHLY FEE"))
    plaid.remove("tx-4")

    # when the next sync starts from the saved cursor
    second = plaid_transactions_sync(
        config=config, access_token=ACCESS_TOKEN, cursor=first.next_cursor
    )

    # then it returns only what is new since then
    assert second.start_cursor == first.next_cursor
    assert [t.transaction_id for t in second.added] == ["tx-6"]
    assert [(t.transaction_id, t.amount) for t in second.modified] == [("tx-5", Decimal("-1.50"))]
    assert second.removed == (RemovedTransaction("tx-4", ACCOUNT_ID),)
    assert second.next_cursor == plaid.cursor_now
    assert plaid.sync_requests()[-1].body["cursor"] == first.next_cursor

    # and a third sync from the newest cursor has nothing and keeps the cursor
    third = plaid_transactions_sync(
        config=config, access_token=ACCESS_TOKEN, cursor=second.next_cursor
    )
    assert (third.added, third.modified, third.removed) == ((), (), ())
    assert third.next_cursor == second.next_cursor


def test_mutation_during_pagination_restarts_from_the_first_cursor(plaid):
    # given four transactions paged two by two, and data that changes while we page
    plaid.add(*five_transactions()[:4])
    plaid.arm_mutation(
        lambda fake: fake.add(plaid_transaction("tx-late", "7.00", "2026-11-09", "LATE"))
    )
    sleeps: list[float] = []

    # when
    result = plaid_transactions_sync(
        config=plaid_config(plaid), access_token=ACCESS_TOKEN, count=2, sleep=sleeps.append
    )

    # then the sync dropped what it had, started again from "" and returned each change once
    assert [r.body.get("cursor", "") for r in plaid.sync_requests()] == [
        "",
        "CAESJ0ZAKE000002",
        "",
        "CAESJ0ZAKE000002",
        "CAESJ0ZAKE000004",
    ]
    assert [t.transaction_id for t in result.added] == ["tx-1", "tx-2", "tx-3", "tx-4", "tx-late"]
    assert result.restarts == 1
    assert result.pages == 3
    assert result.next_cursor == "CAESJ0ZAKE000005"
    assert sleeps == [0.5]


def test_mutation_during_pagination_gives_up_after_the_restart_limit(plaid):
    # given data that keeps changing
    plaid.add(*five_transactions())
    for n in range(3):
        plaid.arm_mutation(
            lambda fake, n=n: fake.add(plaid_transaction(f"tx-m{n}", "1.00", "2026-11-09", "M"))
        )
    config = plaid_config(plaid, retry=RetryPolicy(max_restarts=2))

    # when
    with pytest.raises(FeedError) as caught:
        plaid_transactions_sync(
            config=config, access_token=ACCESS_TOKEN, count=2, sleep=lambda s: None
        )

    # then
    assert caught.value.feed_code is FeedErrorCode.MUTATION_DURING_PAGINATION
    assert caught.value.code == "mutation_during_pagination"
    assert caught.value.retryable is True
    assert caught.value.provider_code == "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"
    assert len(plaid.sync_requests()) == 6


@pytest.mark.parametrize(
    ("kind", "code", "retryable", "http_status"),
    [
        ("login_required", FeedErrorCode.LOGIN_REQUIRED, False, 400),
        ("institution_down", FeedErrorCode.INSTITUTION_UNAVAILABLE, True, 400),
        ("rate_limit", FeedErrorCode.RATE_LIMITED, True, 429),
        ("server_error", FeedErrorCode.PROVIDER_UNAVAILABLE, True, 500),
        ("maintenance", FeedErrorCode.PROVIDER_UNAVAILABLE, True, 503),
    ],
)
def test_plaid_errors_map_to_one_feed_error(plaid, kind, code, retryable, http_status):
    # given an error on every attempt
    plaid.add(*five_transactions())
    plaid.queue_error(*[kind] * RETRY.attempts)
    sleeps: list[float] = []

    # when
    with pytest.raises(FeedError) as caught:
        plaid_transactions_sync(
            config=plaid_config(plaid), access_token=ACCESS_TOKEN, sleep=sleeps.append
        )

    # then
    error = caught.value
    assert (error.feed_code, error.retryable, error.http_status) == (code, retryable, http_status)
    assert error.provider == "plaid"
    assert error.provider_code == plaid_server.ERRORS[kind][2]
    assert error.message.startswith(f"Plaid {plaid_server.ERRORS[kind][2]}: ")
    assert error.request_id in error.message
    # transient errors were retried with a bounded backoff, permanent ones were not
    assert sleeps == ([0.5, 1.0, 2.0] if retryable else [])
    assert len(plaid.sync_requests()) == (RETRY.attempts if retryable else 1)


def test_a_feed_error_survives_pickling():
    # given
    error = FeedError(
        "Plaid ITEM_LOGIN_REQUIRED: log in again (HTTP 400, request r-1)",
        code=FeedErrorCode.LOGIN_REQUIRED,
        provider="plaid",
        provider_code="ITEM_LOGIN_REQUIRED",
        http_status=400,
        request_id="r-1",
    )

    # when
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)

    # then
    assert (copy.code, copy.feed_code, copy.provider_code, copy.http_status, copy.message) == (
        "login_required",
        FeedErrorCode.LOGIN_REQUIRED,
        "ITEM_LOGIN_REQUIRED",
        400,
        error.message,
    )


def test_a_transient_error_is_retried_and_the_sync_completes(plaid):
    # given one 500 and one 429 on the way
    plaid.add(*five_transactions())
    plaid.queue_error("server_error", "rate_limit")
    sleeps: list[float] = []

    # when
    result = plaid_transactions_sync(
        config=plaid_config(plaid), access_token=ACCESS_TOKEN, sleep=sleeps.append
    )

    # then
    assert len(result.added) == 5
    assert sleeps == [0.5, 1.0]


def test_an_invalid_access_token_is_refused_without_retry(plaid):
    # given / when
    with pytest.raises(FeedError) as caught:
        plaid_transactions_sync(config=plaid_config(plaid), access_token="access-sandbox-wrong")

    # then
    assert caught.value.feed_code is FeedErrorCode.INVALID_ACCESS_TOKEN
    assert caught.value.retryable is False
    assert "INVALID_ACCESS_TOKEN" in caught.value.message
    assert len(plaid.sync_requests()) == 1


def test_invalid_api_keys_are_refused(plaid):
    # given / when
    with pytest.raises(FeedError) as caught:
        plaid_transactions_sync(
            config=plaid_config(plaid, secret="not-the-secret"), access_token=ACCESS_TOKEN
        )

    # then the SDK sent our keys in its headers, and they were refused
    assert caught.value.feed_code is FeedErrorCode.INVALID_CREDENTIALS
    request = plaid.sync_requests()[0]
    assert request.headers["plaid-client-id"] == plaid_server.CLIENT_ID
    assert request.headers["plaid-version"] == "2020-09-14"


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_plaid_is_provider_unavailable():
    # given nothing listening
    config = PlaidConfig(
        host=f"http://127.0.0.1:{unused_port()}",
        client_id="x",
        secret="y",
        timeout_seconds=2.0,
        retry=RetryPolicy(attempts=2),
    )
    sleeps: list[float] = []

    # when
    with pytest.raises(FeedError) as caught:
        plaid_transactions_sync(config=config, access_token=ACCESS_TOKEN, sleep=sleeps.append)

    # then
    assert caught.value.feed_code is FeedErrorCode.PROVIDER_UNAVAILABLE
    assert "could not be reached" in caught.value.message
    assert sleeps == [0.5]


def test_feed_transactions_fingerprint_like_statement_lines(plaid):
    # given the same history synced twice from scratch
    plaid.add(*five_transactions())
    config = plaid_config(plaid)
    first = plaid_transactions_sync(config=config, access_token=ACCESS_TOKEN).added
    again = plaid_transactions_sync(config=config, access_token=ACCESS_TOKEN).added

    # when
    lines = [t.to_parsed_line() for t in first]

    # then a feed transaction is a statement line keyed by its Plaid id
    assert lines[0].bank_reference == "tx-1"
    assert lines[0].source == "plaid:tx-1"
    assert lines[0].amount == Decimal("-12.30")
    assert line_fingerprints(lines) == line_fingerprints(t.to_parsed_line() for t in again)


def test_plaid_balance_get(plaid):
    # given
    plaid.accounts = [
        plaid_account("1250.55", "1100.00"),
        plaid_account(
            "410.20",
            None,
            account_id="acc-credit",
            name="Plaid Credit Card",
            type_="credit",
            subtype="credit card",
        ),
    ]

    # when
    accounts = plaid_balance_get(config=plaid_config(plaid), access_token=ACCESS_TOKEN)

    # then
    assert accounts == [
        FeedAccount(
            provider="plaid",
            account_id=ACCOUNT_ID,
            name="Plaid Checking Account",
            currency="USD",
            current_balance=Decimal("1250.55"),
            available_balance=Decimal("1100.00"),
            mask="0000",
            type="depository",
            subtype="checking",
        ),
        FeedAccount(
            provider="plaid",
            account_id="acc-credit",
            name="Plaid Credit Card Account",
            currency="USD",
            current_balance=Decimal("410.20"),
            available_balance=None,
            mask="0000",
            type="credit",
            subtype="credit card",
        ),
    ]
    assert plaid.requests[-1].path == "/accounts/balance/get"


# --- Yodlee -------------------------------------------------------------------------------


def yodlee_config(fake: FakeYodlee) -> YodleeConfig:
    return YodleeConfig(base_url=fake.url, timeout_seconds=5.0, retry=RETRY)


def seven_yodlee_transactions() -> list[dict]:
    return [
        yodlee_transaction(
            101,
            "45.67",
            "DEBIT",
            "2026-11-01",
            "STARBUCKS STORE 12345",
            merchant="Starbucks",
            transaction_date="2026-10-31",
        ),
        yodlee_transaction(102, "2500.00", "CREDIT", "2026-11-02", "ACME CORP INV-2026-0042"),
        yodlee_transaction(103, "120.00", "DEBIT", "2026-11-03", "ELECTRIC SERVICE PAYMENT"),
        yodlee_transaction(104, "9.99", "DEBIT", "2026-11-04", "SPOTIFY", status="PENDING"),
        yodlee_transaction(105, "300.00", "CREDIT", "2026-11-05", "REFUND OFFICE CHAIR"),
        yodlee_transaction(106, "15.00", "DEBIT", "2026-11-06", "BANK FEE"),
        yodlee_transaction(107, "0.10", "CREDIT", "2026-11-07", "INTEREST"),
    ]


def test_yodlee_token_uses_the_documented_headers(yodlee):
    # given / when
    token = yodlee_token_get(
        config=yodlee_config(yodlee),
        client_id=yodlee_server.CLIENT_ID,
        secret=yodlee_server.SECRET,
        login_name=yodlee_server.LOGIN_NAME,
    )

    # then
    assert (token.access_token, token.expires_in_seconds) == (yodlee_server.ACCESS_TOKEN, 1800)
    request = yodlee.requests[0]
    assert (request.method, request.path) == ("POST", "/auth/token")
    assert request.headers["api-version"] == "1.1"
    assert request.headers["loginname"] == yodlee_server.LOGIN_NAME
    assert request.body == {"clientId": yodlee_server.CLIENT_ID, "secret": yodlee_server.SECRET}


def test_yodlee_pages_with_skip_and_top_and_signs_by_base_type(yodlee):
    # given seven transactions, one outside the period
    yodlee.transactions = [
        *seven_yodlee_transactions(),
        yodlee_transaction(99, "1.00", "DEBIT", "2026-10-15", "OUTSIDE"),
    ]

    # when
    found = yodlee_transactions_list(
        config=yodlee_config(yodlee),
        access_token=yodlee_server.ACCESS_TOKEN,
        from_date=dt.date(2026, 11, 1),
        to_date=dt.date(2026, 11, 30),
        top=3,
    )

    # then three pages: 3 + 3 + 1
    requests = yodlee.transaction_requests()
    assert [(r.query["skip"], r.query["top"]) for r in requests] == [
        ("0", "3"),
        ("3", "3"),
        ("6", "3"),
    ]
    assert {(r.query["fromDate"], r.query["toDate"]) for r in requests} == {
        ("2026-11-01", "2026-11-30")
    }
    assert {r.headers["authorization"] for r in requests} == {
        f"Bearer {yodlee_server.ACCESS_TOKEN}"
    }
    assert {r.headers["api-version"] for r in requests} == {"1.1"}
    by_id = {t.transaction_id: t for t in found}
    assert sorted(by_id) == ["101", "102", "103", "104", "105", "106", "107"]
    assert {k: t.amount for k, t in by_id.items()} == {
        "101": Decimal("-45.67"),
        "102": Decimal("2500.00"),
        "103": Decimal("-120.00"),
        "104": Decimal("-9.99"),
        "105": Decimal("300.00"),
        "106": Decimal("-15.00"),
        "107": Decimal("0.10"),
    }
    assert by_id["101"] == FeedTransaction(
        provider="yodlee",
        transaction_id="101",
        account_id=str(yodlee_server.ACCOUNT_ID),
        booking_date=dt.date(2026, 11, 1),
        authorized_date=dt.date(2026, 10, 31),
        amount=Decimal("-45.67"),
        currency="USD",
        pending=False,
        counterparty_name="Starbucks",
        description="STARBUCKS STORE 12345",
        category="Uncategorized",
    )
    assert by_id["104"].pending is True


def test_yodlee_paging_stops_on_the_empty_answer_after_a_full_page(yodlee):
    # given exactly two full pages
    yodlee.transactions = seven_yodlee_transactions()[:6]

    # when
    found = yodlee_transactions_list(
        config=yodlee_config(yodlee),
        access_token=yodlee_server.ACCESS_TOKEN,
        from_date=dt.date(2026, 11, 1),
        to_date=dt.date(2026, 11, 30),
        top=3,
    )

    # then the third page was {} (Yodlee's "nothing"), and nothing is duplicated
    assert [r.query["skip"] for r in yodlee.transaction_requests()] == ["0", "3", "6"]
    assert len(found) == 6


def test_yodlee_invalid_token_is_invalid_credentials(yodlee):
    # given / when
    with pytest.raises(FeedError) as caught:
        yodlee_transactions_list(
            config=yodlee_config(yodlee),
            access_token="expired",
            from_date=dt.date(2026, 11, 1),
            to_date=dt.date(2026, 11, 30),
        )

    # then
    error = caught.value
    assert (error.feed_code, error.provider_code, error.http_status) == (
        FeedErrorCode.INVALID_CREDENTIALS,
        "Y008",
        401,
    )
    assert error.message == "Yodlee Y008: Invalid token (HTTP 401, reference ref-0001)"
    assert len(yodlee.requests) == 1


def test_yodlee_rate_limit_honours_retry_after_then_succeeds(yodlee):
    # given
    yodlee.transactions = seven_yodlee_transactions()
    yodlee.queue_error("rate_limit")
    sleeps: list[float] = []

    # when
    found = yodlee_transactions_list(
        config=yodlee_config(yodlee),
        access_token=yodlee_server.ACCESS_TOKEN,
        from_date=dt.date(2026, 11, 1),
        to_date=dt.date(2026, 11, 30),
        sleep=sleeps.append,
    )

    # then the Retry-After of 3 s was waited, and the sync completed
    assert sleeps == [3.0]
    assert len(found) == 7


def test_yodlee_server_errors_give_up_after_the_bounded_retries(yodlee):
    # given
    yodlee.queue_error(*["server_error"] * 4)
    sleeps: list[float] = []

    # when
    with pytest.raises(FeedError) as caught:
        yodlee_accounts_list(
            config=yodlee_config(yodlee),
            access_token=yodlee_server.ACCESS_TOKEN,
            sleep=sleeps.append,
        )

    # then
    assert caught.value.feed_code is FeedErrorCode.PROVIDER_UNAVAILABLE
    assert caught.value.provider_code == "Y902"
    assert sleeps == [0.5, 1.0, 2.0]


def test_yodlee_accounts(yodlee):
    # given
    yodlee.accounts = [yodlee_account("20000.15")]

    # when
    (account,) = yodlee_accounts_list(
        config=yodlee_config(yodlee), access_token=yodlee_server.ACCESS_TOKEN
    )

    # then
    assert account == FeedAccount(
        provider="yodlee",
        account_id=str(yodlee_server.ACCOUNT_ID),
        name="TESTDATA",
        currency="USD",
        current_balance=Decimal("20000.15"),
        available_balance=Decimal("20000.15"),
        mask="xxxx3xxx",
        type="bank",
        subtype="SAVINGS",
        institution="Dag Site",
        status="ACTIVE",
    )


def test_yodlee_unknown_base_type_is_a_bad_response(yodlee):
    # given
    row = yodlee_transaction(201, "5.00", "DEBIT", "2026-11-01", "ODD")
    row["baseType"] = "OTHER"
    yodlee.transactions = [row]

    # when
    with pytest.raises(FeedError) as caught:
        yodlee_transactions_list(
            config=yodlee_config(yodlee),
            access_token=yodlee_server.ACCESS_TOKEN,
            from_date=dt.date(2026, 11, 1),
            to_date=dt.date(2026, 11, 30),
        )

    # then
    assert caught.value.feed_code is FeedErrorCode.BAD_RESPONSE
    assert "transaction 201 baseType is 'OTHER'" in caught.value.message
