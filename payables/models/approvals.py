"""Approval levels by amount, the decisions taken, and delegation while an approver is away.

A document needs one distinct person per level its functional amount reaches; the person
who created it never approves it (superuser included) and nobody counts twice. Each
decision stores who, when, the comment and a hash of the version decided on (C5): an edit
afterwards voids the decision.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.roles import Role
from payables.enums import ApprovalDecision, DocumentKind
from payables.models.common import user_fk

# Who may fill a slot: a role counts for its own level and the ones below it.
ROLE_RANK = {"approver": 1, "controller": 2, "finance_admin": 3}
APPROVER_ROLES = tuple(ROLE_RANK)
APPROVER_ROLE_CHOICES = [(role, Role(role).label) for role in APPROVER_ROLES]


class ApprovalLevel(models.Model):
    """From ``min_amount`` (functional currency) a document of ``kind`` also needs a person
    holding ``role``. Edited in the admin; shipped by a data migration."""

    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    min_amount = models.DecimalField(max_digits=19, decimal_places=4)
    role = models.CharField(max_length=20, choices=APPROVER_ROLE_CHOICES)

    history = HistoricalRecords()

    class Meta:
        ordering = ("kind", "min_amount")
        constraints = [
            models.UniqueConstraint(fields=("kind", "role"), name="approval_level_one_per_role"),
            models.CheckConstraint(
                condition=Q(min_amount__gte=0), name="approval_level_min_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: from {self.min_amount:,} a {self.get_role_display()}"


class Approval(models.Model):
    """One person's decision on one document version."""

    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    object_id = models.BigIntegerField()
    decision = models.CharField(max_length=10, choices=ApprovalDecision.choices)
    # The slot this approval fills (empty for a rejection or a single-approver document).
    role = models.CharField(max_length=20, blank=True, default="", choices=APPROVER_ROLE_CHOICES)
    user = user_fk(null=False)
    # Set when the user acted as a delegate of an absent approver.
    on_behalf_of = user_fk()
    comment = models.CharField(max_length=1000, blank=True, default="")
    decided_at = models.DateTimeField(default=timezone.now, editable=False)
    # sha256 of the document's content when decided (C5).
    version_hash = models.CharField(max_length=64)
    # An edit after the decision voids it; the row stays for the record.
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True, default="")

    history = HistoricalRecords()

    class Meta:
        ordering = ("decided_at", "pk")
        indexes = [models.Index(fields=("kind", "object_id"), name="approval_document_idx")]
        constraints = [
            # The same person never counts twice on one document.
            models.UniqueConstraint(
                fields=("kind", "object_id", "user"),
                condition=Q(voided_at__isnull=True),
                name="approval_once_per_person",
            ),
            models.UniqueConstraint(
                fields=("kind", "object_id", "role"),
                condition=Q(voided_at__isnull=True, decision=ApprovalDecision.APPROVED),
                name="approval_once_per_slot",
            ),
            # Nor through a delegate: one person is acted for at most once per document.
            models.UniqueConstraint(
                fields=("kind", "object_id", "on_behalf_of"),
                condition=Q(voided_at__isnull=True, on_behalf_of__isnull=False),
                name="approval_once_per_person_delegated",
            ),
            models.CheckConstraint(
                condition=~Q(on_behalf_of=models.F("user")), name="approval_not_for_self"
            ),
        ]

    def __str__(self) -> str:
        document = f"{self.get_kind_display()} {self.object_id}"
        return f"{self.get_decision_display()} by {self.user} ({document})"


class ApprovalDelegation(models.Model):
    """While ``delegator`` is away (``starts_on``..``ends_on``), ``delegate`` may decide with
    the delegator's roles, never above the delegate's own, never on the delegator's own
    documents. Decisions record both names. Written only by ``approval_delegation_create``
    (the delegator or a finance admin, never the delegate) and ``approval_delegation_delete``."""

    delegator = user_fk("delegations_given", null=False)
    delegate = user_fk("delegations_received", null=False)
    starts_on = models.DateField()
    ends_on = models.DateField()
    reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()

    history = HistoricalRecords()

    class Meta:
        ordering = ("-starts_on", "pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=models.F("starts_on")), name="delegation_dates_ordered"
            ),
            models.CheckConstraint(
                condition=~Q(delegate=models.F("delegator")), name="delegation_not_to_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} -> {self.delegate} ({self.starts_on}..{self.ends_on})"
