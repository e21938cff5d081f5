"""Month-end close (issue 16 section 4): the checklist, the close that locks the month, the
reopening with a reason, in order and by the right roles."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.ledger.checks import ledger_check_run
from core.ledger.exceptions import PeriodLocked
from core.ledger.models import Account, MonthClose
from core.ledger.selectors import period_lock_date
from core.ledger.services import LineSpec, journal_post
from core.roles import Role
from payables.services.bills import BillLineInput, bill_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from reconciliation.models import SignOff
from reconciliation.services import bank_account_create
from tests.conftest import verified_client


def month_before(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


LAST = month_before(timezone.localdate())  # the last month that has ended
EARLIER = month_before(LAST)


def end_of(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def post(accounts: dict[str, Account], on: date, amount: str = "10.00") -> None:
    journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D(amount)),
            LineSpec(accounts["revenue"], "USD", credit=D(amount)),
        ],
        entry_date=on,
        description="sale",
    )


@pytest.fixture
def controller(make_user):
    return make_user(Role.CONTROLLER)


@pytest.fixture
def admin(make_user):
    return make_user(Role.FINANCE_ADMIN)


def close(user, period: date):
    return verified_client(user).post(
        "/api/ledger/closes", {"period": f"{period:%Y-%m}"}, format="json"
    )


def red_codes(response) -> set[str]:
    return {item["code"] for item in response.json()["details"]["items"]}


def test_a_clean_month_closes_and_nobody_posts_into_it_afterwards(
    accounts, controller, admin
) -> None:
    # given: the month's postings, and the ledger checked after its end
    post(accounts, LAST + timedelta(days=3))
    ledger_check_run()
    # when the controller closes it
    response = close(controller, LAST)
    # then the books are locked through its last day, the checklist kept as it stood
    assert response.status_code == 201, response.json()
    assert response.json()["lock_date"] == end_of(LAST).isoformat()
    assert period_lock_date() == end_of(LAST)
    assert all(item["ok"] for item in response.json()["checklist"])
    # and a posting into it is refused, for a finance admin too
    with pytest.raises(PeriodLocked):
        journal_post(
            lines=[
                LineSpec(accounts["cash"], "USD", debit=D("1.00")),
                LineSpec(accounts["revenue"], "USD", credit=D("1.00")),
            ],
            entry_date=end_of(LAST),
            description="late",
            actor=admin,
        )
    # and closing it again is a conflict
    assert close(controller, LAST).status_code == 409


def test_each_red_item_is_named_and_the_close_waits_until_all_are_green(
    accounts, controller, make_user
) -> None:
    # given a month with a draft invoice, a bill not yet approved, a bank account not signed
    # off and no ledger check since it ended
    clerk, ap_clerk = make_user(Role.AR_CLERK), make_user(Role.AP_CLERK)
    post(accounts, LAST + timedelta(days=1))
    customer = customer_create(actor=clerk, name="Acme", email="ap@acme.example", currency="USD")
    draft = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[LineInput(description="x", quantity=D(1), unit_price=D(5), tax_rate=D(0))],
        issue=False,
    )
    type(draft).objects.filter(pk=draft.pk).update(
        created_at=timezone.make_aware(datetime.combine(LAST, time(12)))
    )
    vendor = vendor_create(
        actor=ap_clerk,
        name="Paper Co",
        email="ar@paper.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Paper Co", routing_number="011000015", account_number="1234567"
        ),
    )
    vendor_activate(vendor_id=vendor.pk, actor=controller)
    bill = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="P-1",
        currency="USD",
        bill_date=LAST + timedelta(days=2),
        lines=[BillLineInput(description="Paper", quantity=D(1), unit_price=D(75))],
    )
    bank = bank_account_create(actor=None, name="Operating", currency="USD")
    # when the controller tries to close
    response = close(controller, LAST)
    # then 409 names every red item, and nothing is locked
    assert response.status_code == 409
    assert response.json()["code"] == "close_items_red"
    assert red_codes(response) == {
        "billing.no_draft_invoices",
        "payables.no_unapproved_bills",
        "reconciliation.bank_accounts_signed_off",
        "ledger_check",
    }
    assert "Operating" in response.json()["message"]
    assert period_lock_date() is None
    assert not MonthClose.objects.exists()
    # and the month's page says the same, live
    page = verified_client(controller).get(f"/api/ledger/closes/{LAST:%Y-%m}").json()
    assert page["closed"] is False
    assert {i["code"] for i in page["items"] if not i["ok"]} == red_codes(response)
    # when each is put right
    draft.delete()
    type(bill).objects.filter(pk=bill.pk).update(status="void")
    SignOff.objects.create(
        bank_account=bank,
        period_start=LAST,
        period_end=end_of(LAST),
        currency="USD",
        statement_balance=0,
        book_balance=0,
        signed_by=controller,
    )
    ledger_check_run()
    # then the month closes
    assert close(controller, LAST).status_code == 201


def test_months_close_in_order(accounts, controller) -> None:
    post(accounts, EARLIER + timedelta(days=5))
    post(accounts, LAST + timedelta(days=5))
    ledger_check_run()
    refused = close(controller, LAST)
    assert refused.status_code == 409
    assert red_codes(refused) == {"earlier_months_closed"}
    assert f"{EARLIER:%Y-%m}" in refused.json()["message"]
    assert close(controller, EARLIER).status_code == 201
    assert close(controller, LAST).status_code == 201
    assert period_lock_date() == end_of(LAST)


def test_a_month_not_yet_ended_cannot_be_closed(controller) -> None:
    response = close(controller, timezone.localdate())
    assert response.status_code == 400
    assert response.json()["code"] == "month_not_ended"


def test_reopening_needs_a_finance_admin_and_a_reason_and_reopens_later_months(
    accounts, controller, admin
) -> None:
    # given two closed months
    post(accounts, EARLIER + timedelta(days=5))
    ledger_check_run()
    assert close(controller, EARLIER).status_code == 201
    assert close(controller, LAST).status_code == 201
    url = f"/api/ledger/closes/{EARLIER:%Y-%m}/reopen"
    # when the controller, or a finance admin without a reason, tries
    assert verified_client(controller).post(url, {"reason": "x"}, format="json").status_code == 403
    assert verified_client(admin).post(url, {"reason": " "}, format="json").status_code == 400
    # then nothing changed
    assert period_lock_date() == end_of(LAST)
    # when a finance admin reopens the earlier month with a reason
    response = verified_client(admin).post(url, {"reason": "late supplier credit"}, format="json")
    # then the lock goes back to the end of the month before, both closes are reopened (kept)
    assert response.status_code == 200, response.json()
    assert response.json()["reopened_by"] == admin.username
    assert response.json()["reopen_reason"] == "late supplier credit"
    assert period_lock_date() == EARLIER - timedelta(days=1)
    assert not MonthClose.objects.filter(reopened_at=None).exists()
    later = MonthClose.objects.get(period=LAST)
    assert later.reopen_reason == f"with {EARLIER:%Y-%m}: late supplier credit"
    # and the month takes postings again, then closes again: a second close in its history
    post(accounts, EARLIER + timedelta(days=6), "3.00")
    ledger_check_run()
    assert close(controller, EARLIER).status_code == 201
    assert MonthClose.objects.filter(period=EARLIER).count() == 2
    listed = verified_client(admin).get("/api/ledger/closes").json()["results"]
    assert [(c["period"], c["reopened_at"] is None) for c in listed][:2] == [
        (f"{LAST:%Y-%m}", False),
        (f"{EARLIER:%Y-%m}", True),
    ]
    # reopening a month that is not closed is 404
    other = f"/api/ledger/closes/{LAST:%Y-%m}/reopen"
    assert verified_client(admin).post(other, {"reason": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("role", [Role.AR_CLERK, Role.AP_CLERK, Role.APPROVER, Role.AUDITOR])
def test_only_the_controller_closes(make_user, role) -> None:
    ledger_check_run()
    assert close(make_user(role), LAST).status_code == 403
    assert not MonthClose.objects.exists()


def test_the_auditor_reads_closes_and_checklists(make_user, controller) -> None:
    auditor = verified_client(make_user(Role.AUDITOR))
    assert auditor.get("/api/ledger/closes").status_code == 200
    assert auditor.get(f"/api/ledger/closes/{LAST:%Y-%m}").status_code == 200


@pytest.mark.parametrize("period", ["2026-13", "202611", "2026-1", "1899-12", "nov", "2026-11%0A"])
def test_a_bad_period_is_a_400_naming_it(controller, period) -> None:
    response = verified_client(controller).get(f"/api/ledger/closes/{period}")
    assert response.status_code == 400
    assert "period" in response.json()["errors"]
    posted = verified_client(controller).post(
        "/api/ledger/closes", {"period": period}, format="json"
    )
    assert posted.status_code == 400
    assert "period" in posted.json()["errors"]


# --------------------------------------------------------------------------------- workspace


def test_the_workspace_shows_a_months_checklist_and_closes_it_when_green(
    accounts, controller, admin
) -> None:
    from django.urls import reverse

    post(accounts, LAST + timedelta(days=3))
    page_url = reverse("admin:ledger_monthclose_close_page") + f"?period={LAST:%Y-%m}"
    client = verified_client(controller)
    # red: the ledger was not checked after the month's end; the page says so and refuses
    page = client.get(page_url)
    assert page.status_code == 200
    text = page.content.decode()
    assert f"Close {LAST:%B %Y}" in text
    assert "Run the ledger check after the month" in text
    refused = client.post(page_url, {"confirm": "1"}, follow=True)
    assert "cannot be closed" in refused.context["error"]
    assert not MonthClose.objects.exists()
    # green: it closes, and the list shows it locked through the month's last day
    ledger_check_run()
    done = client.post(page_url, {"confirm": "1"}, follow=True)
    assert done.status_code == 200
    close = MonthClose.objects.get()
    listing = client.get(reverse("admin:ledger_monthclose_changelist")).content.decode()
    assert f"{end_of(LAST):%Y-%m-%d}" in listing
    # a finance admin reopens it from its page, with a reason
    reopen_url = reverse("admin:ledger_monthclose_reopen_detail", args=[close.pk])
    detail = verified_client(admin).get(reverse("admin:ledger_monthclose_change", args=[close.pk]))
    assert reopen_url in detail.content.decode()
    assert (
        reopen_url
        not in client.get(
            reverse("admin:ledger_monthclose_change", args=[close.pk])
        ).content.decode()
    )
    verified_client(admin).post(reopen_url, {"confirm": "1", "reason": "late credit"}, follow=True)
    close.refresh_from_db()
    assert close.reopen_reason == "late credit"
    assert period_lock_date() == LAST - timedelta(days=1)


def test_the_auditor_reads_the_workspace_closes_but_closes_nothing(accounts, make_user) -> None:
    from django.urls import reverse

    ledger_check_run()
    auditor = verified_client(make_user(Role.AUDITOR))
    url = reverse("admin:ledger_monthclose_close_page") + f"?period={LAST:%Y-%m}"
    assert auditor.get(url).status_code == 200
    refused = auditor.post(url, {"confirm": "1"}, follow=True)
    assert "does not allow closing" in refused.context["error"]
    assert not MonthClose.objects.exists()
