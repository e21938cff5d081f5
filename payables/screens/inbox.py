"""The approver's inbox: every pending document the signed-in user could approve now.

A document waits for a user exactly when ``payables.services.approvals.can_decide`` says
so. That function reads per document; here the same rule runs over rows read in bulk (the
pending documents, their live decisions, the approval levels, the user's capacities), so
the inbox costs a fixed number of queries however long it is. A test checks both agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.urls import reverse

from payables.enums import ApprovalDecision
from payables.models import Approval, ApprovalLevel
from payables.models.approvals import ROLE_RANK
from payables.screens.documents import SCREENS, DocumentScreen
from payables.services.approvals import capacities


@dataclass(frozen=True)
class InboxItem:
    kind: str
    kind_label: str
    object_id: int
    number: str
    party: str
    amount: str
    waiting_since: datetime
    # Roles still needed, highest first (the slot the user would fill among them).
    outstanding: tuple[str, ...]
    url: str
    flag: str = ""


@dataclass(frozen=True)
class Decision:
    user_id: int
    on_behalf_of_id: int | None
    decision: str
    role: str


def approval_levels() -> dict[str, list[tuple[Decimal, str]]]:
    """Every level, by kind, in ``ApprovalLevel``'s own order (one query)."""
    levels: dict[str, list[tuple[Decimal, str]]] = defaultdict(list)
    for level in ApprovalLevel.objects.all():
        levels[level.kind].append((level.min_amount, level.role))
    return levels


def roles_required(
    levels: dict[str, list[tuple[Decimal, str]]], kind: str, amount: Decimal
) -> list[str]:
    """What ``required_roles`` returns, from levels already read."""
    roles = [role for minimum, role in levels.get(kind, []) if minimum <= amount]
    return sorted(roles, key=lambda r: ROLE_RANK.get(r, 0), reverse=True)


def roles_open_to(
    *,
    actor_id: int,
    maker_ids: set[int],
    decisions: Iterable[Decision],
    required: list[str],
    ranks: list[int],
) -> list[str] | None:
    """The roles still outstanding if the actor could approve now, else None: the rule of
    ``can_decide`` (not the maker, not counted already, a rank that fills an open slot)."""
    if actor_id in maker_ids:
        return None
    decisions = list(decisions)
    counted = {d.user_id for d in decisions} | {d.on_behalf_of_id for d in decisions}
    if actor_id in counted:
        return None
    filled = {d.role for d in decisions if d.decision == ApprovalDecision.APPROVED}
    outstanding = [role for role in required if role not in filled]
    if not any(rank >= ROLE_RANK[role] for role in outstanding for rank in ranks):
        return None
    return outstanding


def _decisions_by_document(kind: str, ids: list[int]) -> dict[int, list[Decision]]:
    result: dict[int, list[Decision]] = defaultdict(list)
    if not ids:
        return result
    rows = Approval.objects.filter(
        kind=kind, object_id__in=ids, voided_at__isnull=True
    ).values_list("object_id", "user_id", "on_behalf_of_id", "decision", "role")
    for object_id, user_id, on_behalf_of_id, decision, role in rows:
        result[object_id].append(Decision(user_id, on_behalf_of_id, decision, role))
    return result


def _items_for(
    screen: DocumentScreen, actor: Any, levels: dict[str, list[tuple[Decimal, str]]]
) -> list[InboxItem]:
    ranks = [capacity.rank for capacity in capacities(actor, screen.kind)]
    if not ranks:
        return []
    documents = list(screen.pending(actor))
    decisions = _decisions_by_document(screen.kind, [doc.pk for doc in documents])
    items = []
    for doc in documents:
        outstanding = roles_open_to(
            actor_id=actor.pk,
            maker_ids=screen.maker_ids(doc),
            decisions=decisions.get(doc.pk, []),
            required=roles_required(levels, screen.kind, screen.amount_functional(doc))
            or list(screen.fallback_roles),
            ranks=ranks,
        )
        if outstanding is None:
            continue
        summary = screen.summary(doc)
        items.append(
            InboxItem(
                kind=screen.kind,
                kind_label=screen.label,
                object_id=doc.pk,
                number=summary.number,
                party=summary.party,
                amount=summary.amount,
                waiting_since=summary.waiting_since,
                outstanding=tuple(outstanding),
                url=reverse("approvals:detail", args=(screen.slug, doc.pk)),
                flag=summary.flag,
            )
        )
    return items


def inbox_list(*, actor: Any) -> list[InboxItem]:
    """What waits for ``actor``'s decision, oldest first."""
    levels = approval_levels()
    items: list[InboxItem] = []
    for screen in SCREENS.values():
        if actor.has_perm(screen.view_permission):
            items += _items_for(screen, actor, levels)
    return sorted(items, key=lambda item: (item.waiting_since, item.kind, item.object_id))
