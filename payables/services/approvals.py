"""Who may approve what: levels by amount, maker-checker, one slot per person, delegation.

The document services lock their row, then call ``approval_record`` or
``rejection_record``; these check the rules and write the decision. A refusal is a 403 with a
code saying why (``requester_cannot_approve``, ``approval_role_required``,
``already_counted``, ``delegator_is_requester``, ``delegator_already_counted``) and writes
nothing.

A delegation never creates a second person: its delegate is a person (never an integration,
never inactive) who holds the delegated role or a higher one, it is never used on the
delegator's own documents nor on one the delegator already decided, and every human counts
once per document whether they acted themselves, for someone, or had someone act for them.
Delegations are written only by ``approval_delegation_create`` / ``approval_delegation_delete``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import NotFound
from core.roles import Role
from payables.enums import ApprovalDecision, DocumentKind
from payables.exceptions import ApprovalRefused, InvalidState, PayablesError
from payables.models import Approval, ApprovalDelegation, ApprovalLevel
from payables.models.approvals import APPROVER_ROLES, ROLE_RANK
from payables.services.common import require

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
    """The approving roles ``user`` holds; none for an integration or an inactive account
    (an API token or a disabled login never fills a slot, whatever groups it was given)."""
    if not user.is_active:
        return set()
    groups = set(user.groups.values_list("name", flat=True))
    if Role.INTEGRATION in groups:
        return set()
    if user.is_superuser:
        return set(APPROVER_ROLES)
    return {name for name in groups if name in ROLE_RANK}


def top_rank(roles: set[str]) -> int:
    return max((ROLE_RANK[role] for role in roles), default=0)


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
    of every approver who delegated to them today, capped at the rank the actor holds
    themselves: a delegation never lends a role its delegate does not have."""
    own_roles = user_roles(user)
    if not own_roles:
        return []
    perm = APPROVE_PERMISSION[kind]
    result = []
    if user.has_perm(perm):
        result += [Capacity(role) for role in own_roles]
    own_rank = top_rank(own_roles)
    today = timezone.localdate()
    delegations = ApprovalDelegation.objects.filter(
        delegate=user, starts_on__lte=today, ends_on__gte=today
    ).select_related("delegator")
    for delegation in delegations:
        delegator = delegation.delegator
        if delegator.has_perm(perm):
            result += [
                Capacity(role, delegator)
                for role in user_roles(delegator)
                if ROLE_RANK[role] <= own_rank
            ]
    return result


def _usable(
    options: list[Capacity], *, maker_ids: set[int], counted: set[int | None]
) -> tuple[list[Capacity], str | None]:
    """The capacities usable on one document: a delegation is never used on its delegator's
    own document, nor once the delegator counted there (directly or through someone). Returns
    them and, when some were dropped, the code saying why."""
    usable: list[Capacity] = []
    dropped: str | None = None
    for capacity in options:
        delegator = capacity.on_behalf_of
        if delegator is not None and delegator.pk in maker_ids:
            dropped = dropped or "delegator_is_requester"
        elif delegator is not None and delegator.pk in counted:
            dropped = dropped or "delegator_already_counted"
        else:
            usable.append(capacity)
    return usable, dropped


DELEGATION_REFUSALS = {
    "delegator_is_requester": "You act for the person who created or requested this "
    "document: a delegation never approves its delegator's own documents.",
    "delegator_already_counted": "The person you act for has already decided on this "
    "document (or someone did for them): the same person never counts twice.",
}


def _options(
    *, kind: str, maker_ids: set[int], existing: list[Approval], actor: Any, verb: str
) -> list[Capacity]:
    """What ``actor`` may decide with on this document, or the refusal saying why not."""
    options, dropped = _usable(
        capacities(actor, kind), maker_ids=maker_ids, counted=_counted(existing)
    )
    if options:
        return options
    if dropped is not None:
        raise ApprovalRefused(DELEGATION_REFUSALS[dropped], code=dropped)
    raise ApprovalRefused(
        f"Your role does not allow you to {verb} this.", code="approval_role_required"
    )


