"""The reconciliation exceptions queue: daily detection of each kind (raised once, cleared
when the problem goes away, a person's decision kept), assign/resolve/reopen through the
services, the API and the admin, the CSV and PDF report, and the audit trail."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import date, timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from rest_framework.test import APIClient

from core.exceptions import PermissionDeniedError
from core.ledger.models import Account
from core.roles import Role
from reconciliation.enums import (
    AuditAction,
    ExceptionKind,
    ExceptionStatus,
    MatchStatus,
    StatementLineStatus,
)
from reconciliation.exceptions import ReconciliationError
from reconciliation.matching import C_REFERENCE_OTHER_AMOUNT
from reconciliation.models import (
    AuditEvent,
    BankAccount,
    Match,
    MatchLine,
    MatchTarget,
    Payout,
    PayoutItem,
    ReconciliationException,
    Statement,
    StatementLine,
)
from reconciliation.services_exceptions import (
    REPORT_COLUMNS,
    exception_raise,
    exception_resolve,
    exceptions_detect,
)
from reconciliation.tasks_exceptions import exceptions_detect_task
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db
# A Monday.
TODAY = date(2026, 3, 16)
EXCEPTIONS = "/api/reconciliation/exceptions"
_numbers = count(1)


@pytest.fixture(autouse=True)
def _unmatched_days(settings) -> None:
    settings.RECONCILIATION_UNMATCHED_DAYS = 5


@pytest.fixture
def account(make_bank_account) -> BankAccount:
    return make_bank_account("EUR", name="Operating")


def make_statement(account: BankAccount, **fields) -> Statement:
    n = next(_numbers)
    values = {"format": "mt940", "currency": account.currency, "control": "balances"}
    values.update(fields)
    return Statement.objects.create(
        bank_account=account, file_sha256=f"{n:064d}", fingerprint=f"{n:064d}", **values
    )


@pytest.fixture
def statement(account) -> Statement:
    return make_statement(account, format="csv", control="none")


@pytest.fixture
def make_line(account, statement):
    def make(amount: str, booked: date, **fields) -> StatementLine:
        n = next(_numbers)
        return StatementLine.objects.create(
            statement=statement,
            bank_account=account,
            position=n,
            booking_date=booked,
            amount=D(amount),
            currency=account.currency,
            fingerprint=f"line-{n}",
            **fields,
        )

    return make


def make_match(account, lines, target_amount: str, **fields) -> Match:
    values = {"status": MatchStatus.PROPOSED, "confidence": D("0.9"), "rule": "subset"}
    values.update(fields)
    total = sum((x.amount for x in lines), D(0))
    match = Match.objects.create(
        bank_account=account, reason="test", amount=total, currency=account.currency, **values
    )
    for line in lines:
        MatchLine.objects.create(match=match, line=line, amount=line.amount)
    MatchTarget.objects.create(
        match=match,
        kind="account",
        account=Account.objects.get(code="1000"),
        amount=D(target_amount),
    )
    return match


def open_keys() -> set[str]:
    return set(
        ReconciliationException.objects.filter(status=ExceptionStatus.OPEN).values_list(
            "key", flat=True
        )
    )


def pdf_text(content: bytes) -> str:
    assert shutil.which("pdftotext"), "pdftotext (Debian package poppler-utils) is required"
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"],
        input=content,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return " ".join(result.stdout.decode().split())


# --- detection --------------------------------------------------------------------------------


def test_unmatched_line_older_than_n_days_is_raised_once_and_cleared_when_matched(make_line):
    # given: one line six days old, one exactly five (not older than five), one matched
    old = make_line("120.00", TODAY - timedelta(days=6), counterparty_name="Acme GmbH")
    make_line("80.00", TODAY - timedelta(days=5))
    make_line("50.00", TODAY - timedelta(days=30), status=StatementLineStatus.MATCHED)
    # when
    first = exceptions_detect(today=TODAY)
    second = exceptions_detect(today=TODAY)
    # then
    assert open_keys() == {f"unmatched_line:{old.pk}"}
    exc = ReconciliationException.objects.get()
    assert (exc.kind, exc.line_id, exc.amount, exc.currency) == (
        ExceptionKind.UNMATCHED_LINE,
        old.pk,
        D("120.0000"),
        "EUR",
    )
    assert exc.message == (
        f"Bank line {old.pk} of 2026-03-10 (120.00 EUR, Acme GmbH) is not matched more than "
        "5 days after its booking date."
    )
    assert first.opened["unmatched_line"] == 1
    assert second.opened["unmatched_line"] == 0
    assert second.open["unmatched_line"] == 1
    assert exc.history.count() == 1  # the second run wrote nothing
    # when: the engine matches the line
    StatementLine.objects.filter(pk=old.pk).update(status=StatementLineStatus.MATCHED)
    cleared = exceptions_detect(today=TODAY)
    # then
    exc.refresh_from_db()
    assert cleared.cleared["unmatched_line"] == 1
    assert exc.status == ExceptionStatus.RESOLVED
    assert exc.resolved_by is None
    assert exc.resolution_note == "The line was matched (found by the daily detection)."
    # when: the match is undone, the problem is back: a clearing by the system does not stand
    StatementLine.objects.filter(pk=old.pk).update(status=StatementLineStatus.UNMATCHED)
    exceptions_detect(today=TODAY)
    exc.refresh_from_db()
    assert (exc.status, exc.resolution_note, exc.resolved_at) == (ExceptionStatus.OPEN, "", None)


def test_resolved_by_a_person_stays_resolved_unless_its_figures_change(
    account, make_line, make_user
):
    # given: a match whose line is 120 for a target of 100
    clerk = make_user(Role.AR_CLERK)
    line = make_line("120.00", TODAY)
    match = make_match(account, [line], "100.00")
    exceptions_detect(today=TODAY)
    exc = ReconciliationException.objects.get(kind=ExceptionKind.AMOUNT_DIFFERENCE)
    assert (exc.key, exc.match_id, exc.line_id) == (
        f"amount_difference:match:{match.pk}",
        match.pk,
        line.pk,
    )
    assert (exc.amount, exc.difference) == (D("120.0000"), D("20.0000"))
    # when: a person resolves it and the detection runs again
    exception_resolve(exception_id=exc.pk, note="Customer overpaid; refund queued.", actor=clerk)
    exceptions_detect(today=TODAY)
    # then
    exc.refresh_from_db()
    assert exc.status == ExceptionStatus.RESOLVED
    assert exc.resolved_by == clerk
    # when: the figures change (the target is now 90)
    MatchTarget.objects.filter(match=match).update(amount=D("90.00"))
    result = exceptions_detect(today=TODAY)
    # then
    exc.refresh_from_db()
    assert result.opened["amount_difference"] == 1
    assert (exc.status, exc.difference, exc.resolved_by) == (
        ExceptionStatus.OPEN,
        D("30.0000"),
        None,
    )


def test_amount_difference_cleared_when_the_match_is_rejected(account, make_line):
    line = make_line("-50.00", TODAY)
    match = make_match(account, [line], "45.00")
    make_match(account, [make_line("-9.00", TODAY)], "9.00")  # agrees: no exception
    exceptions_detect(today=TODAY)
    assert open_keys() == {f"amount_difference:match:{match.pk}"}
    exc = ReconciliationException.objects.get()
    assert exc.difference == D("5.0000")
    assert exc.message == (
        f"Match {match.pk} (proposed, rule subset): its bank lines total 50.00 EUR, "
        "5.00 EUR more than its targets."
    )
    # when
    Match.objects.filter(pk=match.pk).update(status=MatchStatus.REJECTED)
    exceptions_detect(today=TODAY)
    # then
    exc.refresh_from_db()
    assert (exc.status, exc.resolution_note) == (
        ExceptionStatus.RESOLVED,
        "The match was rejected.",
    )


def test_reference_other_amount_proposal_is_an_amount_difference(
    make_bank_account, finance_admin, django_capture_on_commit_callbacks
):
    from billing.services.customers import customer_create
    from billing.services.invoices import LineInput, invoice_create

    # given: two invoices of 60 due (120), a payment of 100 proposed against both
    usd = make_bank_account("USD", name="US")
    customer = customer_create(
        actor=finance_admin, name="Acme Corp", email="ap@acme.example", currency="USD"
    )
    with django_capture_on_commit_callbacks(execute=False):
        invoices = [
            invoice_create(
                actor=finance_admin,
                customer_id=customer.pk,
                lines=[
                    LineInput(
                        description="Service", quantity=D(1), unit_price=D("60"), tax_rate=D(0)
                    )
                ],
                issue=True,
            )
            for _ in range(2)
        ]
    statement = make_statement(usd, format="csv", control="none")
    line = StatementLine.objects.create(
        statement=statement, bank_account=usd, position=1, booking_date=TODAY,
        amount=D("100.00"), currency="USD", fingerprint="ref-other",
    )  # fmt: skip
    match = Match.objects.create(
        bank_account=usd, rule="reference", confidence=C_REFERENCE_OTHER_AMOUNT,
        reason="invoice numbers in the text; amount differs", amount=D("100.00"), currency="USD",
    )  # fmt: skip
    MatchLine.objects.create(match=match, line=line, amount=line.amount)
    MatchTarget.objects.create(match=match, kind="invoice", invoice=invoices[0], amount=D("60"))
    MatchTarget.objects.create(match=match, kind="invoice", invoice=invoices[1], amount=D("40"))
    # when
    exceptions_detect(bank_account_id=usd.pk, today=TODAY)
    # then
    exc = ReconciliationException.objects.get()
    assert (exc.kind, exc.amount, exc.difference) == (
        ExceptionKind.AMOUNT_DIFFERENCE,
        D("100.0000"),
        D("-20.0000"),
    )
    assert "20.00 USD less than what its invoices have due" in exc.message


def test_suspected_duplicates_are_paired_once_and_cleared_when_one_is_excluded(make_line):
    day = TODAY - timedelta(days=1)
    a = make_line("99.00", day, counterparty_name="ACME Corp.", description="Inv 12")
    b = make_line("99.00", day, counterparty_name="acme corp", description="INV-12")
    c = make_line("99.00", day, counterparty_name="acme corp", description="inv 12 ")
    make_line("99.01", day, counterparty_name="ACME Corp.", description="Inv 12")  # amount
    make_line("99.00", TODAY, counterparty_name="ACME Corp.", description="Inv 12")  # date
    make_line("99.00", day, counterparty_name="Other", description="Inv 12")  # counterparty
    make_line(
        "99.00", day, counterparty_name="ACME Corp.", description="Inv 12",
        status=StatementLineStatus.EXCLUDED,
    )  # fmt: skip
    make_line("5.00", day)  # no text: never a suspect
    make_line("5.00", day)
    # when
    first = exceptions_detect(today=TODAY)
    second = exceptions_detect(today=TODAY)
    # then: each later line with the earliest of its group
    assert open_keys() == {
        f"suspected_duplicate:{a.pk}:{b.pk}",
        f"suspected_duplicate:{a.pk}:{c.pk}",
    }
    assert (first.opened["suspected_duplicate"], second.opened["suspected_duplicate"]) == (2, 0)
    exc = ReconciliationException.objects.get(key=f"suspected_duplicate:{a.pk}:{b.pk}")
    assert (exc.line_id, exc.other_line_id, exc.amount) == (a.pk, b.pk, D("99.0000"))
    assert exc.message == (
        f"Bank lines {a.pk} and {b.pk} have the same amount (99.00 EUR), booking date "
        "(2026-03-15) and text (acme corp)."
    )
    # when: the earliest is excluded as the duplicate; b and c are now a pair of their own
    StatementLine.objects.filter(pk=a.pk).update(status=StatementLineStatus.EXCLUDED)
    result = exceptions_detect(today=TODAY)
    # then
    assert result.cleared["suspected_duplicate"] == 2
    assert open_keys() == {f"suspected_duplicate:{b.pk}:{c.pk}"}
    assert (
        ReconciliationException.objects.get(
            key=f"suspected_duplicate:{a.pk}:{b.pk}"
        ).resolution_note
        == f"Line {a.pk} was excluded."
    )


def test_sequence_gaps_by_balance_number_and_dates(account):
    # given: Fri 6th (no. 1) -> Mon 9th (no. 2, fine) -> Thu 12th (no. 4, balance off by 30)
    s1 = make_statement(account, sequence="1", opening_balance=D("0"), closing_balance=D("100"),
                        opening_date=date(2026, 3, 2), closing_date=date(2026, 3, 6))  # fmt: skip
    s2 = make_statement(account, sequence="2/1", opening_balance=D("100"),
                        closing_balance=D("120"), opening_date=date(2026, 3, 9),
                        closing_date=date(2026, 3, 9))  # fmt: skip
    s4 = make_statement(account, statement_id="STMT-4", sequence="4", opening_balance=D("150"),
                        closing_balance=D("160"), opening_date=date(2026, 3, 12),
                        closing_date=date(2026, 3, 12))  # fmt: skip
    # interim reports and feed syncs are not in the sequence
    make_statement(account, format="mt942", sequence="9", opening_balance=D("5"),
                   closing_balance=D("5"), opening_date=date(2026, 3, 10),
                   closing_date=date(2026, 3, 10))  # fmt: skip
    make_statement(account, format="feed", closing_date=date(2026, 3, 11))
    # when
    exceptions_detect(today=TODAY)
    exceptions_detect(today=TODAY)
    # then
    assert open_keys() == {f"sequence_gap:{s4.pk}"}
    exc = ReconciliationException.objects.get()
    assert (exc.statement_id, exc.amount, exc.difference) == (s4.pk, D("150.0000"), D("30.0000"))
    assert exc.message == (
        f"Statement STMT-4 (closing 2026-03-12) after statement {s2.pk} (closing 2026-03-09): "
        "its opening balance 150.00 EUR differs from the previous closing balance 120.00 EUR; "
        "its number 4 does not follow 2/1; the days from 2026-03-10 to 2026-03-11 are in no "
        "statement."
    )
    assert s1.pk != s2.pk
    # when: the missing statement arrives
    make_statement(account, sequence="3", opening_balance=D("120"), closing_balance=D("150"),
                   opening_date=date(2026, 3, 10), closing_date=date(2026, 3, 11))  # fmt: skip
    result = exceptions_detect(today=TODAY)
    # then
    assert result.cleared["sequence_gap"] == 1
    assert open_keys() == set()


def test_sequence_restart_in_a_new_year_is_not_a_gap(account):
    make_statement(account, sequence="250", closing_balance=D("1"), opening_date=date(2025, 12, 31),
                   closing_date=date(2025, 12, 31))  # fmt: skip
    make_statement(account, sequence="1", opening_balance=D("1"), closing_balance=D("2"),
                   opening_date=date(2026, 1, 1), closing_date=date(2026, 1, 2))  # fmt: skip
    exceptions_detect(today=TODAY)
    assert open_keys() == set()


def test_payout_in_exception_is_raised_once_without_overwriting_the_import(account):
    # given: one payout whose items net to 95 for 100, one the payouts import reported itself
    payout = Payout.objects.create(
        external_id="po_1", bank_account=account, amount=D("100"), currency="EUR",
        arrival_date=TODAY, status="exception", problem="Items net to 95.00, payout 100.00.",
    )  # fmt: skip
    PayoutItem.objects.create(payout=payout, balance_transaction_id="txn_1", category="charge",
                              amount=D("97"), fee=D("2"), net=D("95"), currency="EUR")  # fmt: skip
    other = Payout.objects.create(
        external_id="po_2", bank_account=account, amount=D("10"), currency="EUR",
        arrival_date=TODAY, status="exception", problem="Fee details differ.",
    )  # fmt: skip
    reported = exception_raise(
        kind=ExceptionKind.PAYOUT_MISMATCH, key="payout_mismatch:po_2", message="From the import",
        payout_id=other.pk, amount=D("10"), difference=D("1"), currency="EUR",
    )  # fmt: skip
    # when
    exceptions_detect(today=TODAY)
    exceptions_detect(today=TODAY)
    # then
    assert open_keys() == {"payout_mismatch:po_1", "payout_mismatch:po_2"}
    exc = ReconciliationException.objects.get(key="payout_mismatch:po_1")
    assert (exc.payout_id, exc.amount, exc.difference, exc.message) == (
        payout.pk,
        D("100.0000"),
        D("-5.0000"),
        "Items net to 95.00, payout 100.00.",
    )
    reported.refresh_from_db()
    assert (reported.message, reported.difference) == ("From the import", D("1.0000"))
    # when: the payout is reconciled
    Payout.objects.filter(pk=payout.pk).update(status="reconciled")
    exceptions_detect(today=TODAY)
    exc.refresh_from_db()
    assert (exc.status, exc.resolution_note) == (
        ExceptionStatus.RESOLVED,
        "The payout is reconciled now.",
    )


def test_detection_is_scoped_to_one_bank_account(make_bank_account, make_line):
    other = make_bank_account("EUR", name="Savings")
    make_line("1.00", TODAY - timedelta(days=9))
    result = exceptions_detect(bank_account_id=other.pk, today=TODAY)
    assert result.opened["unmatched_line"] == 0
    assert ReconciliationException.objects.count() == 0


def test_the_task_runs_the_detection(make_line, account):
    make_line("1.00", TODAY - timedelta(days=9))
    result = exceptions_detect_task.run(bank_account_id=str(account.pk), today=TODAY.isoformat())
    assert result["opened"]["unmatched_line"] == 1
    assert result["open"] == {
        "unmatched_line": 1,
        "amount_difference": 0,
        "suspected_duplicate": 0,
        "sequence_gap": 0,
        "payout_mismatch": 0,
    }


# --- people's decisions -----------------------------------------------------------------------


@pytest.fixture
def queue(account, make_line) -> list[ReconciliationException]:
    make_line("120.00", TODAY - timedelta(days=9), counterparty_name="Acme GmbH")
    make_line("-35.50", TODAY - timedelta(days=8), description="Card fee")
    exceptions_detect(today=TODAY)
    return list(ReconciliationException.objects.order_by("pk"))


def test_assign_resolve_reopen_through_the_api_with_audit(queue, make_user):
    clerk = make_user(Role.AR_CLERK)
    client = verified_client(clerk)
    exc = queue[0]
    url = f"{EXCEPTIONS}/{exc.pk}"
    # assign
    assigned = client.post(f"{url}/assign", {"assignee": clerk.pk}, format="json")
    assert assigned.status_code == 200, assigned.json()
    assert assigned.json()["assignee"] == {"id": clerk.pk, "username": clerk.username}
    # an assignee who may not resolve exceptions is refused
    auditor = make_user(Role.AUDITOR)
    refused = client.post(f"{url}/assign", {"assignee": auditor.pk}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "assignee_not_allowed")
    missing = client.post(f"{url}/assign", {"assignee": 999999}, format="json")
    assert (missing.status_code, missing.json()["code"]) == (400, "assignee_not_found")
    # resolve without a note: refused, nothing changed
    no_note = client.post(f"{url}/resolve", {"note": "  "}, format="json")
    assert (no_note.status_code, no_note.json()["code"]) == (400, "note_required")
    exc.refresh_from_db()
    assert exc.status == ExceptionStatus.OPEN
    assert not AuditEvent.objects.filter(action=AuditAction.EXCEPTION_RESOLVED).exists()
    # resolve
    resolved = client.post(f"{url}/resolve", {"note": "Booked as a deposit."}, format="json")
    assert resolved.status_code == 200, resolved.json()
    body = resolved.json()
    assert (body["status"], body["resolution_note"], body["resolved_by"]["id"]) == (
        "resolved",
        "Booked as a deposit.",
        clerk.pk,
    )
    again = client.post(f"{url}/resolve", {"note": "twice"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "exception_not_open")
    late = client.post(f"{url}/assign", {"assignee": clerk.pk}, format="json")
    assert (late.status_code, late.json()["code"]) == (409, "exception_not_open")
    # reopen
    no_reason = client.post(f"{url}/reopen", {}, format="json")
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    reopened = client.post(f"{url}/reopen", {"reason": "Wrong deposit."}, format="json")
    assert reopened.status_code == 200, reopened.json()
    assert (reopened.json()["status"], reopened.json()["resolved_by"]) == ("open", None)
    open_again = client.post(f"{url}/reopen", {"reason": "again"}, format="json")
    assert (open_again.status_code, open_again.json()["code"]) == (409, "exception_not_resolved")
    # the audit trail
    events = list(
        AuditEvent.objects.filter(subject=f"reconciliationexception:{exc.pk}")
        .order_by("pk")
        .values_list("action", "actor_id", "reason", "bank_account_id")
    )
    assert events == [
        (AuditAction.EXCEPTION_ASSIGNED, clerk.pk, "", exc.bank_account_id),
        (AuditAction.EXCEPTION_RESOLVED, clerk.pk, "Booked as a deposit.", exc.bank_account_id),
        (AuditAction.EXCEPTION_REOPENED, clerk.pk, "Wrong deposit.", exc.bank_account_id),
    ]
    reopen_event = AuditEvent.objects.get(action=AuditAction.EXCEPTION_REOPENED)
    assert reopen_event.details["previous_note"] == "Booked as a deposit."
    assert exc.history.count() == 4  # detected, assigned, resolved, reopened


@pytest.mark.parametrize(
    ("role", "read", "decide"),
    [
        (Role.FINANCE_ADMIN, 200, 200),
        (Role.AR_CLERK, 200, 200),
        (Role.AP_CLERK, 200, 200),
        (Role.CONTROLLER, 200, 200),
        (Role.AUDITOR, 200, 403),
    ],
)
def test_role_matrix(role, read, decide, queue, client_for):
    client = client_for(role)
    exc = queue[0]
    assert client.get(EXCEPTIONS).status_code == read
    assert client.get(f"{EXCEPTIONS}/{exc.pk}").status_code == read
    response = client.post(f"{EXCEPTIONS}/{exc.pk}/resolve", {"note": "done"}, format="json")
    assert response.status_code == decide
    exc.refresh_from_db()
    assert exc.status == (ExceptionStatus.RESOLVED if decide == 200 else ExceptionStatus.OPEN)


def test_anonymous_staff_without_second_factor_and_integration(
    queue, make_user, integration_client
):
    exc = queue[0]
    assert APIClient().get(EXCEPTIONS).status_code in (401, 403)
    unverified = APIClient()
    unverified.force_login(make_user(Role.FINANCE_ADMIN, mfa=False))
    assert unverified.get(EXCEPTIONS).status_code == 403
    assert integration_client.get(EXCEPTIONS).status_code == 200
    refused = integration_client.post(
        f"{EXCEPTIONS}/{exc.pk}/resolve", {"note": "x"}, format="json"
    )
    assert refused.status_code == 403


def test_service_refuses_an_auditor_and_changes_nothing(queue, make_user):
    exc = queue[0]
    with pytest.raises(PermissionDeniedError):
        exception_resolve(exception_id=exc.pk, note="no", actor=make_user(Role.AUDITOR))
    with pytest.raises(ReconciliationError) as refused:
        exception_resolve(exception_id=exc.pk, note="", actor=make_user(Role.CONTROLLER))
    assert refused.value.code == "note_required"
    exc.refresh_from_db()
    assert exc.status == ExceptionStatus.OPEN
    assert AuditEvent.objects.count() == 0


def test_list_filters_and_detail(queue, make_user, django_assert_max_num_queries):
    clerk = make_user(Role.AP_CLERK)
    client = verified_client(clerk)
    first, second = queue
    client.post(f"{EXCEPTIONS}/{second.pk}/assign", {"assignee": clerk.pk}, format="json")
    with django_assert_max_num_queries(12):
        listing = client.get(EXCEPTIONS, {"kind": "unmatched_line", "status": "open"})
    assert listing.status_code == 200
    assert listing.json()["count"] == 2
    mine = client.get(EXCEPTIONS, {"assignee": "me"}).json()
    assert [x["id"] for x in mine["results"]] == [second.pk]
    unassigned = client.get(EXCEPTIONS, {"assignee": "none"}).json()
    assert [x["id"] for x in unassigned["results"]] == [first.pk]
    assert client.get(EXCEPTIONS, {"kind": "sequence_gap"}).json()["count"] == 0
    bad = client.get(EXCEPTIONS, {"kind": "nonsense"})
    assert bad.status_code == 400
    detail = client.get(f"{EXCEPTIONS}/{first.pk}").json()
    assert (detail["amount"], detail["difference"], detail["currency"], detail["line"]) == (
        "120.00",
        None,
        "EUR",
        first.line_id,
    )
    assert client.get(f"{EXCEPTIONS}/999999").status_code == 404


# --- the report -------------------------------------------------------------------------------


def test_csv_report(queue, make_user):
    clerk = make_user(Role.CONTROLLER)
    client = verified_client(clerk)
    first, second = queue
    exception_resolve(exception_id=second.pk, note="Bank fee, booked.", actor=clerk)
    # when
    response = client.get(f"{EXCEPTIONS}/report", {"format": "csv", "kind": "unmatched_line"})
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="reconciliation-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == list(REPORT_COLUMNS)
    assert len(rows) == 3
    by_id = {row[0]: dict(zip(REPORT_COLUMNS, row, strict=True)) for row in rows[1:]}
    one = by_id[str(first.pk)]
    assert (one["kind"], one["status"], one["amount"], one["difference"], one["currency"]) == (
        "Unmatched bank line", "Open", "120.00", "", "EUR",
    )  # fmt: skip
    assert (one["line"], one["bank_account"]) == (str(first.line_id), "Operating")
    two = by_id[str(second.pk)]
    assert (two["status"], two["amount"], two["resolved_by"], two["resolution_note"]) == (
        "Resolved", "-35.50", clerk.username, "Bank fee, booked.",
    )  # fmt: skip
    only_open = client.get(f"{EXCEPTIONS}/report", {"format": "csv", "status": "open"})
    assert len(list(csv.reader(io.StringIO(only_open.content.decode())))) == 2
    assert client.get(f"{EXCEPTIONS}/report", {"format": "xls"}).status_code == 400


def test_pdf_report(queue, client_for):
    response = client_for(Role.AUDITOR).get(f"{EXCEPTIONS}/report", {"format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert "Reconciliation exceptions" in text
    assert "2 exceptions" in text
    assert "120.00 EUR" in text
    assert "-35.50 EUR" in text
    assert "Unmatched bank line" in text


# --- the admin --------------------------------------------------------------------------------


def test_admin_queue_renders_and_its_actions_call_the_services(queue, make_user):
    clerk = make_user(Role.AR_CLERK)
    client = verified_client(clerk)
    url = reverse("admin:reconciliation_reconciliationexception_changelist")
    first, second = queue
    # the list
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Unmatched bank line" in html
    assert "120.00 EUR" in html
    assert "Assign to me" in html
    # assign to me
    client.post(url, {"action": "assign_to_me", ACTION_CHECKBOX_NAME: [first.pk]})
    first.refresh_from_db()
    assert first.assignee == clerk
    mine = client.get(url, {"assignee": "mine"}).content.decode()
    assert f"/{first.pk}/change/" in mine
    assert f"/{second.pk}/change/" not in mine
    # resolve: an intermediate page asks for the note
    ask = client.post(url, {"action": "resolve_selected", ACTION_CHECKBOX_NAME: [first.pk]})
    assert ask.status_code == 200
    assert "Resolution note" in ask.content.decode()
    first.refresh_from_db()
    assert first.status == ExceptionStatus.OPEN
    done = client.post(
        url,
        {
            "action": "resolve_selected",
            ACTION_CHECKBOX_NAME: [first.pk],
            "apply_note": "1",
            "note": "Matched by hand to INV-7.",
        },
    )
    assert done.status_code == 302
    first.refresh_from_db()
    assert (first.status, first.resolution_note, first.resolved_by) == (
        ExceptionStatus.RESOLVED,
        "Matched by hand to INV-7.",
        clerk,
    )
    # reopen with a reason
    client.post(
        url,
        {
            "action": "reopen_selected",
            ACTION_CHECKBOX_NAME: [first.pk],
            "apply_note": "1",
            "note": "Wrong invoice.",
        },
    )
    first.refresh_from_db()
    assert first.status == ExceptionStatus.OPEN
    # the report of the selected ones
    report = client.post(url, {"action": "download_csv", ACTION_CHECKBOX_NAME: [second.pk]})
    rows = list(csv.reader(io.StringIO(report.content.decode())))
    assert [row[0] for row in rows] == ["id", str(second.pk)]
    pdf = client.post(url, {"action": "download_pdf", ACTION_CHECKBOX_NAME: [second.pk]})
    assert pdf["Content-Type"] == "application/pdf"
    assert "-35.50 EUR" in pdf_text(pdf.content)
    # detail and history
    change = reverse("admin:reconciliation_reconciliationexception_change", args=[first.pk])
    assert client.get(change).status_code == 200
    history = client.get(
        reverse("admin:reconciliation_reconciliationexception_history", args=[first.pk])
    )
    assert history.status_code == 200
    assert AuditEvent.objects.filter(actor=clerk).count() == 3


def test_admin_auditor_sees_the_queue_but_cannot_resolve(queue, make_user):
    client = verified_client(make_user(Role.AUDITOR))
    url = reverse("admin:reconciliation_reconciliationexception_changelist")
    page = client.get(url)
    assert page.status_code == 200
    assert "Assign to me" not in page.content.decode()
    client.post(
        url,
        {
            "action": "resolve_selected",
            ACTION_CHECKBOX_NAME: [queue[0].pk],
            "apply_note": "1",
            "note": "no",
        },
    )
    queue[0].refresh_from_db()
    assert queue[0].status == ExceptionStatus.OPEN
