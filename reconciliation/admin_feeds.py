"""Admin for bank feeds: set up and change a feed through the services (the token is typed in
once and never shown), "Sync now", and the read-only log of syncs.

Roles: view finance_admin, controller, ar_clerk, ap_clerk, auditor; set up and change
finance_admin; sync finance_admin, controller, ar_clerk, ap_clerk.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from core.admin import AuditedAdmin
from core.encryption import mask_tail
from core.exceptions import DomainError
from reconciliation.enums import FeedStatus, FeedSyncResult
from reconciliation.models import BankAccount, BankFeed, FeedSync
from reconciliation.services_feeds import (
    SYNC_PERMISSION,
    bank_feed_create,
    bank_feed_update,
    feed_sync,
)


class BankFeedAddForm(forms.ModelForm):
    access_token_input = forms.CharField(
        label="Access token (Plaid) / login name (Yodlee)",
        max_length=2000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted; never shown again.",
    )

    class Meta:
        model = BankFeed
        fields = ("bank_account", "provider", "external_account_id")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "bank_account" in self.fields:
            self.fields["bank_account"].queryset = BankAccount.objects.filter(  # type: ignore[attr-defined]
                is_active=True, feed__isnull=True
            )


class BankFeedChangeForm(forms.ModelForm):
    enabled = forms.BooleanField(
        required=False, help_text="A disabled feed is not synced, not even on schedule."
    )
    access_token_input = forms.CharField(
        label="New access token / login name",
        max_length=2000,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored one (after a bank sign-in, paste the new).",
    )

    class Meta:
        model = BankFeed
        fields = ("external_account_id",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["enabled"].initial = self.instance.status != FeedStatus.DISABLED


@admin.register(BankFeed)
class BankFeedAdmin(AuditedAdmin):
    list_display = (
        "bank_account", "provider", "external_account_masked", "status", "consecutive_failures",
        "last_synced_at", "last_success_at", "short_error",
    )  # fmt: skip
    list_filter = ("provider", "status")
    search_fields = ("bank_account__name",)
    list_select_related = ("bank_account",)
    actions = ("sync_now",)
    readonly_fields = (
        "bank_account", "provider", "status", "consecutive_failures", "last_error",
        "synced_through", "last_synced_at", "last_success_at", "created_at", "created_by",
        "recent_syncs",
    )  # fmt: skip

    @admin.display(description="Provider account")
    def external_account_masked(self, obj: BankFeed) -> str:
        return mask_tail(obj.external_account_id)

    @admin.display(description="Last error")
    def short_error(self, obj: BankFeed) -> str:
        return obj.last_error[:80]

    @admin.display(description="Recent syncs")
    def recent_syncs(self, obj: BankFeed) -> str:
        rows = FeedSync.objects.filter(feed=obj).order_by("-started_at", "-pk")[:10]
        if not rows:
            return "-"
        return format_html(
            "<br>".join(["{}"] * len(rows)),
            *(
                f"{s.started_at:%Y-%m-%d %H:%M} {s.result} +{s.added} ~{s.modified} "
                f"-{s.removed} skipped {s.skipped} pending {s.pending} {s.error_code}"
                for s in rows
            ),
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = BankFeedChangeForm if obj is not None else BankFeedAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("bank_account", "provider", "external_account_id", "access_token_input")
        return (
            "bank_account", "provider", "external_account_id", "enabled", "access_token_input",
            "status", "consecutive_failures", "last_error", "synced_through", "last_synced_at",
            "last_success_at", "created_at", "created_by", "recent_syncs",
        )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: its lines and syncs keep pointing at it

    def save_model(self, request: HttpRequest, obj: BankFeed, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = bank_feed_create(
                actor=request.user,
                bank_account_id=data["bank_account"].pk,
                provider=data["provider"],
                external_account_id=data["external_account_id"],
                access_token=data["access_token_input"],
            )
            obj.pk = created.pk
            return
        bank_feed_update(
            actor=request.user,
            feed_id=obj.pk,
            enabled=bool(data.get("enabled")),
            access_token=data.get("access_token_input") or None,
            external_account_id=data.get("external_account_id"),
        )

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SYNC_PERMISSION)

    @admin.action(description="Sync now", permissions=["sync"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[BankFeed]) -> None:
        for feed in queryset.order_by("pk"):
            try:
                sync = feed_sync(feed_id=feed.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{feed}: {exc.message}", messages.ERROR)
                continue
            if sync.result == FeedSyncResult.OK:
                self.message_user(
                    request,
                    f"{feed}: {sync.added} new, {sync.modified} changed, {sync.removed} "
                    f"removed, {sync.skipped} already known, {sync.pending} pending.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request, f"{feed}: failed ({sync.error_code}): {sync.error}", messages.ERROR
                )


@admin.register(FeedSync)
class FeedSyncAdmin(ModelAdmin):
    """Read-only: the sync service writes these rows."""

    list_display = (
        "started_at", "feed", "result", "added", "modified", "removed", "skipped", "pending",
        "error_code", "actor",
    )  # fmt: skip
    list_filter = ("result", "feed__provider", "feed")
    search_fields = ("error", "error_code")
    list_select_related = ("feed__bank_account", "actor")
    date_hierarchy = "started_at"
    exclude = ("cursor_before", "cursor_after")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in FeedSync._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
