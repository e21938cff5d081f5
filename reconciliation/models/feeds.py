"""Bank feeds (Plaid, Yodlee) linked to bank accounts, and the log of every sync.

A feed's transactions become statement lines of the account (one ``Statement`` of format
``feed`` per sync that brought new lines), so files and feeds share one fingerprint, one
deduplication and one matching engine.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.encryption import EncryptedTextField
from reconciliation.enums import FeedProvider, FeedStatus, FeedSyncResult
from reconciliation.models.common import user_fk
from reconciliation.models.statements import BankAccount, Statement


class BankFeed(models.Model):
    bank_account = models.OneToOneField(BankAccount, on_delete=models.PROTECT, related_name="feed")
    provider = models.CharField(max_length=10, choices=FeedProvider.choices)
    # The provider's id of the account (Plaid account_id, Yodlee accountId).
    external_account_id = models.CharField(max_length=100)
    # Plaid: the Item's access token. Yodlee: the user's login name. Encrypted at rest.
    access_token = EncryptedTextField(blank=True, default="")
    # Plaid transactions/sync cursor: the next sync resumes from it. Stored in the same
    # transaction as the lines it brought.
    cursor = models.TextField(blank=True, default="")
    # Yodlee: transactions are listed from this date (a few days back for late postings).
    synced_through = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=FeedStatus.choices, default=FeedStatus.ACTIVE)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()

    history = HistoricalRecords(excluded_fields=["access_token", "cursor"])

    class Meta:
        ordering = ("bank_account__name", "pk")
        permissions = [("sync_feed", "Can sync bank feeds")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} feed of {self.bank_account}"


class FeedSync(models.Model):
    """One sync of a feed, failed ones included: what it brought and where it left off."""

    feed = models.ForeignKey(BankFeed, on_delete=models.PROTECT, related_name="syncs")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=10, choices=FeedSyncResult.choices)
    error_code = models.CharField(max_length=40, blank=True, default="")
    error = models.TextField(blank=True, default="")
    added = models.PositiveIntegerField(default=0)
    modified = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    # Posted transactions already known (imported from a file or an earlier sync).
    skipped = models.PositiveIntegerField(default=0)
    # Pending transactions are not imported; they come back once posted.
    pending = models.PositiveIntegerField(default=0)
    cursor_before = models.TextField(blank=True, default="")
    cursor_after = models.TextField(blank=True, default="")
    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor = user_fk()

    class Meta:
        ordering = ("-started_at", "-pk")

    def __str__(self) -> str:
        return f"Sync {self.pk} of feed {self.feed_id}: {self.result}"
