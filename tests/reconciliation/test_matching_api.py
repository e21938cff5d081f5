"""``POST/GET /api/accounts/reconcile`` and ``/api/reconciliation/matches|rules``: 202 then
done (eager worker), the results, the suggestion queue, role matrices, refusals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.roles import Role
from reconciliation.enums import MatchStatus
from reconciliation.models import Match, MatchRule, ReconciliationRun, Statement, StatementLine
from tests.reconciliation.conftest import fixture_bytes

D = Decimal
pytestmark = pytest.mark.django_db
RECONCILE = "/api/accounts/reconcile"
MATCHES = "/api/reconciliation/matches"
RULES = "/api/reconciliation/rules"
STARTERS = {Role.FINANCE_ADMIN, Role.AR_CLERK, Role.AP_CLERK, Role.CONTROLLER}
VIEWERS = STARTERS | {Role.AUDITOR}
DECIDERS = STARTERS
ALL_ROLES = [Role.FINANCE_ADMIN, Role.AR_CLERK, Role.AP_CLERK, Role.APPROVER, Role.CONTROLLER,
             Role.AUDITOR]  # fmt: skip


@pytest.fixture
def usd_account(make_bank_account):
    return make_bank_account("USD", name="US operating")


@pytest.fixture
def seeded(usd_account, make_user, django_capture_on_commit_callbacks):
    """One line paying an invoice by reference, one only similar by name, one noise line."""
    clerk = make_user(Role.AR_CLERK)
    customer = customer_create(
        actor=clerk, name="Acme Corp", email="a@acme.example", currency="USD"
    )
    with django_capture_on_commit_callbacks(execute=False):
        invoices = [
            invoice_create(
                actor=clerk,
                customer_id=customer.pk,
                lines=[LineInput(description="S", quantity=D(1), unit_price=D(a), tax_rate=D(0))],
                issue=True,
            )
            for a in ("120.00", "310.00")
        ]
    statement = Statement.objects.create(
        bank_account=usd_account, format="csv", currency="USD", control="none",
        file_sha256="b" * 64, fingerprint="b" * 64,
    )  # fmt: skip
    rows = [
        ("120.00", f"Payment {invoices[0].number}", ""),
        ("310.00", "transfer", "ACMEE"),
        ("77.00", "misc", "Unknown Sender"),
    ]
    for n, (amount, text, name) in enumerate(rows, start=1):
        StatementLine.objects.create(
            statement=statement, bank_account=usd_account, position=n,
            booking_date=invoices[1].issue_date, amount=D(amount), currency="USD",
            description=text, counterparty_name=name, fingerprint=f"{n:064d}",
        )  # fmt: skip
    return usd_account


def start(client: APIClient, account, capture, **body):
    with capture(execute=True):
        return client.post(RECONCILE, {"bank_account": account.pk, **body}, format="json")


def test_reconcile_answers_202_then_the_run_is_done_with_results(
    client_for, seeded, django_capture_on_commit_callbacks
) -> None:
    client = client_for(Role.AR_CLERK)
    # when
    response = start(client, seeded, django_capture_on_commit_callbacks, period_start="2020-01-01")
    # then
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["bank_account"]) == ("queued", seeded.pk)
    detail = client.get(f"{RECONCILE}/{body['id']}")
    assert detail.status_code == 200
    run = detail.json()
    assert {k: run[k] for k in ("status", "auto_matched", "suggested", "unmatched")} == {
        "status": "done",
        "auto_matched": 1,
        "suggested": 1,
        "unmatched": 1,
    }
    assert [(r["status"], r["rule"], r["confidence"]) for r in run["results"]] == [
        ("applied", "reference", "0.9900"),
        ("proposed", "fuzzy_name", run["results"][1]["confidence"]),
    ]
    assert run["results"][0]["reason"].startswith("invoice number INV-")
    assert run["results_truncated"] is False


def test_suggestion_queue_accept_and_reject(
    client_for, seeded, django_capture_on_commit_callbacks
) -> None:
    client = client_for(Role.CONTROLLER)
    start(client, seeded, django_capture_on_commit_callbacks)
    queue = client.get(MATCHES, {"status": "proposed"})
    assert queue.status_code == 200
    (suggestion,) = queue.json()["results"]
    # refused: an auditor may read but not accept
    auditor = client_for(Role.AUDITOR)
    assert auditor.get(MATCHES, {"status": "proposed"}).status_code == 200
    refused = auditor.post(f"{MATCHES}/{suggestion['id']}/accept", {}, format="json")
    assert refused.status_code == 403
    assert Match.objects.get(pk=suggestion["id"]).status == MatchStatus.PROPOSED
    # when accepted by the controller
    accepted = client.post(f"{MATCHES}/{suggestion['id']}/accept", {}, format="json")
    # then
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["status"] == "applied"
    # accepting twice is a clear refusal
    again = client.post(f"{MATCHES}/{suggestion['id']}/accept", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (400, "match_not_proposed")
    # an unknown match is a 404
    assert client.post(f"{MATCHES}/999999/reject", {}, format="json").status_code == 404


def test_manual_match_to_an_account_and_undo(client_for, usd_account) -> None:
    client = client_for(Role.FINANCE_ADMIN)
    statement = Statement.objects.create(
        bank_account=usd_account, format="csv", currency="USD", control="none",
        file_sha256="c" * 64, fingerprint="c" * 64,
    )  # fmt: skip
    line = StatementLine.objects.create(
        statement=statement, bank_account=usd_account, position=1, booking_date=date(2026, 3, 2),
        amount=D("-9.00"), currency="USD", description="Card fee", fingerprint="f" * 64,
    )  # fmt: skip
    fees = Account.objects.get(role=AccountRole.BANK_FEES)
    made = client.post(MATCHES, {"lines": [line.pk], "account": fees.pk}, format="json")
    assert made.status_code == 201, made.json()
    match_id = made.json()["id"]
    assert made.json()["targets"] == [{"kind": "account", "id": fees.pk, "amount": "9.00"}]
    no_reason = client.post(f"{MATCHES}/{match_id}/undo", {}, format="json")
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    undone = client.post(f"{MATCHES}/{match_id}/undo", {"reason": "wrong"}, format="json")
    assert (undone.status_code, undone.json()["status"]) == (200, "undone")


@pytest.mark.parametrize("role", ALL_ROLES)
def test_reconcile_role_matrix(
    role, client_for, usd_account, django_capture_on_commit_callbacks
) -> None:
    client = client_for(role)
    response = start(client, usd_account, django_capture_on_commit_callbacks)
    assert response.status_code == (202 if role in STARTERS else 403)
    if role not in STARTERS:
        assert ReconciliationRun.objects.count() == 0
    run = ReconciliationRun.objects.create(bank_account=usd_account)
    assert client.get(f"{RECONCILE}/{run.pk}").status_code == (200 if role in VIEWERS else 403)


def test_integration_token_starts_and_reads_runs(
    integration_client, usd_account, django_capture_on_commit_callbacks
) -> None:
    response = start(integration_client, usd_account, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    assert integration_client.get(f"{RECONCILE}/{response.json()['id']}").json()["status"] == "done"


def test_anonymous_is_refused(usd_account) -> None:
    assert APIClient().post(RECONCILE, {"bank_account": usd_account.pk}).status_code in (401, 403)
    assert ReconciliationRun.objects.count() == 0


def test_bad_input_is_400_and_records_nothing(client_for, usd_account) -> None:
    client = client_for(Role.FINANCE_ADMIN)
    bad = client.post(
        RECONCILE,
        {"bank_account": usd_account.pk, "period_start": "2026-03-01", "period_end": "2026-02-01"},
        format="json",
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_period")
    assert client.post(RECONCILE, {"bank_account": 999999}, format="json").status_code == 404
    assert client.get(f"{RECONCILE}/999999").status_code == 404
    assert client.get(MATCHES, {"status": "nonsense"}).status_code == 400
    assert ReconciliationRun.objects.count() == 0


def test_rules_api(client_for) -> None:
    fees = Account.objects.get(role=AccountRole.BANK_FEES)
    admin = client_for(Role.FINANCE_ADMIN)
    made = admin.post(
        RULES, {"name": "Fees", "text_contains": "BANK FEE", "sign": "debit", "account": fees.pk},
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    refused = admin.post(RULES, {"name": "Everything", "account": fees.pk}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (400, "rule_without_condition")
    assert (
        client_for(Role.AR_CLERK)
        .post(RULES, {"name": "x", "text_contains": "X", "account": fees.pk}, format="json")
        .status_code
        == 403
    )
    assert MatchRule.objects.count() == 1
    listed = client_for(Role.AUDITOR).get(RULES)
    assert [r["name"] for r in listed.json()["results"]] == ["Fees"]
    assert MatchRule.history.count() == 1


def test_a_statement_import_starts_a_run(
    client_for, make_bank_account, django_capture_on_commit_callbacks
) -> None:
    account = make_bank_account("EUR", iban="DE89 3704 0044 0532 0130 00")
    client = client_for(Role.AR_CLERK)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/reconciliation/statements",
            {
                "file": SimpleUploadedFile("good.sta", fixture_bytes("good.sta")),
                "bank_account": account.pk,
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    run = ReconciliationRun.objects.get()
    assert (run.bank_account_id, run.status) == (account.pk, "done")
    assert run.unmatched == StatementLine.objects.filter(bank_account=account).count()


def test_admin_queue_bulk_accept_and_pages(
    make_user, seeded, django_capture_on_commit_callbacks
) -> None:
    from django.urls import reverse

    from tests.conftest import verified_client

    client = verified_client(make_user(Role.AR_CLERK))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(RECONCILE, {"bank_account": seeded.pk}, format="json")
    proposed = list(Match.objects.filter(status=MatchStatus.PROPOSED).values_list("pk", flat=True))
    assert len(proposed) == 1
    for name in ("match", "matchrule", "counterpartyalias", "reconciliationrun"):
        page = client.get(reverse(f"admin:reconciliation_{name}_changelist"))
        assert page.status_code == 200, name
    url = reverse("admin:reconciliation_match_changelist")
    # an auditor sees the queue but has no accept action
    auditor = verified_client(make_user(Role.AUDITOR))
    assert auditor.get(url).status_code == 200
    refused = auditor.post(url, {"action": "accept_selected", "_selected_action": proposed})
    assert Match.objects.get(pk=proposed[0]).status == MatchStatus.PROPOSED
    assert refused.status_code in (200, 302, 403)
    # when the clerk accepts in bulk (and confirms on the page that lists them)
    client.post(url, {"action": "accept_selected", "_selected_action": proposed, "confirm": "1"})
    # then
    assert Match.objects.get(pk=proposed[0]).status == MatchStatus.APPLIED