def _counted(existing: list[Approval]) -> set[int | None]:
    """Every person already counted on a document: who decided and for whom."""
    return ({a.user_id for a in existing} | {a.on_behalf_of_id for a in existing}) - {None}


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
    if actor.pk in _counted(existing):
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
    options = _options(
        kind=kind, maker_ids=maker_ids, existing=existing, actor=actor, verb="approve"
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
    existing = _check_actor(kind=kind, object_id=object_id, maker_ids=maker_ids, actor=actor)
    options = _options(
        kind=kind, maker_ids=maker_ids, existing=existing, actor=actor, verb="reject"
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
    usable, _ = _usable(capacities(actor, kind), maker_ids=maker_ids, counted=_counted(existing))
    ranks = [c.rank for c in usable]
    return any(rank >= ROLE_RANK[role] for role in required if role not in filled for rank in ranks)


# --- Delegations ----------------------------------------------------------------------------


def _person_for(user_id: int, field: str) -> User:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user_not_found", field=field)
    return user


def approval_delegation_create(
    *,
    delegator_id: int,
    delegate_id: int,
    starts_on: date,
    ends_on: date,
    actor: Any,
    reason: str = "",
) -> ApprovalDelegation:
    """Let ``delegate`` stand in for ``delegator`` from ``starts_on`` to ``ends_on``.

    Written by the delegator or a finance admin, never by the delegate; the delegate is an
    active person (not an integration) holding the delegator's highest approving role or a
    higher one, so a delegation never lends authority its delegate lacks. Who and when are
    kept on the row and in its history.
    """
    require(actor, "payables.add_approvaldelegation", "delegate approvals")
    if actor.pk != delegator_id and not actor.has_perm("payables.change_approvaldelegation"):
        raise ApprovalRefused(
            "You may only delegate your own approvals.",
            code="delegation_not_yours",
            field="delegator",
        )
    if actor.pk == delegate_id:
        raise ApprovalRefused(
            "You cannot create a delegation to yourself: the delegator or a finance admin must.",
            code="delegation_by_delegate",
            field="delegate",
        )
    if delegator_id == delegate_id:
        raise PayablesError(
            "A person cannot delegate to themselves.", code="delegation_to_self", field="delegate"
        )
    if ends_on < starts_on:
        raise PayablesError(
            "The delegation must end on or after its first day.",
            code="delegation_dates_invalid",
            field="ends_on",
        )
    if starts_on < timezone.localdate():
        raise PayablesError(
            "A delegation starts today or later, never in the past.",
            code="delegation_backdated",
            field="starts_on",
        )
    with transaction.atomic():
        delegator = _person_for(delegator_id, "delegator")
        delegate = _person_for(delegate_id, "delegate")
        delegated = user_roles(delegator)
        if not delegated:
            raise PayablesError(
                f"{delegator.get_username()} holds no approving role: there is nothing to "
                "delegate.",
                code="delegator_cannot_approve",
                field="delegator",
            )
        if not delegate.is_active or is_integration(delegate):
            raise PayablesError(
                f"{delegate.get_username()} is not an active person: integrations and disabled "
                "accounts never stand in for an approver.",
                code="delegate_not_a_person",
                field="delegate",
            )
        needed = max(delegated, key=lambda role: ROLE_RANK[role])
        if top_rank(user_roles(delegate)) < ROLE_RANK[needed]:
            raise PayablesError(
                f"{delegate.get_username()} must hold the {needed} role (or a higher one) to "
                f"stand in for {delegator.get_username()}.",
                code="delegate_role_insufficient",
                field="delegate",
            )
        delegation = ApprovalDelegation(
            delegator=delegator,
            delegate=delegate,
            starts_on=starts_on,
            ends_on=ends_on,
            reason=reason[:300],
            created_by=actor,
        )
        delegation._history_user = actor  # type: ignore[attr-defined]
        delegation.full_clean()
        delegation.save()
    return delegation


def approval_delegation_delete(*, delegation_id: int, actor: Any) -> None:
    """End a delegation by removing it; its history keeps who created and who removed it.
    The delegator or a finance admin may; the delegate may not."""
    with transaction.atomic():
        delegation = ApprovalDelegation.objects.select_for_update().filter(pk=delegation_id).first()
        if delegation is None:
            raise NotFound(f"No delegation {delegation_id}.", code="not_found")
        if actor.pk != delegation.delegator_id:
            require(actor, "payables.delete_approvaldelegation", "remove delegations")
        delegation._history_user = actor  # type: ignore[attr-defined]
        delegation.delete()


def is_integration(user: Any) -> bool:
    return bool(user.groups.filter(name=Role.INTEGRATION).exists())
