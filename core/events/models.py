"""Outbound events for integrators: the outbox, the endpoints that receive it, and each
delivery with every try (status, response time).

An ``Event`` is written in the same transaction as the change it reports (and one
``Delivery`` per subscribed endpoint with it), so a rolled-back change leaves neither, and a
committed one is never lost: the sender (``core.events.services.deliveries_send``) works from
these rows alone. Events are never edited.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.encryption import EncryptedTextField

# The events of ISSUE 14 section 4, in the order integrators read them in the docs.
EVENT_TYPES = (
    "invoice.issued",
    "invoice.paid",
    "invoice.voided",
    "invoice.overdue",
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
    "credit_note.issued",
    "subscription.created",
    "subscription.updated",
    "subscription.canceled",
    "dispute.opened",
    "dispute.closed",
    "bill.approved",
    "payment_run.paid",
    "reconciliation.exception_opened",
)


def event_public_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def endpoint_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


class Event(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=event_public_id)
    type = models.CharField(max_length=60, choices=[(t, t) for t in EVENT_TYPES])
    # What it is about ("invoice", 12): deliveries of one object keep their order.
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=60)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("pk",)
        permissions = [("replay_event", "Can send an event again to an endpoint")]
        indexes = [
            models.Index(fields=("type", "id")),
            models.Index(fields=("object_type", "object_id", "id")),
            models.Index(fields=("created_at",)),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.object_type} {self.object_id} ({self.public_id})"


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    # The event types sent to it; empty: every type.
    event_types = models.JSONField(default=list, blank=True)
    # Signs every delivery; during a rotation the previous one signs too, until it expires.
    secret = EncryptedTextField(default=endpoint_secret)
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # Since when every try has failed, and how many in a row (reset by a success).
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Told by email when the endpoint is disabled.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords(excluded_fields=["secret", "previous_secret"])

    class Meta:
        ordering = ("pk",)
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class Delivery(models.Model):
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    # "<object_type>:<object_id>": one object's events reach an endpoint in their order.
    object_key = models.CharField(max_length=110)
    # Sent again on request: neither waits for nor holds up the object's other events.
    replay = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender working on it until then; a sender that died lets it go when it passes.
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("pk",)
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=("next_attempt_at", "id"),
                condition=Q(status="pending"),
                name="delivery_due",
            ),
            models.Index(
                fields=("endpoint", "object_key", "id"),
                condition=Q(status="pending", replay=False),
                name="delivery_pending_per_object",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try: what the receiver answered (or why nothing was sent) and how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.PROTECT, related_name="tries")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return f"try of delivery {self.delivery_id}: {self.status_code or self.error}"
