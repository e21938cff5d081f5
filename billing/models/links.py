"""The hosted invoice link: an unguessable, expiring, revocable address where the customer
sees an invoice and pays it (``billing.hosted``).

The link's token is ``nonce`` signed with the site's key (``billing.services.links``): a
forged or altered token is refused before any lookup, and the database alone (without the
key) cannot give out a working link. The token itself is never stored.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from billing.models.documents import Invoice


class InvoiceLink(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="links")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who opened it, roughly: how often and when last (the page is public).
    view_count = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["view_count", "last_viewed_at"])

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [("revoke_invoicelink", "Can revoke hosted invoice links")]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="invoice_link_expires_later",
            ),
        ]

    def __str__(self) -> str:
        return f"Link to invoice {self.invoice_id} ({self.state})"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"
