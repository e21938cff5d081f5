"""The portal in the workspace: who signed in, what they did, revoking their access, and the
messages and files customers sent with their disputes (also shown on the dispute's page).

A dispute's file is read only through ``admin:portal_disputemessage_attachment``: for staff
who may view disputes (``receivables.view_dispute``, else 403), always as a download with the
type its first bytes were checked to be, and every read logged in the portal's access log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import linebreaksbr
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdminMixin
from core.exceptions import NotFound, PermissionDeniedError
from portal.models import DisputeMessage, PortalAccess, PortalLink, PortalSession
from portal.services import dispute_attachment_read, portal_link_send, portal_revoke
from receivables.admin_disputes import dispute_panel_register
from receivables.models_disputes import Dispute

# A downloaded file runs nothing and loads nothing, even if a browser were to render it.
ATTACHMENT_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


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


def attachment_link(note: DisputeMessage) -> str:
    if not note.attachment:
        return "-"
    url = reverse("admin:portal_disputemessage_attachment", args=[note.pk])
    return format_html(
        '<a class="text-primary-600 underline dark:text-primary-500" href="{}">Download {}</a>',
        url,
        note.attachment_name or "the file",
    )


def dispute_messages_panel(dispute: Dispute) -> str:
    """What the customer wrote on the portal about this dispute, with each file's link."""
    notes = DisputeMessage.objects.filter(dispute=dispute).order_by("created_at", "pk")
    if not notes:
        return "No message from the customer portal."
    rows = format_html_join(
        "",
        '<li style="padding:.5rem 0;border-top:1px solid rgba(128,128,128,.2)">'
        '<div style="font-size:.85em;opacity:.75">{}</div><div>{}</div><div>{}</div></li>',
        (
            (f"{n.created_at:%Y-%m-%d %H:%M} UTC", linebreaksbr(n.message), attachment_link(n))
            for n in notes
        ),
    )
    return format_html(
        '<ul class="portal-dispute-messages" style="list-style:none;margin:0;padding:0">{}</ul>',
        rows,
    )


dispute_panel_register(title="Customer messages", render=dispute_messages_panel)


@admin.register(DisputeMessage)
class DisputeMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Roles: view for finance_admin, ar_clerk, controller, auditor. Written by the portal
    only; the file opens through the attachment view below, never from the storage."""

    list_display = ("dispute", "created_at", "attachment_name", "attachment_download")
    fields = ("dispute", "message", "attachment_download", "attachment_name", "created_at")
    readonly_fields = ("attachment_download",)
    list_select_related = ("dispute",)

    @admin.display(description="Attachment")
    def attachment_download(self, note: DisputeMessage) -> str:
        return attachment_link(note)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/attachment/",
                self.admin_site.admin_view(self.attachment_view),
                name="portal_disputemessage_attachment",
            ),
            *super().get_urls(),
        ]

    def attachment_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        message_id = unquote(object_id)
        if not message_id.isdigit():
            raise Http404
        try:
            attachment = dispute_attachment_read(
                actor=request.user,
                message_id=int(message_id),
                ip=request.META.get("REMOTE_ADDR") or None,
                path=request.path,
            )
        except PermissionDeniedError:
            raise PermissionDenied from None
        except NotFound:
            raise Http404 from None
        response = HttpResponse(attachment.content, content_type=attachment.content_type)
        response["Content-Disposition"] = f'attachment; filename="{attachment.filename}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = ATTACHMENT_CSP
        response["Cache-Control"] = "private, no-store"
        response["Cross-Origin-Resource-Policy"] = "same-origin"
        return response
