"""The bank reconciliation report (statement vs book balance with the reconciling items),
a controller's sign-off that locks the period in the ledger (RELIABILITY.md C4), reopening,
and the audit trail of it all."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from billing.enums import PaymentMethodType
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from core.exceptions import DomainError, PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.exceptions import PeriodLocked
from core.ledger.models import Account, PeriodLock
from core.ledger.services import LineSpec, journal_post
from core.roles import Role
from reconciliation.enums import AuditAction, SignOffStatus
from reconciliation.models import AuditEvent, BankAccount, SignOff, Statement, StatementLine
from reconciliation.selectors_close import reconciliation_report
from reconciliation.services_close import PeriodSignedOff, sign_off_create, sign_off_reopen
from reconciliation.services_matching import match_manual, match_undo
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db
D = Decimal
START, END = date(2026, 10, 1), date(2026, 10, 31)


def account_by_role(role: str) -> Account:
    return Account.objects.get(role=role)


def invoice_for(clerk, customer, amount: str):
    return invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[LineInput(description="Service", quantity=D(1), unit_price=D(amount),
                         tax_rate=D(0))],
        issue=True,
    )  # fmt: skip


def statement(account: BankAccount, lines: list[tuple[date, str, str]], opening: str) -> Statement:
    total = sum((D(amount) for _, amount, _ in lines), D(0))
    st = Statement.objects.create(
        bank_account=account, format="csv", currency=account.currency, control="balances",
        opening_balance=D(opening), closing_balance=D(opening) + total, opening_date=START,
        closing_date=END, file_sha256="a" * 64, fingerprint="b" * 64,
    )  # fmt: skip
    for n, (day, amount, text) in enumerate(lines, start=1):
        StatementLine.objects.create(
            statement=st, bank_account=account, position=n, booking_date=day,
            amount=D(amount), currency=account.currency, description=text,
            fingerprint=f"{n:064d}",
        )  # fmt: skip
    return st


@pytest.fixture
def october(make_user, make_bank_account):
    """A USD bank account for October: opening 1,000.00 booked; a customer payment of 300.00
    matched by a clerk; a 5.00 bank fee not booked; a 200.00 payment booked on the 30th that
    the bank has not shown yet. Statement 1,295.00; books 1,500.00."""
    clerk = make_user(Role.AR_CLERK)
    account = make_bank_account("USD", name="US operating")
    journal_post(
        lines=[
            LineSpec(account.ledger_account, "USD", debit=D("1000.00")),
            LineSpec(account_by_role(AccountRole.EQUITY), "USD", credit=D("1000.00")),
        ],
        entry_date=date(2026, 9, 30),
        description="Opening bank balance",
    )
    customer = customer_create(actor=clerk, name="Acme", email="ap@acme.example", currency="USD")
    paid_by_bank = invoice_for(clerk, customer, "300.00")
    paid_later = invoice_for(clerk, customer, "200.00")
    st = statement(
        account,
        [(date(2026, 10, 5), "300.00", paid_by_bank.number), (date(2026, 10, 20), "-5.00", "FEE")],
        opening="1000.00",
    )
    line_300, line_fee = st.lines.order_by("position")
    match = match_manual(actor=clerk, line_ids=[line_300.pk], invoice_ids=[paid_by_bank.pk])
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("200.00"),
        currency="USD",
        method=PaymentMethodType.WIRE_TRANSFER,
        received_date=date(2026, 10, 30),
        reference="wire in transit",
        allocations=[AllocationInput(paid_later.pk, D("200.00"))],
    )
    return {"account": account, "clerk": clerk, "match": match, "fee_line": line_fee}


def test_report_lists_what_explains_the_difference(october) -> None:
    # when the report of October is made
    report = reconciliation_report(
        bank_account_id=october["account"].pk, period_start=START, period_end=END
    )
    # then statement 1,295.00 and books 1,500.00 differ by the fee and the payment in transit
    assert report.statement_balance == D("1295.00")
    assert report.book_balance == D("1500.00")
    assert [(x.line_id, x.amount, x.why) for x in report.bank_items] == [
        (october["fee_line"].pk, D("-5.00"), "not matched")
    ]
    assert [(x.amount, x.entry_date) for x in report.book_items] == [
        (D("200.00"), date(2026, 10, 30))
    ]
    assert report.adjusted_book_balance == D("1295.00")
    assert report.unexplained == 0
    assert report.line_counts == {"matched": 1, "unmatched": 1}


def test_controller_signs_off_and_the_period_is_locked_for_everyone(
    october, make_user, finance_admin
) -> None:
    controller = make_user(Role.CONTROLLER)
    account = october["account"]
    # when the controller signs October off
    sign_off = sign_off_create(
        actor=controller,
        bank_account_id=account.pk,
        period_start=START,
        period_end=END,
        note="Fee to be booked in November",
    )
    # then the report is kept as signed, and the bank's ledger account is locked in USD
    assert sign_off.status == SignOffStatus.SIGNED
    assert (sign_off.statement_balance, sign_off.book_balance) == (D("1295.00"), D("1500.00"))
    assert sign_off.report["bank_items_count"] == 1
    lock = sign_off.period_lock
    assert (lock.account_id, lock.currency, lock.lock_date) == (
        account.ledger_account_id,
        "USD",
        END,
    )
    # and no one posts to it in October, a finance admin included; November is open
    fee = [
        LineSpec(account_by_role(AccountRole.BANK_FEES), "USD", debit=D("5.00")),
        LineSpec(account.ledger_account, "USD", credit=D("5.00")),
    ]
    with pytest.raises(PeriodLocked):
        journal_post(lines=fee, entry_date=date(2026, 10, 20), actor=finance_admin)
    journal_post(lines=fee, entry_date=date(2026, 11, 2), actor=finance_admin)
    # and the period's matches can be neither undone nor made
    with pytest.raises(PeriodSignedOff):
        match_undo(match_id=october["match"].pk, actor=october["clerk"], reason="wrong")
    with pytest.raises(PeriodSignedOff):
        match_manual(
            actor=october["clerk"],
            line_ids=[october["fee_line"].pk],
            account_id=account_by_role(AccountRole.BANK_FEES).pk,
        )
    assert october["match"].lines.get().line.status == "matched"
    # and the same period cannot be signed twice
    with pytest.raises(PeriodSignedOff):
        sign_off_create(
            actor=controller, bank_account_id=account.pk, period_start=START, period_end=END
        )
    # and the audit trail has it, with the note
    event = AuditEvent.objects.get(action=AuditAction.SIGN_OFF)
    assert (event.actor, event.subject, event.reason) == (
        controller,
        f"signoff:{sign_off.pk}",
        "Fee to be booked in November",
    )


def test_reopening_moves_the_lock_back_and_is_audited(october, make_user) -> None:
    controller = make_user(Role.CONTROLLER)
    account = october["account"]
    sign_off = sign_off_create(
        actor=controller, bank_account_id=account.pk, period_start=START, period_end=END
    )
    # when reopened with a reason
    sign_off_reopen(actor=controller, sign_off_id=sign_off.pk, reason="Fee booked late")
    # then October takes postings again: the clerk matches the fee line to bank fees
    match_manual(
        actor=october["clerk"],
        line_ids=[october["fee_line"].pk],
        account_id=account_by_role(AccountRole.BANK_FEES).pk,
    )
    sign_off.refresh_from_db()
    assert sign_off.status == SignOffStatus.REOPENED
    assert sign_off.reopen_reason == "Fee booked late"
    newest = PeriodLock.objects.filter(account=account.ledger_account).latest()
    assert newest.lock_date == date.min
    assert list(
        AuditEvent.objects.filter(subject=f"signoff:{sign_off.pk}")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == [AuditAction.SIGN_OFF, AuditAction.SIGN_OFF_REOPENED]
    # and with the fee matched and booked, signing off again leaves no bank item
    again = sign_off_create(
        actor=controller, bank_account_id=account.pk, period_start=START, period_end=END
    )
    assert again.report["bank_items_count"] == 0


def test_an_unexplained_difference_is_refused_and_nothing_is_locked(
    make_user, make_bank_account
) -> None:
    # given a statement opening with 1,000.00 that the books never recorded
    controller = make_user(Role.CONTROLLER)
    account = make_bank_account("USD")
    statement(account, [(date(2026, 10, 5), "-5.00", "FEE")], opening="1000.00")
    # when / then
    with pytest.raises(DomainError) as exc:
        sign_off_create(
            actor=controller, bank_account_id=account.pk, period_start=START, period_end=END
        )
    assert exc.value.code == "unexplained_difference"
    assert "1000.00" in exc.value.message
    assert not SignOff.objects.exists()
    assert not PeriodLock.objects.exists()


def test_segregation_of_duties_and_roles(october, make_user) -> None:
    account = october["account"]
    # a clerk may not sign off at all
    with pytest.raises(PermissionDeniedError):
        sign_off_create(
            actor=october["clerk"], bank_account_id=account.pk, period_start=START, period_end=END
        )
    # a controller who matched lines of the period may not sign it off
    controller = make_user(Role.CONTROLLER)
    match_manual(
        actor=controller,
        line_ids=[october["fee_line"].pk],
        account_id=account_by_role(AccountRole.BANK_FEES).pk,
    )
    with pytest.raises(PermissionDeniedError) as exc:
        sign_off_create(
            actor=controller, bank_account_id=account.pk, period_start=START, period_end=END
        )
    assert exc.value.code == "signer_made_matches"
    # another controller may
    other = make_user(Role.CONTROLLER)
    sign_off = sign_off_create(
        actor=other, bank_account_id=account.pk, period_start=START, period_end=END
    )
    assert sign_off.report["bank_items_count"] == 0


def test_a_period_that_has_not_ended_cannot_be_signed(october, make_user) -> None:
    with pytest.raises(DomainError) as exc:
        sign_off_create(
            actor=make_user(Role.CONTROLLER),
            bank_account_id=october["account"].pk,
            period_start=date(2026, 11, 1),
            period_end=date(2099, 11, 30),
        )
    assert exc.value.code == "period_not_ended"


def test_audit_events_cannot_be_changed_or_deleted(october) -> None:
    # given the audit trail of the manual match
    assert AuditEvent.objects.filter(action=AuditAction.MATCH_MANUAL).exists()
    # when someone tries to edit or delete it around the application, the database refuses
    for statement_sql in (
        "UPDATE reconciliation_auditevent SET reason = 'edited'",
        "DELETE FROM reconciliation_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="audit events cannot be updated or deleted"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement_sql)
    assert not AuditEvent.objects.filter(reason="edited").exists()


def test_api_report_sign_off_and_audit_trail(october, client_for) -> None:
    account = october["account"]
    auditor, controller = client_for(Role.AUDITOR), client_for(Role.CONTROLLER)
    url = reverse("reconciliation-report", args=[account.pk])
    # the report, for an auditor too
    report = auditor.get(url, {"period_start": "2026-10-01", "period_end": "2026-10-31"})
    assert report.status_code == 200, report.content
    body = report.json()
    assert (body["statement_balance"], body["book_balance"], body["unexplained"]) == (
        "1295.00",
        "1500.00",
        "0.00",
    )
    assert body["bank_items"][0]["amount"] == "-5.00"
    # bad input is a 400 naming the field
    bad = auditor.get(url, {"period_start": "October"})
    assert bad.status_code == 400
    assert "period_start" in bad.json()["errors"] or "period_start" in str(bad.json())
    # an auditor may not sign off
    payload = {"bank_account": account.pk, "period_start": "2026-10-01", "period_end": "2026-10-31"}
    assert (
        auditor.post(reverse("reconciliation-sign-offs"), payload, format="json").status_code == 403
    )
    # a controller does: 201, and again 409
    created = controller.post(reverse("reconciliation-sign-offs"), payload, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "signed"
    again = controller.post(reverse("reconciliation-sign-offs"), payload, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "period_signed_off"
    # the audit trail lists the sign-off and the match, filtered by action
    events = auditor.get(reverse("reconciliation-audit-events"), {"action": "sign_off"})
    assert events.status_code == 200
    assert [e["subject"] for e in events.json()["results"]] == [f"signoff:{created.json()['id']}"]
    assert auditor.get(reverse("reconciliation-audit-events"), {"action": "x"}).status_code == 400
    # reopening needs a reason
    reopen = reverse("reconciliation-sign-off-reopen", args=[created.json()["id"]])
    assert controller.post(reopen, {}, format="json").status_code == 400
    reopened = controller.post(reopen, {"reason": "Late fee"}, format="json")
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "reopened"


def test_admin_report_and_sign_off_screen(october, make_user) -> None:
    controller = verified_client(make_user(Role.CONTROLLER))
    url = reverse("admin:reconciliation_signoff_report")
    query = f"?bank_account={october['account'].pk}&period_start=2026-10-01&period_end=2026-10-31"
    page = controller.get(url + query)
    assert page.status_code == 200
    text = page.content.decode()
    assert "1295.00" in text
    assert "1500.00" in text
    assert "Sign off through" in text
    # when the controller signs off from the screen: first the confirmation page
    confirm = controller.post(url + query, {"note": "ok"})
    assert confirm.status_code == 200
    assert "cannot be changed" in confirm.content.decode()
    assert not SignOff.objects.exists()
    # and then its button
    done = controller.post(url + query, {"note": "ok", "confirm": "1"})
    # then it lands on the sign-off, which shows the report as signed
    assert done.status_code == 302
    sign_off = SignOff.objects.get()
    detail = controller.get(done["Location"])
    assert detail.status_code == 200
    assert "Report as signed" in detail.content.decode()
    assert "Reopen this period" in detail.content.decode()
    # an auditor sees the report but no sign-off form
    auditor = verified_client(make_user(Role.AUDITOR))
    seen = auditor.get(url + query).content.decode()
    assert "1295.00" in seen
    assert "Sign off through" not in seen
    assert (
        auditor.post(reverse("admin:reconciliation_signoff_reopen", args=[sign_off.pk])).status_code
        == 403
    )
    assert auditor.get(reverse("admin:reconciliation_auditevent_changelist")).status_code == 200
