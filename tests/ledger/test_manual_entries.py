"""Manual journal entries above the threshold need someone other than their author (issue 15
hole 5): the integration role's 1,000,000 entry no longer posts by itself."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import ManualEntryStatus
from core.ledger.exceptions import PeriodLocked
from core.ledger.manual import (
    ApproverIsAuthor,
    ManualEntryDecided,
    manual_entry_approve,
    manual_entry_reject,
    manual_entry_submit,
)
from core.ledger.models import JournalEntry, ManualEntry
from core.ledger.services import period_lock_set
from core.roles import Role
from core.system_settings import SystemSettingsError, load_system_settings

pytestmark = pytest.mark.django_db
ENTRIES = "/api/ledger/journal-entries"
MANUAL = "/api/ledger/manual-entries"
DAY = "2026-04-15"


def body(amount: str, currency: str = "USD") -> dict:
    return {
        "entry_date": DAY,
        "description": "Reclass",
        "lines": [
            {"account": "6000", "currency": currency, "debit": amount},
            {"account": "1900", "currency": currency, "credit": amount},
        ],
    }


def submit(actor, amount: str, currency: str = "USD") -> ManualEntry:
    data = body(amount, currency)
    return manual_entry_submit(
        actor=actor,
        entry_date=date.fromisoformat(data["entry_date"]),
        description=data["description"],
        lines=data["lines"],
    )


@pytest.fixture
def threshold(settings):
    def set_to(value: str) -> None:
        settings.SYSTEM_SETTINGS = dataclasses.replace(
            settings.SYSTEM_SETTINGS,
            ledger=dataclasses.replace(
                settings.SYSTEM_SETTINGS.ledger, manual_approval_threshold=Decimal(value)
            ),
        )

    set_to("10000")
    return set_to


def test_the_integration_role_cannot_post_a_million_without_approval(
    integration_client, client_for, threshold
) -> None:
    # given the probe's request: an integration posts a 1,000,000 manual entry
    before = JournalEntry.objects.count()
    response = integration_client.post(ENTRIES, body("1000000.00"), format="json")
    # then nothing is posted: it waits for a person's approval
    assert response.status_code == 202, response.content
    pending = response.json()
    assert pending["status"] == ManualEntryStatus.PENDING_APPROVAL
    assert pending["journal_entry"] is None
    assert Decimal(pending["amount_functional"]) == Decimal("1000000")
    assert JournalEntry.objects.count() == before
    # the integration cannot approve it, nor can its author in any role
    approve = f"{MANUAL}/{pending['id']}/approve"
    assert integration_client.post(approve).status_code == 403
    # a controller approves it and it is posted, authored by the integration
    controller = client_for(Role.CONTROLLER)
    approved = controller.post(approve)
    assert approved.status_code == 200, approved.content
    entry = JournalEntry.objects.get(pk=approved.json()["journal_entry"])
    assert entry.created_by.username == pending["author"]
    assert approved.json()["decided_by"] != pending["author"]
    assert sum(line.debit for line in entry.lines.all()) == Decimal("1000000")
    # approving again is a conflict, and posts nothing more
    again = controller.post(approve)
    assert again.status_code == 409
    assert again.json()["code"] == "manual_entry_decided"
    assert JournalEntry.objects.count() == before + 1


def test_at_or_under_the_threshold_it_posts_at_once(integration_client, threshold) -> None:
    response = integration_client.post(ENTRIES, body("10000.00"), format="json")
    assert response.status_code == 201, response.content
    entry = JournalEntry.objects.get(pk=response.json()["id"])
    manual = ManualEntry.objects.get(journal_entry=entry)
    assert manual.status == ManualEntryStatus.POSTED
    assert manual.decided_by is None


def test_the_author_cannot_approve_their_own_entry(make_user, threshold) -> None:
    controller = make_user(Role.CONTROLLER)
    manual = submit(controller, "50000.00")
    assert manual.status == ManualEntryStatus.PENDING_APPROVAL
    with pytest.raises(ApproverIsAuthor):
        manual_entry_approve(entry_id=manual.pk, actor=controller)
    with pytest.raises(ApproverIsAuthor):
        manual_entry_reject(entry_id=manual.pk, actor=controller, reason="mine")
    # and the database refuses a decision by the author written around the service
    with pytest.raises(Exception, match="decider_not_author"):
        ManualEntry.objects.filter(pk=manual.pk).update(decided_by=controller)


@pytest.mark.parametrize("role", [Role.AR_CLERK, Role.AP_CLERK, Role.APPROVER, Role.AUDITOR])
def test_roles_without_the_permission_cannot_decide(make_user, role, threshold) -> None:
    manual = submit(make_user(Role.CONTROLLER), "50000.00")
    with pytest.raises(PermissionDeniedError):
        manual_entry_approve(entry_id=manual.pk, actor=make_user(role))
    with pytest.raises(PermissionDeniedError):
        manual_entry_approve(entry_id=manual.pk, actor=None)


def test_a_rejected_entry_is_never_posted(make_user, client_for, threshold) -> None:
    manual = submit(make_user(Role.CONTROLLER), "50000.00")
    response = client_for(Role.FINANCE_ADMIN).post(
        f"{MANUAL}/{manual.pk}/reject", {"reason": "Duplicate of last week's"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == ManualEntryStatus.REJECTED
    assert response.json()["rejection_reason"] == "Duplicate of last week's"
    with pytest.raises(ManualEntryDecided):
        manual_entry_approve(entry_id=manual.pk, actor=make_user(Role.CONTROLLER))
    assert not JournalEntry.objects.filter(description="Reclass").exists()
    # the decision is in the entry's history
    assert [h.status for h in manual.history.order_by("history_id")] == [
        ManualEntryStatus.PENDING_APPROVAL,
        ManualEntryStatus.REJECTED,
    ]


def test_approval_checks_the_period_lock_again(make_user, threshold) -> None:
    admin = make_user(Role.FINANCE_ADMIN)
    manual = submit(make_user(Role.CONTROLLER), "50000.00")
    period_lock_set(lock_date=date(2026, 4, 30), reason="April closed", actor=admin)
    with pytest.raises(PeriodLocked):
        manual_entry_approve(entry_id=manual.pk, actor=admin)
    manual.refresh_from_db()
    assert manual.status == ManualEntryStatus.PENDING_APPROVAL


def test_the_threshold_is_in_the_functional_currency(make_user, threshold) -> None:
    # 9,000 EUR at 1.20 is 10,800 USD: over a 10,000 USD threshold
    fx_rate_set(base="EUR", quote="USD", rate=Decimal("1.2"), rate_date=date(2026, 4, 10))
    manual = submit(make_user(Role.CONTROLLER), "9000.00", currency="EUR")
    assert manual.status == ManualEntryStatus.PENDING_APPROVAL
    assert manual.amount_functional == Decimal("10800")


def test_a_zero_threshold_sends_every_entry_for_approval(make_user, threshold) -> None:
    threshold("0")
    manual = submit(make_user(Role.CONTROLLER), "0.01")
    assert manual.status == ManualEntryStatus.PENDING_APPROVAL


def test_the_list_filters_by_status(make_user, client_for, threshold) -> None:
    controller = make_user(Role.CONTROLLER)
    pending = submit(controller, "50000.00")
    submit(controller, "5.00")
    response = client_for(Role.AUDITOR).get(MANUAL, {"status": "pending_approval"})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [pending.pk]
    assert client_for(Role.AUDITOR).get(MANUAL, {"status": "nope"}).status_code == 400
    assert client_for(Role.AR_CLERK).get(MANUAL).status_code == 403


def test_the_threshold_setting_is_validated(tmp_path) -> None:
    source = (
        "billing: {currency: USD, tax_rate: 0.08, payment_terms: 30, late_fee_percentage: 1.5,"
        " collections_grace_period: 5}\n"
        "payment_methods: [credit_card]\n"
        "integrations: {payment_processors: [stripe], banking: [plaid]}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(source)
    assert load_system_settings(str(path)).ledger.manual_approval_threshold == Decimal("10000")
    path.write_text(source + "ledger: {manual_approval_threshold: 2500.50}\n")
    assert load_system_settings(str(path)).ledger.manual_approval_threshold == Decimal("2500.50")
    path.write_text(source + "ledger: {manual_approval_threshold: -1}\n")
    with pytest.raises(SystemSettingsError, match="manual_approval_threshold"):
        load_system_settings(str(path))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cents=st.integers(min_value=1, max_value=10**11), limit=st.integers(0, 10**9))
def test_posted_at_once_exactly_when_not_over_the_threshold(
    cents, limit, make_user, threshold
) -> None:
    threshold(str(Decimal(limit).scaleb(-2)))
    amount = Decimal(cents).scaleb(-2)

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        manual = submit(make_user(Role.CONTROLLER), f"{amount:.2f}")
        over = amount > Decimal(limit).scaleb(-2)
        assert (manual.status == ManualEntryStatus.PENDING_APPROVAL) == over
        assert (manual.journal_entry_id is None) == over
        raise Rollback


def test_posted_entry_counts_in_the_database(make_user, threshold) -> None:
    # the posted/entry constraint holds in the database, not only in the service
    manual = submit(make_user(Role.CONTROLLER), "50000.00")
    with pytest.raises(Exception, match="posted_has_entry"), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_manualentry SET status = 'posted' WHERE id = %s", [manual.pk])


def test_a_controller_approves_in_the_admin_and_the_author_sees_no_button(
    make_user, threshold
) -> None:
    from django.urls import reverse

    from tests.conftest import verified_client

    author = make_user(Role.CONTROLLER)
    manual = submit(author, "50000.00")
    page = reverse("admin:ledger_manualentry_change", args=[manual.pk])
    approve_url = reverse("admin:ledger_manualentry_approve_detail", args=[manual.pk])
    # the author's page offers no decision, and posting to it is refused with the reason
    own = verified_client(author)
    assert approve_url not in own.get(page).content.decode()
    refused = own.post(approve_url, {"confirm": "1"}, follow=True)
    assert "someone other than its author" in refused.context["error"]
    assert ManualEntry.objects.get(pk=manual.pk).status == ManualEntryStatus.PENDING_APPROVAL
    # another controller sees the lines, approves, and the entry is posted
    other = verified_client(make_user(Role.CONTROLLER))
    shown = other.get(page).content.decode()
    assert approve_url in shown
    assert "50,000.00" in shown
    other.post(approve_url, {"confirm": "1"}, follow=True)
    manual.refresh_from_db()
    assert manual.status == ManualEntryStatus.POSTED
    assert manual.journal_entry is not None
    # an auditor reads the list, never decides
    auditor = verified_client(make_user(Role.AUDITOR))
    listing = auditor.get(reverse("admin:ledger_manualentry_changelist"))
    assert listing.status_code == 200
    assert auditor.post(approve_url, {"confirm": "1"}).status_code == 403


def test_a_rejection_in_the_admin_needs_a_reason(make_user, threshold) -> None:
    from django.urls import reverse

    from tests.conftest import verified_client

    manual = submit(make_user(Role.CONTROLLER), "50000.00")
    url = reverse("admin:ledger_manualentry_reject_detail", args=[manual.pk])
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    client.post(url, {"confirm": "1", "reason": ""}, follow=True)
    assert ManualEntry.objects.get(pk=manual.pk).status == ManualEntryStatus.PENDING_APPROVAL
    client.post(url, {"confirm": "1", "reason": "Wrong period"}, follow=True)
    manual.refresh_from_db()
    assert (manual.status, manual.rejection_reason) == (ManualEntryStatus.REJECTED, "Wrong period")
