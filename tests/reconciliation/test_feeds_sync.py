"""Bank feeds wired to the models: Plaid and Yodlee syncs against local HTTP fakes, the
scheduled task, the API and the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from core.roles import Role
from reconciliation import services_feeds
from reconciliation.enums import (
    AuditAction,
    ExceptionKind,
    FeedStatus,
    FeedSyncResult,
    StatementFormatChoice,
    StatementLineStatus,
)
from reconciliation.models import (
    AuditEvent,
    BankFeed,
    FeedSync,
    ReconciliationException,
    ReconciliationRun,
    Statement,
    StatementLine,
)
from reconciliation.services import csv_mapping_save, statement_import
from reconciliation.services_feeds import bank_feed_create, bank_feed_update, feed_sync
from reconciliation.tasks_feeds import feed_sync_task, feeds_sync_task
from tests.conftest import verified_client
from tests.reconciliation.fakes import plaid_server, yodlee_server
from tests.reconciliation.fakes.plaid_server import FakePlaid, plaid_transaction, running_fake_plaid
from tests.reconciliation.fakes.yodlee_server import (
    FakeYodlee,
    running_fake_yodlee,
    yodlee_transaction,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def plaid(settings) -> Iterator[FakePlaid]:
    with running_fake_plaid() as fake:
        settings.PLAID_API_BASE = fake.url
        settings.PLAID_CLIENT_ID = plaid_server.CLIENT_ID
        settings.PLAID_SECRET = plaid_server.SECRET
        yield fake


@pytest.fixture
def yodlee(settings) -> Iterator[FakeYodlee]:
    with running_fake_yodlee() as fake:
        settings.YODLEE_API_BASE = fake.url
        settings.YODLEE_CLIENT_ID = yodlee_server.CLIENT_ID
        settings.YODLEE_SECRET = yodlee_server.SECRET
        yield fake


@pytest.fixture
def usd_account(make_bank_account):
    return make_bank_account("USD", name="Checking")


@pytest.fixture
def plaid_feed(finance_admin, usd_account) -> BankFeed:
    return bank_feed_create(
        actor=finance_admin,
        bank_account_id=usd_account.pk,
        provider="plaid",
        external_account_id=plaid_server.ACCOUNT_ID,
        access_token=plaid_server.ACCESS_TOKEN,
    )


def make_yodlee_feed(actor, account) -> BankFeed:
    return bank_feed_create(
        actor=actor,
        bank_account_id=account.pk,
        provider="yodlee",
        external_account_id=str(yodlee_server.ACCOUNT_ID),
        access_token=yodlee_server.LOGIN_NAME,
    )


def lines_of(feed: BankFeed) -> list[tuple[str, Decimal, str]]:
    return [
        (line.source, line.amount, line.status)
        for line in StatementLine.objects.filter(bank_account_id=feed.bank_account_id).order_by(
            "booking_date", "pk"
        )
    ]


def coffee(tid: str = "tx-1", amount: str = "12.30", date: str = "2026-11-02", **kw) -> dict:
    return plaid_transaction(tid, amount, date, "STARBUCKS 1523", merchant_name="Starbucks", **kw)


def acme(tid: str = "tx-2") -> dict:
    return plaid_transaction(tid, "-2500.00", "2026-11-03", "ACME CORP PAYMENT INV-2026-0042")


# ---------------------------------------------------------------- Plaid


def test_plaid_sync_resumes_from_its_cursor(plaid, plaid_feed, finance_admin):
    # given: a first sync brought two transactions
    plaid.add(coffee(), acme())
    first = feed_sync(feed_id=plaid_feed.pk, actor=finance_admin)
    plaid_feed.refresh_from_db()
    stored_cursor = plaid_feed.cursor
    plaid.add(plaid_transaction("tx-5", "1.05", "2026-11-06", "MONTHLY FEE"))

    # when
    second = feed_sync(feed_id=plaid_feed.pk, actor=finance_admin)

    # then: the second request sent the stored cursor and got only what is new
    assert (first.result, first.added, first.cursor_before) == (FeedSyncResult.OK, 2, "")
    assert stored_cursor == first.cursor_after == plaid_server._cursor(2)
    requests = plaid.sync_requests()
    assert "cursor" not in requests[0].body
    assert requests[1].body["cursor"] == stored_cursor
    assert requests[1].body["access_token"] == plaid_server.ACCESS_TOKEN
    assert requests[1].body["options"] == {"account_id": plaid_server.ACCOUNT_ID}
    assert (second.added, second.skipped, second.cursor_before) == (1, 0, stored_cursor)
    plaid_feed.refresh_from_db()
    assert plaid_feed.cursor == plaid.cursor_now == second.cursor_after
    assert plaid_feed.status == FeedStatus.ACTIVE
    assert plaid_feed.last_success_at is not None
    assert lines_of(plaid_feed) == [
        ("plaid:tx-1", Decimal("-12.3000"), StatementLineStatus.UNMATCHED),
        ("plaid:tx-2", Decimal("2500.0000"), StatementLineStatus.UNMATCHED),
        ("plaid:tx-5", Decimal("-1.0500"), StatementLineStatus.UNMATCHED),
    ]


def test_sync_stores_lines_as_a_feed_statement_and_starts_a_run(plaid, plaid_feed, finance_admin):
    # given
    plaid.add(coffee(authorized_date="2026-11-01"), acme())

    # when
    sync = feed_sync(feed_id=plaid_feed.pk, actor=finance_admin)

    # then
    statement = Statement.objects.get(pk=sync.statement_id)
    assert statement.format == StatementFormatChoice.FEED
    assert statement.control == "none"
    assert statement.currency == "USD"
    assert (statement.opening_date, statement.closing_date) == (
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 3),
    )
    assert (statement.line_count, statement.imported_by) == (2, finance_admin)
    line = statement.lines.get(position=1)
    assert line.description == "STARBUCKS 1523"
    assert line.counterparty_name == "Starbucks"
    assert line.bank_reference == "tx-1"
    assert line.value_date == dt.date(2026, 11, 1)
    assert ReconciliationRun.objects.filter(bank_account_id=plaid_feed.bank_account_id).count() == 1


def test_plaid_sync_with_several_pages(plaid, plaid_feed, monkeypatch):
    # given: five changes, two per page
    monkeypatch.setattr(services_feeds, "PLAID_PAGE_SIZE", 2)
    plaid.add(
        coffee("tx-1"),
        acme("tx-2"),
        coffee("tx-3", "4.10", "2026-11-04"),
        coffee("tx-4", "5.20", "2026-11-05"),
    )
    plaid.remove("tx-1")

    # when
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then: three requests, all pages applied (tx-1 came and went), the last cursor stored
    assert [r.body.get("count") for r in plaid.sync_requests()] == [2, 2, 2]
    assert (sync.added, sync.removed) == (3, 1)
    plaid_feed.refresh_from_db()
    assert plaid_feed.cursor == plaid_server._cursor(5)
    assert [source for source, _, _ in lines_of(plaid_feed)] == [
        "plaid:tx-2",
        "plaid:tx-3",
        "plaid:tx-4",
    ]
    assert sync.actor is None


def test_the_same_sync_retried_adds_nothing(plaid, plaid_feed, monkeypatch):
    # given: a sync that crashes after fetching, before its commit
    plaid.add(coffee(), acme())

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    with monkeypatch.context() as patch:
        patch.setattr(services_feeds, "_store_lines", crash)
        with pytest.raises(RuntimeError):
            feed_sync(feed_id=plaid_feed.pk)
    plaid_feed.refresh_from_db()
    assert (plaid_feed.cursor, StatementLine.objects.count(), FeedSync.objects.count()) == (
        "",
        0,
        0,
    )

    # when: the retry, then a redelivery of the same task
    first = feed_sync(feed_id=plaid_feed.pk)
    again = feed_sync_task.run(feed_id=str(plaid_feed.pk))
    # and a sync from the start of history (a lost cursor)
    BankFeed.objects.filter(pk=plaid_feed.pk).update(cursor="")
    replay = feed_sync(feed_id=plaid_feed.pk)

    # then: two lines, once
    assert first.added == 2
    assert again == {
        "feed": plaid_feed.pk,
        "sync": again["sync"],
        "result": "ok",
        "error_code": "",
        "added": 0,
    }
    assert (replay.added, replay.skipped, replay.statement_id) == (0, 2, None)
    assert StatementLine.objects.count() == 2
    assert Statement.objects.count() == 1


def test_pending_is_ignored_then_posted_once(plaid, plaid_feed):
    # given: a pending card payment
    plaid.add(coffee("tx-p", pending=True))
    pending = feed_sync(feed_id=plaid_feed.pk)
    assert (pending.added, pending.pending, StatementLine.objects.count()) == (0, 1, 0)

    # when: it posts (Plaid removes the pending one and adds the posted one naming it)
    plaid.remove("tx-p")
    plaid.add(coffee("tx-q", pending_transaction_id="tx-p"))
    posted = feed_sync(feed_id=plaid_feed.pk)
    again = feed_sync(feed_id=plaid_feed.pk)

    # then
    assert (posted.added, posted.removed, posted.pending) == (1, 0, 0)
    assert again.added == 0
    assert lines_of(plaid_feed) == [
        ("plaid:tx-q", Decimal("-12.3000"), StatementLineStatus.UNMATCHED)
    ]


def test_a_transaction_already_imported_from_a_statement_file_is_recognised(
    plaid, plaid_feed, finance_admin, usd_account
):
    # given: a CSV statement with the ACME payment and one coffee (of two that day)
    csv_mapping_save(
        actor=finance_admin,
        bank_account_id=usd_account.pk,
        config={"date": "Date", "amount": "Amount", "description": ["Text"]},
    )
    statement_import(
        actor=finance_admin,
        bank_account_id=usd_account.pk,
        data=(
            b"Date,Amount,Text\n"
            b"2026-11-03,2500.00,ACME CORP INV-2026-0042\n"
            b"2026-11-02,-12.30,CARD STARBUCKS\n"
        ),
        filename="november.csv",
        format="csv",
    )
    plaid.add(coffee("tx-1"), coffee("tx-1b"), acme("tx-2"), coffee("tx-9", date="2026-11-04"))

    # when
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then: the ACME payment and one coffee were known; the second coffee and tx-9 are new
    assert (sync.added, sync.skipped) == (2, 2)
    sources = sorted(StatementLine.objects.values_list("source", flat=True))
    assert sources == ["plaid:tx-1b", "plaid:tx-9", "row 2", "row 3"]


def test_a_statement_file_after_the_feed_does_not_import_its_lines_again(
    plaid, plaid_feed, finance_admin, usd_account
):
    # given the feed brought two coffees and the ACME payment
    plaid.add(coffee("tx-1"), coffee("tx-1b"), acme("tx-2"))
    feed_sync(feed_id=plaid_feed.pk)
    csv_mapping_save(
        actor=finance_admin,
        bank_account_id=usd_account.pk,
        config={"date": "Date", "amount": "Amount", "description": ["Text"]},
    )
    # when the bank's file of the same days arrives, with a third coffee and a fee
    outcome = statement_import(
        actor=finance_admin,
        bank_account_id=usd_account.pk,
        data=(
            b"Date,Amount,Text\n"
            b"2026-11-03,2500.00,ACME CORP INV-2026-0042\n"
            b"2026-11-02,-12.30,CARD STARBUCKS\n"
            b"2026-11-02,-12.30,CARD STARBUCKS\n"
            b"2026-11-02,-12.30,CARD STARBUCKS\n"
            b"2026-11-03,-4.00,ACCOUNT FEE\n"
        ),
        filename="november.csv",
        format="csv",
    )
    # then only what the feed did not have is new: the third coffee and the fee
    (statement,) = outcome.statements
    assert (statement.line_count, statement.skipped_line_count) == (5, 3)
    assert sorted(statement.lines.values_list("amount", flat=True)) == [
        Decimal("-12.30"),
        Decimal("-4.00"),
    ]
    assert StatementLine.objects.count() == 5


def test_removed_unmatched_line_is_excluded(plaid, plaid_feed):
    # given
    plaid.add(coffee(), acme())
    feed_sync(feed_id=plaid_feed.pk)

    # when
    plaid.remove("tx-1")
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then
    assert (sync.removed, sync.added) == (1, 0)
    assert StatementLine.objects.get(source="plaid:tx-1").status == StatementLineStatus.EXCLUDED
    assert StatementLine.objects.get(source="plaid:tx-2").status == StatementLineStatus.UNMATCHED
    assert not ReconciliationException.objects.exists()


def test_removed_matched_line_raises_an_exception_and_changes_nothing(plaid, plaid_feed):
    # given: a line a person matched
    plaid.add(coffee(), acme())
    feed_sync(feed_id=plaid_feed.pk)
    StatementLine.objects.filter(source="plaid:tx-2").update(status=StatementLineStatus.MATCHED)

    # when
    plaid.remove("tx-2")
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then
    line = StatementLine.objects.get(source="plaid:tx-2")
    assert (line.status, line.amount) == (StatementLineStatus.MATCHED, Decimal("2500.0000"))
    assert sync.removed == 0
    exception = ReconciliationException.objects.get()
    assert exception.kind == ExceptionKind.FEED_CHANGE
    assert exception.line_id == line.pk
    assert exception.bank_account_id == plaid_feed.bank_account_id
    assert exception.key == "feed_change:plaid:tx-2"
    assert "removed transaction tx-2" in exception.message


def test_modified_transactions_follow_unmatched_lines_not_matched_figures(plaid, plaid_feed):
    # given
    plaid.add(coffee(), acme())
    feed_sync(feed_id=plaid_feed.pk)
    StatementLine.objects.filter(source="plaid:tx-2").update(status=StatementLineStatus.MATCHED)

    # when: the coffee is corrected, the matched payment's amount changes
    plaid.modify(coffee("tx-1", amount="13.30", date="2026-11-03"))
    changed_acme = acme()
    changed_acme["amount"] = Decimal("-2400.00")
    plaid.modify(changed_acme)
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then
    assert (sync.modified, sync.added) == (1, 0)
    coffee_line = StatementLine.objects.get(source="plaid:tx-1")
    assert (coffee_line.amount, coffee_line.booking_date) == (
        Decimal("-13.3000"),
        dt.date(2026, 11, 3),
    )
    acme_line = StatementLine.objects.get(source="plaid:tx-2")
    assert acme_line.amount == Decimal("2500.0000")
    exception = ReconciliationException.objects.get(kind=ExceptionKind.FEED_CHANGE)
    assert exception.line_id == acme_line.pk


# ---------------------------------------------------------------- Yodlee


@time_machine.travel(dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC), tick=False)
def test_yodlee_sync_lists_from_synced_through_minus_lookback(yodlee, finance_admin, usd_account):
    # given
    feed = make_yodlee_feed(finance_admin, usd_account)
    yodlee.transactions = [
        yodlee_transaction(101, "2500.00", "CREDIT", "2026-11-20", "ACME CORP PAYMENT"),
        yodlee_transaction(102, "12.30", "DEBIT", "2026-11-21", "STARBUCKS", merchant="Starbucks"),
        yodlee_transaction(103, "89.99", "DEBIT", "2026-11-24", "AMAZON", status="PENDING"),
    ]

    # when
    first = feed_sync(feed_id=feed.pk, actor=finance_admin)

    # then
    assert (first.added, first.pending, first.skipped) == (2, 1, 0)
    feed.refresh_from_db()
    assert feed.synced_through == dt.date(2026, 11, 25)
    query = yodlee.transaction_requests()[0].query
    assert (query["fromDate"], query["toDate"]) == ("2026-08-27", "2026-11-25")
    assert query["accountId"] == str(yodlee_server.ACCOUNT_ID)
    assert lines_of(feed) == [
        ("yodlee:101", Decimal("2500.0000"), StatementLineStatus.UNMATCHED),
        ("yodlee:102", Decimal("-12.3000"), StatementLineStatus.UNMATCHED),
    ]

    # when: three days later the pending one posted and one more came
    yodlee.transactions[2]["status"] = "POSTED"
    yodlee.transactions.append(
        yodlee_transaction(104, "1.05", "DEBIT", "2026-11-27", "MONTHLY FEE")
    )
    with time_machine.travel(dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC), tick=False):
        second = feed_sync(feed_id=feed.pk, actor=finance_admin)

    # then: listed from a week before the last sync; known ones are not added again
    query = yodlee.transaction_requests()[1].query
    assert (query["fromDate"], query["toDate"]) == ("2026-11-18", "2026-11-28")
    assert (second.added, second.skipped, second.pending) == (2, 2, 0)
    assert StatementLine.objects.filter(bank_account=usd_account).count() == 4


# ---------------------------------------------------------------- failures


def test_provider_failure_is_recorded_cursor_unchanged_then_recovery(
    plaid, plaid_feed, finance_admin
):
    # given
    plaid.add(coffee())
    feed_sync(feed_id=plaid_feed.pk)
    plaid_feed.refresh_from_db()
    cursor = plaid_feed.cursor
    plaid.add(acme())
    plaid.queue_error("login_required")

    # when
    failed = feed_sync(feed_id=plaid_feed.pk, actor=finance_admin)

    # then
    plaid_feed.refresh_from_db()
    assert failed.result == FeedSyncResult.FAILED
    assert failed.error_code == "login_required"
    assert "ITEM_LOGIN_REQUIRED" in failed.error
    assert (failed.added, failed.cursor_before, failed.cursor_after) == (0, cursor, cursor)
    assert plaid_feed.status == FeedStatus.ERROR
    assert plaid_feed.consecutive_failures == 1
    assert plaid_feed.cursor == cursor
    assert "ITEM_LOGIN_REQUIRED" in plaid_feed.last_error
    assert StatementLine.objects.count() == 1

    # when: the bank is back
    recovered = feed_sync(feed_id=plaid_feed.pk)

    # then
    plaid_feed.refresh_from_db()
    assert (recovered.result, recovered.added) == (FeedSyncResult.OK, 1)
    assert (plaid_feed.status, plaid_feed.consecutive_failures, plaid_feed.last_error) == (
        FeedStatus.ACTIVE,
        0,
        "",
    )
    assert StatementLine.objects.count() == 2


def test_missing_provider_keys_are_a_recorded_failure(plaid, plaid_feed, settings):
    # given
    settings.PLAID_SECRET = ""

    # when
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then
    assert (sync.result, sync.error_code) == (FeedSyncResult.FAILED, "invalid_credentials")
    assert "PLAID_SECRET" in sync.error
    assert plaid.sync_requests() == []


def test_a_transaction_in_another_currency_fails_the_sync_and_stores_nothing(plaid, plaid_feed):
    # given
    plaid.add(coffee(), coffee("tx-eur", iso_currency_code="EUR"))

    # when
    sync = feed_sync(feed_id=plaid_feed.pk)

    # then
    plaid_feed.refresh_from_db()
    assert (sync.result, sync.error_code) == (FeedSyncResult.FAILED, "currency_mismatch")
    assert (plaid_feed.cursor, StatementLine.objects.count()) == ("", 0)


def test_a_disabled_feed_is_not_synced(plaid, plaid_feed, finance_admin):
    # given
    bank_feed_update(actor=finance_admin, feed_id=plaid_feed.pk, enabled=False)

    # when / then
    with pytest.raises(Exception, match="disabled") as caught:
        feed_sync(feed_id=plaid_feed.pk)
    assert caught.value.code == "feed_disabled"
    assert FeedSync.objects.count() == 0


def test_a_new_token_makes_a_failing_feed_active(plaid, plaid_feed, finance_admin):
    # given
    plaid.queue_error("login_required")
    feed_sync(feed_id=plaid_feed.pk)

    # when
    feed = bank_feed_update(
        actor=finance_admin, feed_id=plaid_feed.pk, access_token=plaid_server.ACCESS_TOKEN
    )

    # then
    assert (feed.status, feed.consecutive_failures) == (FeedStatus.ACTIVE, 0)
    event = AuditEvent.objects.filter(action=AuditAction.FEED_CHANGED).latest("pk")
    assert event.details["access_token"] == "replaced"
    assert plaid_server.ACCESS_TOKEN not in str(event.details)


# ---------------------------------------------------------------- task


@time_machine.travel(dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC), tick=False)
def test_the_task_syncs_every_feed_and_one_failing_does_not_stop_others(
    plaid, yodlee, finance_admin, make_bank_account, monkeypatch
):
    # given: a good Plaid feed, one with a revoked token, a Yodlee feed, a disabled feed and
    # one whose sync breaks unexpectedly
    def feed(name: str, token: str, provider: str = "plaid") -> BankFeed:
        return bank_feed_create(
            actor=finance_admin,
            bank_account_id=make_bank_account("USD", name=name).pk,
            provider=provider,
            external_account_id=(
                plaid_server.ACCOUNT_ID if provider == "plaid" else str(yodlee_server.ACCOUNT_ID)
            ),
            access_token=token,
        )

    broken = feed("A broken", "access-sandbox-broken")
    revoked = feed("B revoked", "access-sandbox-revoked")
    good = feed("C good", plaid_server.ACCESS_TOKEN)
    yodlee_feed = feed("D yodlee", yodlee_server.LOGIN_NAME, "yodlee")
    disabled = feed("E disabled", plaid_server.ACCESS_TOKEN)
    bank_feed_update(actor=finance_admin, feed_id=disabled.pk, enabled=False)
    plaid.add(coffee())
    yodlee.transactions = [yodlee_transaction(201, "5.00", "DEBIT", "2026-11-24", "FEE")]
    real_fetch = services_feeds._fetch_plaid

    def fetch(feed_row):
        if feed_row.pk == broken.pk:
            raise RuntimeError("a bug")
        return real_fetch(feed_row)

    monkeypatch.setattr(services_feeds, "_fetch_plaid", fetch)

    # when
    outcome = feeds_sync_task.run()

    # then
    assert outcome == {
        "ok": [good.pk, yodlee_feed.pk],
        "failed": [revoked.pk],
        "errors": [broken.pk],
    }
    assert StatementLine.objects.filter(bank_account_id=good.bank_account_id).count() == 1
    assert StatementLine.objects.filter(bank_account_id=yodlee_feed.bank_account_id).count() == 1
    revoked.refresh_from_db()
    assert (revoked.status, revoked.consecutive_failures) == (FeedStatus.ERROR, 1)
    assert not FeedSync.objects.filter(feed=disabled).exists()

    # when: the failing feed is tried again on the next run
    outcome = feeds_sync_task.run()

    # then
    assert outcome["failed"] == [revoked.pk]
    revoked.refresh_from_db()
    assert revoked.consecutive_failures == 2


def test_tasks_are_registered_under_their_stable_names():
    from reconciliation import tasks

    assert tasks.feeds_sync_task.name == "reconciliation.feeds_sync"
    assert tasks.feed_sync_task.name == "reconciliation.feed_sync"
    assert tasks.feeds_sync_task.max_retries == 3


# ---------------------------------------------------------------- API


def test_api_create_list_detail_never_show_the_token(client_for, usd_account):
    # given
    admin = client_for(Role.FINANCE_ADMIN)
    payload = {
        "bank_account": usd_account.pk,
        "provider": "plaid",
        "external_account_id": plaid_server.ACCOUNT_ID,
        "access_token": plaid_server.ACCESS_TOKEN,
    }

    # when
    created = admin.post("/api/reconciliation/bank-feeds", payload, format="json")
    listed = client_for(Role.AUDITOR).get("/api/reconciliation/bank-feeds")
    detail = admin.get(f"/api/reconciliation/bank-feeds/{created.json()['id']}")

    # then
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["provider"] == "plaid"
    assert body["bank_account"] == usd_account.pk
    assert body["status"] == "active"
    assert body["has_access_token"] is True
    assert body["external_account_id"] == "\u2022\u2022\u2022\u202299vp"
    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()["results"]] == [body["id"]]
    assert detail.status_code == 200
    for response in (created, listed, detail):
        assert plaid_server.ACCESS_TOKEN.encode() not in response.content
        assert plaid_server.ACCOUNT_ID.encode() not in response.content
    feed = BankFeed.objects.get()
    assert feed.access_token == plaid_server.ACCESS_TOKEN
    event = AuditEvent.objects.get(action=AuditAction.FEED_CHANGED)
    assert event.subject == f"bankfeed:{feed.pk}"
    assert plaid_server.ACCESS_TOKEN not in str(event.details)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"provider": "mint"}, 400, "invalid"),
        ({"access_token": ""}, 400, "invalid"),
        ({"access_token": "has spaces in it"}, 400, "invalid_access_token"),
        ({"external_account_id": "  "}, 400, "invalid"),
        ({"bank_account": 999_999}, 404, "not_found"),
    ],
)
def test_api_create_refuses_bad_input(client_for, usd_account, change, status, code):
    # given
    payload = {
        "bank_account": usd_account.pk,
        "provider": "plaid",
        "external_account_id": plaid_server.ACCOUNT_ID,
        "access_token": plaid_server.ACCESS_TOKEN,
        **change,
    }

    # when
    response = client_for(Role.FINANCE_ADMIN).post(
        "/api/reconciliation/bank-feeds", payload, format="json"
    )

    # then
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert not BankFeed.objects.exists()


def test_api_create_refuses_a_second_feed_and_other_roles(client_for, plaid_feed, usd_account):
    payload = {
        "bank_account": usd_account.pk,
        "provider": "yodlee",
        "external_account_id": "1",
        "access_token": "login",
    }
    twice = client_for(Role.FINANCE_ADMIN).post(
        "/api/reconciliation/bank-feeds", payload, format="json"
    )
    clerk = client_for(Role.AR_CLERK).post("/api/reconciliation/bank-feeds", payload, format="json")

    assert (twice.status_code, twice.json()["code"]) == (409, "feed_exists")
    assert clerk.status_code == 403
    assert BankFeed.objects.count() == 1


def test_api_sync_returns_counts_and_permissions(client_for, plaid, plaid_feed):
    # given
    plaid.add(coffee(), acme(), coffee("tx-p", pending=True))
    url = f"/api/reconciliation/bank-feeds/{plaid_feed.pk}/sync"

    # when
    auditor = client_for(Role.AUDITOR).post(url)
    clerk = client_for(Role.AP_CLERK).post(url)
    syncs = client_for(Role.AUDITOR).get(f"/api/reconciliation/bank-feeds/{plaid_feed.pk}/syncs")

    # then
    assert auditor.status_code == 403
    assert clerk.status_code == 200, clerk.content
    body = clerk.json()
    assert {k: body[k] for k in ("result", "added", "modified", "removed", "pending")} == {
        "result": "ok",
        "added": 2,
        "modified": 0,
        "removed": 0,
        "pending": 1,
    }
    assert "cursor" not in str(body)
    assert syncs.status_code == 200
    assert [s["id"] for s in syncs.json()["results"]] == [body["id"]]
    assert plaid_server.ACCESS_TOKEN.encode() not in clerk.content + syncs.content


def test_api_sync_answers_a_provider_failure_with_502(client_for, plaid, plaid_feed):
    # given
    plaid.queue_error("login_required")

    # when
    response = client_for(Role.FINANCE_ADMIN).post(
        f"/api/reconciliation/bank-feeds/{plaid_feed.pk}/sync"
    )

    # then
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "login_required"
    assert "ITEM_LOGIN_REQUIRED" in body["message"]
    assert body["sync"]["result"] == "failed"
    assert FeedSync.objects.get().result == FeedSyncResult.FAILED


def test_api_sync_of_unknown_or_disabled_feed(client_for, plaid_feed, finance_admin):
    admin = client_for(Role.FINANCE_ADMIN)
    missing = admin.post("/api/reconciliation/bank-feeds/999999/sync")
    bank_feed_update(actor=finance_admin, feed_id=plaid_feed.pk, enabled=False)
    disabled = admin.post(f"/api/reconciliation/bank-feeds/{plaid_feed.pk}/sync")

    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (disabled.status_code, disabled.json()["code"]) == (409, "feed_disabled")


def test_integration_token_may_sync(integration_client, plaid, plaid_feed):
    plaid.add(coffee())
    response = integration_client.post(f"/api/reconciliation/bank-feeds/{plaid_feed.pk}/sync")
    assert response.status_code == 200, response.content
    assert response.json()["added"] == 1


def test_anonymous_is_refused(plaid_feed):
    client = APIClient()
    assert client.get("/api/reconciliation/bank-feeds").status_code in (401, 403)
    assert client.post(f"/api/reconciliation/bank-feeds/{plaid_feed.pk}/sync").status_code in (
        401,
        403,
    )


# ---------------------------------------------------------------- audit


def test_every_sync_is_audited(plaid, plaid_feed, finance_admin):
    # given
    plaid.add(coffee())

    # when
    ok = feed_sync(feed_id=plaid_feed.pk, actor=finance_admin)
    plaid.queue_error("invalid_keys")
    failed = feed_sync(feed_id=plaid_feed.pk)

    # then
    events = list(AuditEvent.objects.filter(action=AuditAction.FEED_SYNC).order_by("pk"))
    assert [(e.subject, e.actor) for e in events] == [
        (f"feedsync:{ok.pk}", finance_admin),
        (f"feedsync:{failed.pk}", None),
    ]
    assert events[0].bank_account_id == plaid_feed.bank_account_id
    assert events[0].details["added"] == 1
    assert events[0].details["result"] == "ok"
    assert events[1].details["error_code"] == "invalid_credentials"
    assert "INVALID_API_KEYS" in events[1].reason


def test_sync_permission_is_checked_in_the_service(plaid, plaid_feed, make_user):
    auditor = make_user(Role.AUDITOR)
    with pytest.raises(Exception, match="does not allow") as caught:
        feed_sync(feed_id=plaid_feed.pk, actor=auditor)
    assert caught.value.code == "permission_denied"
    assert FeedSync.objects.count() == 0


# ---------------------------------------------------------------- admin


def test_admin_adds_through_the_service_and_never_shows_the_token(make_user, usd_account):
    # given
    client = verified_client(make_user(Role.FINANCE_ADMIN))

    # when
    response = client.post(
        reverse("admin:reconciliation_bankfeed_add"),
        {
            "bank_account": usd_account.pk,
            "provider": "plaid",
            "external_account_id": plaid_server.ACCOUNT_ID,
            "access_token_input": plaid_server.ACCESS_TOKEN,
        },
    )

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    feed = BankFeed.objects.get()
    assert feed.access_token == plaid_server.ACCESS_TOKEN
    assert AuditEvent.objects.filter(action=AuditAction.FEED_CHANGED).count() == 1
    for url in (
        reverse("admin:reconciliation_bankfeed_changelist"),
        reverse("admin:reconciliation_bankfeed_change", args=[feed.pk]),
        reverse("admin:reconciliation_feedsync_changelist"),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert plaid_server.ACCESS_TOKEN not in page.content.decode()


def test_admin_refuses_a_second_feed_on_the_form(make_user, plaid_feed, usd_account):
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    response = client.post(
        reverse("admin:reconciliation_bankfeed_add"),
        {
            "bank_account": usd_account.pk,
            "provider": "yodlee",
            "external_account_id": "1",
            "access_token_input": "login",
        },
    )
    assert response.status_code == 200
    assert BankFeed.objects.count() == 1


def test_admin_disables_and_syncs_now(make_user, plaid, plaid_feed):
    # given
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    plaid.add(coffee())

    # when: sync now
    response = client.post(
        reverse("admin:reconciliation_bankfeed_changelist"),
        {"action": "sync_now", "_selected_action": [plaid_feed.pk]},
        follow=True,
    )

    # then
    assert response.status_code == 200
    assert "1 new" in response.content.decode()
    assert FeedSync.objects.get().actor.groups.filter(name=Role.FINANCE_ADMIN).exists()

    # when: disable (the enabled box unticked)
    response = client.post(
        reverse("admin:reconciliation_bankfeed_change", args=[plaid_feed.pk]),
        {"external_account_id": plaid_server.ACCOUNT_ID, "access_token_input": ""},
    )

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    plaid_feed.refresh_from_db()
    assert plaid_feed.status == FeedStatus.DISABLED
    assert plaid_feed.access_token == plaid_server.ACCESS_TOKEN
