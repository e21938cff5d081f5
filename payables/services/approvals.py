"""Who may approve what: levels by amount, maker-checker, one slot per person, delegation.

The document services lock their row, then call ``approval_record`` or
``rejection_record``; these check the rules and write the decision. A refusal is a 403 with a
code saying why (``requester_cannot_approve``, ``approval_role_required``,
``already_counted``) and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from payables.enums import ApprovalDecision, DocumentKind
from payables.exceptions import ApprovalRefused, InvalidState
from payables.models import Approval, ApprovalDelegation, ApprovalLevel
from payables.models.approvals import APPROVER_ROLES, ROLE_RANK

# The permission that lets a role decide on each kind of document.
APPROVE_PERMISSION: dict[str, str] = {
    DocumentKind.PURCHASE_ORDER: "payables.approve_purchaseorder",
    DocumentKind.BILL: "payables.approve_bill",
    DocumentKind.EXPENSE_REPORT: "payables.approve_expensereport",
    DocumentKind.PAYMENT_RUN: "payables.approve_paymentrun",
    DocumentKind.BANK_CHANGE: "payables.approve_vendorbankchange",
}


def required_roles(kind: str, amount_functional: Decimal) -> list[str]:
    """The roles a document of ``kind`` and this functional amount needs, highest first."""
    roles = ApprovalLevel.objects.filter(kind=kind, min_amount__lte=amount_functional)
    return sorted((level.role for level in roles), key=lambda r: ROLE_RANK.get(r, 0), reverse=True)


def user_roles(user: Any) -> set[str]:
    if user.is_superuser:
        return set(APPROVER_ROLES)
    return {name for name in user.groups.values_list("name", flat=True) if name in ROLE_RANK}


@dataclass(frozen=True)
class Capacity:
    """A role the actor may decide with, in their own right or for an absent approver."""

    role: str
    on_behalf_of: Any = None

    @property
    def rank(self) -> int:
        return ROLE_RANK[self.role]


def capacities(user: Any, kind: str) -> list[Capacity]:
    """The actor's own approving roles (if they hold the permission for ``kind``), then those
    of every approver who delegated to them today."""
    perm = APPROVE_PERMISSION[kind]
    result = []
    if user.has_perm(perm):
        result += [Capacity(role) for role in user_roles(user)]
    today = timezone.localdate()
    delegations = ApprovalDelegation.objects.filter(
        delegate=user, starts_on__lte=today, ends_on__gte=today
    ).select_related("delegator")
    for delegation in delegations:
        delegator = delegation.delegator
        if delegator.is_active and delegator.has_perm(perm):
            result += [Capacity(role, delegator) for role in user_roles(delegator)]
    return result


def approvals_active(kind: str, object_id: int) -> list[Approval]:
    return list(
        Approval.objects.filter(kind=kind, object_id=object_id, voided_at__isnull=True)
        .select_related("user", "on_behalf_of")
        .order_by("decided_at", "pk")
    )


def roles_outstanding(kind: str, object_id: int, required: list[str]) -> list[str]:
    filled = {
        a.role for a in approvals_active(kind, object_id) if a.decision == ApprovalDecision.APPROVED
    }
    return [role for role in required if role not in filled]


def _check_version(version_hash: str, expected_version: str | None) -> None:
    if expected_version is not None and expected_version != version_hash:
        raise InvalidState(
            "The document changed since you opened it: look at it again before deciding.",
            code="approval_outdated",
        )


def _check_actor(*, kind: str, object_id: int, maker_ids: set[int], actor: Any) -> list[Approval]:
    if actor is None or not actor.is_authenticated:
        raise ApprovalRefused("Only a signed-in person can decide.", code="approval_role_required")
    if actor.pk in maker_ids:
        # Maker-checker (A2): whoever asked for it never approves it, superuser included.
        raise ApprovalRefused(
            "You created or requested this document: someone else must decide on it.",
            code="requester_cannot_approve",
        )
    existing = approvals_active(kind, object_id)
    counted = {a.user_id for a in existing} | {a.on_behalf_of_id for a in existing}
    if actor.pk in counted:
        raise ApprovalRefused(
            "You have already decided on this document; the same person never counts twice.",
            code="already_counted",
        )
    return existing


def approval_record(
    *,
    kind: str,
    object_id: int,
    maker_ids: set[int],
    required: list[str],
    version_hash: str,
    actor: Any,
    comment: str = "",
    expected_version: str | None = None,
) -> tuple[Approval, list[str]]:
    """Record ``actor``'s approval in the highest outstanding slot they can fill; returns it
    and the roles still outstanding (empty: the document is approved). With
    ``expected_version`` (the hash of what the approver saw) a document changed since is
    refused (409 ``approval_outdated``)."""
    _check_version(version_hash, expected_version)
    existing = _check_actor(kind=kind, object_id=object_id, maker_ids=maker_ids, actor=actor)
    filled = {a.role for a in existing if a.decision == ApprovalDecision.APPROVED}
    outstanding = [r for r in required if r not in filled]
    options = capacities(actor, kind)
    if not options:
        raise ApprovalRefused(
            "Your role does not allow you to approve this.", code="approval_role_required"
        )
    chosen: Capacity | None = None
    slot = ""
    for role in outstanding:
        fitting = [c for c in options if c.rank >= ROLE_RANK[role]]
        if fitting:
            # Own right first, then the lowest rank that fits (keeps higher roles for later).
            chosen = min(fitting, key=lambda c: (c.on_behalf_of is not None, c.rank))
            slot = role
            break
    if chosen is None:
        needed = ", ".join(outstanding) or "none"
        raise ApprovalRefused(
            f"Your role cannot fill what this still needs (outstanding: {needed}).",
            code="approval_role_required",
        )
    approval = Approval.objects.create(
        kind=kind,
        object_id=object_id,
        decision=ApprovalDecision.APPROVED,
        role=slot,
        user=actor,
        on_behalf_of=chosen.on_behalf_of,
        comment=comment[:1000],
        version_hash=version_hash,
    )
    return approval, [r for r in outstanding if r != slot]


def rejection_record(
    *,
    kind: str,
    object_id: int,
    maker_ids: set[int],
    version_hash: str,
    actor: Any,
    comment: str,
    expected_version: str | None = None,
) -> Approval:
    """Record a rejection: the same people who may approve may reject."""
    _check_version(version_hash, expected_version)
    _check_actor(kind=kind, object_id=object_id, maker_ids=maker_ids, actor=actor)
    options = capacities(actor, kind)
    if not options:
        raise ApprovalRefused(
            "Your role does not allow you to reject this.", code="approval_role_required"
        )
    chosen = min(options, key=lambda c: (c.on_behalf_of is not None, c.rank))
    return Approval.objects.create(
        kind=kind,
        object_id=object_id,
        decision=ApprovalDecision.REJECTED,
        role="",
        user=actor,
        on_behalf_of=chosen.on_behalf_of,
        comment=comment[:1000],
        version_hash=version_hash,
    )


def approvals_void(*, kind: str, object_id: int, reason: str) -> int:
    """Void the live decisions on a document (an edit after them, C5). Rows stay."""
    rows = Approval.objects.filter(kind=kind, object_id=object_id, voided_at__isnull=True)
    count = 0
    for approval in rows:
        approval.voided_at = timezone.now()
        approval.void_reason = reason[:300]
        approval.save(update_fields=["voided_at", "void_reason"])
        count += 1
    return count


def approvals_match_version(*, kind: str, object_id: int, version_hash: str) -> bool:
    """Whether every live approval was given to this very version (checked before acting on
    an approved document)."""
    return not Approval.objects.filter(
        Q(kind=kind, object_id=object_id, voided_at__isnull=True)
        & Q(decision=ApprovalDecision.APPROVED)
        & ~Q(version_hash=version_hash)
    ).exists()


def can_decide(
    *, kind: str, object_id: int, maker_ids: set[int], required: list[str], actor: Any
) -> bool:
    """Whether ``actor`` could approve now (the screens show the buttons by this)."""
    try:
        existing = _check_actor(kind=kind, object_id=object_id, maker_ids=maker_ids, actor=actor)
    except ApprovalRefused:
        return False
    filled = {a.role for a in existing if a.decision == ApprovalDecision.APPROVED}
    ranks = [c.rank for c in capacities(actor, kind)]
    return any(rank >= ROLE_RANK[role] for role in required if role not in filled for rank in ranks)
