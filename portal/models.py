"""The customer portal's own records: magic links, the sessions they open, what each visit
did (the access log), and the messages and files customers send with a dispute.

Links and session keys are random; only their SHA-256 is stored, so a database read gives no
way in. Staff revoke a customer's links and sessions (``portal.services.portal_revoke``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from billing.models import Customer


class PortalLink(models.Model):
    """A magic link emailed to the customer's billing address: single use, short-lived."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    sent_to = models.EmailField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Sent by a person from the workspace or API (else asked for on the portal's own page).
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [
            ("send_portallink", "Can send a customer a portal link"),
            ("revoke_portal", "Can revoke a customer's portal links and sessions"),
        ]

    def __str__(self) -> str:
        return f"portal link for {self.customer_id} sent {self.created_at:%Y-%m-%d %H:%M}"


class PortalSession(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    link = models.OneToOneField(PortalLink, on_delete=models.PROTECT, related_name="session")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # "signed out", "revoked by <user>", "idle"
    end_reason = models.CharField(max_length=100, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"portal session of {self.customer_id} from {self.created_at:%Y-%m-%d %H:%M}"


class PortalAccess(models.Model):
    """One thing done on the portal (or refused): who, when, from where, what."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    session = models.ForeignKey(
        PortalSession, on_delete=models.PROTECT, null=True, blank=True, related_name="accesses"
    )
    at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=40)
    path = models.CharField(max_length=300, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ("-at", "-pk")
        verbose_name_plural = "portal accesses"
        indexes = [
            models.Index(fields=("action", "ip", "at")),
            models.Index(fields=("action", "detail", "at")),
            models.Index(fields=("customer", "at")),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.customer_id or '-'} {self.at:%Y-%m-%d %H:%M}"


class DisputeMessage(models.Model):
    """What the customer wrote (and attached) when raising a dispute on the portal."""

    dispute = models.ForeignKey(
        "receivables.Dispute", on_delete=models.PROTECT, related_name="portal_messages"
    )
    message = models.TextField()
    attachment = models.FileField(upload_to="portal/disputes/%Y/%m/", blank=True, default="")
    attachment_name = models.CharField(max_length=200, blank=True, default="")
    session = models.ForeignKey(PortalSession, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"message on dispute {self.dispute_id}"
