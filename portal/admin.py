"""The portal in the workspace: who signed in, what they did, and revoking their access."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdminMixin
from portal.models import DisputeMessage, PortalAccess, PortalLink, PortalSession
from portal.services import portal_link_send, portal_revoke


class _CustomerActions:
    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("portal.revoke_portal"))

    def has_send_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("portal.send_portallink"))


@admin.register(PortalLink)
class PortalLinkAdmin(_CustomerActions, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "sent_to", "created_at", "expires_at", "used_at", "revoked_at")
    list_filter = ("created_at",)
    search_fields = ("customer__name", "sent_to")
    list_select_related = ("customer",)
    exclude = ("token_hash",)
    actions = ("revoke", "send_new")

    @admin.action(description="Revoke these customers' portal access", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[PortalLink]) -> None:
        for customer_id in sorted(set(queryset.values_list("customer_id", flat=True))):
            done = portal_revoke(actor=request.user, customer_id=customer_id)
            self.message_user(
                request,
                f"Customer {customer_id}: {done.links} link(s) withdrawn, "
                f"{done.sessions} session(s) ended.",
                messages.SUCCESS,
            )

    @admin.action(description="Email these customers a new link", permissions=["send"])
    def send_new(self, request: HttpRequest, queryset: QuerySet[PortalLink]) -> None:
        for customer_id in sorted(set(queryset.values_list("customer_id", flat=True))):
            link = portal_link_send(actor=request.user, customer_id=customer_id)
            self.message_user(request, f"Link sent to {link.sent_to}.", messages.SUCCESS)


@admin.register(PortalSession)
class PortalSessionAdmin(_CustomerActions, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("customer", "created_at", "last_seen_at", "ended_at", "end_reason", "ip")
    list_filter = ("ended_at",)
    search_fields = ("customer__name", "=ip")
    list_select_related = ("customer",)
    exclude = ("key_hash",)
    actions = ("revoke",)

    @admin.action(description="Revoke these customers' portal access", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[PortalSession]) -> None:
        for customer_id in sorted(set(queryset.values_list("customer_id", flat=True))):
            done = portal_revoke(actor=request.user, customer_id=customer_id)
            self.message_user(
                request,
                f"Customer {customer_id}: {done.sessions} session(s) ended.",
                messages.SUCCESS,
            )


@admin.register(PortalAccess)
class PortalAccessAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "customer", "action", "path", "ip", "detail")
    list_filter = ("action", "at")
    search_fields = ("customer__name", "=ip", "detail")
    list_select_related = ("customer",)
    date_hierarchy = "at"
    show_full_result_count = False


@admin.register(DisputeMessage)
class DisputeMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("dispute", "created_at", "attachment_name")
    fields = ("dispute", "message", "attachment", "attachment_name", "created_at")
    list_select_related = ("dispute",)
