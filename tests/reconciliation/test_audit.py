"""The reconciliation audit trail: imports (refused ones too), rule changes, automatic and
manual matches, rejections and undos, each with who, when and why."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.roles import Role
from reconciliation import matching
from reconciliation.enums import AuditAction, MatchTargetKind
from reconciliation.exceptions import StatementRefused
from reconciliation.models import AuditEvent, Match
from reconciliation.services import statement_import
from reconciliation.services_matching import match_reject, match_undo, proposals_store, reconcile
from reconciliation.services_rules import match_rule_create, match_rule_save
from tests.reconciliation.conftest import fixture_bytes
from tests.reconciliation.test_matching_services import (  # noqa: F401 (fixtures)
    clerk,
    customer,
    make_invoice,
    make_line,
    usd_account,
)

pytestmark = pytest.mark.django_db
D = Decimal


def actions(subject: str) -> list[tuple[str, str | None, str]]:
    return [
        (e.action, getattr(e.actor, "username", None), e.reason)
        for e in AuditEvent.objects.filter(subject=subject).order_by("pk")
    ]


def test_imports_are_recorded_refused_ones_included(make_user, eur_account) -> None:
    importer = make_user(Role.AR_CLERK)
    data = fixture_bytes("good.sta")
    # when a file is imported, imported again, and a broken copy is refused
    first = statement_import(
        actor=importer, bank_account_id=eur_account.pk, data=data, filename="a"
    )
    statement_import(actor=importer, bank_account_id=eur_account.pk, data=data, filename="a")
    with pytest.raises(StatementRefused):
        statement_import(
            actor=importer,
            bank_account_id=eur_account.pk,
            data=data.replace(b"EUR1219,00", b"EUR1219,01"),
            filename="b",
        )
    # then three events, by the clerk who imported, the refusal with its reason
    events = list(
        AuditEvent.objects.filter(bank_account=eur_account).order_by("pk").values_list(
            "action", "actor__username", "details__result"
        )
    )  # fmt: skip
    assert events == [
        (AuditAction.IMPORT, importer.username, "imported"),
        (AuditAction.IMPORT, importer.username, "duplicate"),
        (AuditAction.IMPORT_REFUSED, importer.username, "refused"),
    ]
    refused = AuditEvent.objects.get(action=AuditAction.IMPORT_REFUSED)
    assert "1219" in refused.reason
    assert AuditEvent.objects.filter(details__statements=[s.pk for s in first.statements]).exists()


def test_rule_changes_keep_the_fields_before_and_after(make_user) -> None:
    controller = make_user(Role.CONTROLLER)
    fees = Account.objects.get(role=AccountRole.BANK_FEES)
    rule = match_rule_create(
        actor=controller, name="Fees", account_id=fees.pk, text_contains="FEE", sign="debit"
    )
    # when the rule is edited
    rule.text_contains = "ACCOUNT FEE"
    rule.priority = 5
    match_rule_save(actor=controller, rule=rule)
    # then creation and change are recorded, the change with old and new values
    created, changed = AuditEvent.objects.filter(subject=f"matchrule:{rule.pk}").order_by("pk")
    assert (created.action, created.details["text_contains"]) == (AuditAction.RULE_CREATED, "FEE")
    assert changed.action == AuditAction.RULE_CHANGED
    assert changed.actor == controller
    assert changed.details["changed"] == {
        "text_contains": ["FEE", "ACCOUNT FEE"],
        "priority": [100, 5],
    }


def test_automatic_match_rejection_and_undo_are_recorded(
    usd_account,  # noqa: F811 (the fixtures imported above)
    make_invoice,  # noqa: F811
    make_line,  # noqa: F811
    clerk,  # noqa: F811
) -> None:
    # given a line paying an invoice by its number, and one a person turns down
    invoice = make_invoice("80.00")
    make_line("80.00", description=f"Payment {invoice.number}")
    reconcile(bank_account_id=usd_account.pk)
    match = Match.objects.get()
    # when the clerk undoes it
    match_undo(match_id=match.pk, actor=clerk, reason="paid twice by the customer")
    # then the automatic application (no person) and the undo (the clerk, the reason)
    assert actions(f"match:{match.pk}") == [
        (AuditAction.MATCH_APPLIED, None, match.reason),
        (AuditAction.MATCH_UNDONE, clerk.username, "paid twice by the customer"),
    ]
    applied = AuditEvent.objects.get(subject=f"match:{match.pk}", action=AuditAction.MATCH_APPLIED)
    assert applied.details["automatic"] is True
    assert applied.details["amount"] == str(match.amount)
    # and a suggestion rejected with a reason
    other = make_invoice("55.00")
    line = make_line("55.00", counterparty_name="Somebody Else")
    (proposal,) = proposals_store(
        account=usd_account,
        proposals=[
            matching.Proposal(
                (line.pk,),
                (matching.Target(MatchTargetKind.INVOICE, other.pk, D("55.00")),),
                D("0.70"),
                "fuzzy_name",
                "amount equals; the name looks alike",
                D("55.00"),
                "USD",
            )
        ],
    )
    match_reject(match_id=proposal.pk, actor=clerk, reason="not theirs")
    assert actions(f"match:{proposal.pk}") == [
        (AuditAction.MATCH_REJECTED, clerk.username, "not theirs")
    ]
