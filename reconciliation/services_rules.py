"""Matching rules written by people: text or counterparty -> a ledger account."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict

from core.exceptions import NotFound, PermissionDeniedError
from core.ledger.models import Account
from reconciliation.audit import audit_record
from reconciliation.enums import AuditAction
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import BankAccount, MatchRule

_RULE_FIELDS = (
    "name",
    "priority",
    "bank_account",
    "text_contains",
    "counterparty_name_equals",
    "counterparty_account_equals",
    "amount_min",
    "amount_max",
    "sign",
    "account",
    "is_active",
)


def _rule_details(rule: MatchRule) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, Decimal) else v)
        for k, v in model_to_dict(rule, fields=_RULE_FIELDS).items()
    }


def match_rule_create(
    *,
    actor: Any,
    name: str,
    account_id: int,
    priority: int = 100,
    bank_account_id: int | None = None,
    text_contains: str = "",
    counterparty_name_equals: str = "",
    counterparty_account_equals: str = "",
    amount_min: Decimal | None = None,
    amount_max: Decimal | None = None,
    sign: str = "any",
) -> MatchRule:
    """A rule needs a condition (text or counterparty) and an active ledger account."""
    if actor is None or not actor.has_perm("reconciliation.add_matchrule"):
        raise PermissionDeniedError("Your role does not allow adding matching rules.")
    if not (
        text_contains.strip()
        or counterparty_name_equals.strip()
        or counterparty_account_equals.strip()
    ):
        raise ReconciliationError(
            "A rule needs text or a counterparty to look for.",
            code="rule_without_condition",
            field="text_contains",
        )
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        raise ReconciliationError(
            "amount_min is above amount_max.", code="invalid_range", field="amount_min"
        )
    account = Account.objects.filter(pk=account_id, is_active=True).first()
    if account is None:
        raise NotFound(f"No active ledger account {account_id}.")
    if bank_account_id is not None and not BankAccount.objects.filter(pk=bank_account_id).exists():
        raise NotFound(f"No bank account {bank_account_id}.")
    with transaction.atomic():
        rule = MatchRule.objects.create(
            name=name.strip(),
            priority=priority,
            bank_account_id=bank_account_id,
            text_contains=text_contains.strip(),
            counterparty_name_equals=counterparty_name_equals.strip(),
            counterparty_account_equals=counterparty_account_equals.strip(),
            amount_min=amount_min,
            amount_max=amount_max,
            sign=sign,
            account=account,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(
            action=AuditAction.RULE_CREATED,
            actor=actor,
            subject=rule,
            bank_account_id=bank_account_id,
            details=_rule_details(rule),
        )
    return rule


def match_rule_save(*, actor: Any, rule: MatchRule) -> MatchRule:
    """Save an edited rule (the admin's change form); history records who and what."""
    if actor is None or not actor.has_perm("reconciliation.change_matchrule"):
        raise PermissionDeniedError("Your role does not allow changing matching rules.")
    rule.full_clean()
    before = _rule_details(MatchRule.objects.get(pk=rule.pk)) if rule.pk else {}
    with transaction.atomic():
        rule.save()
        after = _rule_details(rule)
        audit_record(
            action=AuditAction.RULE_CHANGED if before else AuditAction.RULE_CREATED,
            actor=actor,
            subject=rule,
            bank_account_id=rule.bank_account_id,
            details={
                "changed": {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
            }
            if before
            else after,
        )
    return rule
