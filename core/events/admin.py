"""Outbound events in the workspace: endpoints (made, changed, rotated through the services),
the events sent (replayed from here), and every delivery with its tries."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import AuditedAdmin, ReadOnlyAdminMixin
from core.events.models import (
    EVENT_TYPES,
    Delivery,
    DeliveryAttempt,
    Event,
    WebhookEndpoint,
)
from core.events.services import (
    endpoint_create,
    endpoint_secret_rotate,
    endpoint_update,
    event_replay,
)
from core.exceptions import DomainError


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "enabled")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdmin):
    form = EndpointForm
    list_display = ("url", "description", "enabled", "consecutive_failures", "disabled_reason")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    readonly_fields = (
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "consecutive_failures",
        "previous_secret_expires_at",
        "created_at",
        "created_by",
    )
    actions = ("rotate_secret",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disabled, never deleted: its deliveries stay on record

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            saved = endpoint_update(
                actor=request.user,
                endpoint_id=obj.pk,
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
                enabled=data["enabled"],
            )
        else:
            saved = endpoint_create(
                actor=request.user,
                url=data["url"],
                description=data["description"],
                event_types=data["event_types"],
            )
            messages.warning(
                request,
                f"The signing secret of {saved.url}, shown this once: {saved.secret}",
            )
        obj.pk = saved.pk

    @admin.action(description="Rotate the signing secret (the old one signs for 24 hours)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            try:
                rotated = endpoint_secret_rotate(actor=request.user, endpoint_id=endpoint.pk)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            self.message_user(
                request,
                f"New signing secret of {rotated.url}, shown this once: {rotated.secret}",
                messages.WARNING,
            )


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("public_id", "type", "object_type", "object_id", "created_at")
    list_filter = ("type", "object_type")
    search_fields = ("=public_id", "=object_id")
    date_hierarchy = "created_at"
    fields = ("public_id", "type", "object_type", "object_id", "data", "created_at")
    actions = ("replay",)
    show_full_result_count = False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("events.replay_event"))

    @admin.action(
        description="Send again to every endpoint that takes them", permissions=["replay"]
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        count = 0
        for event in queryset[:500]:
            count += len(event_replay(actor=request.user, event_id=event.public_id))
        self.message_user(request, f"{count} deliveries queued.", messages.SUCCESS)


class TryInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("at", "status_code", "response_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_response_ms",
        "next_attempt_at",
        "replay",
    )
    list_filter = ("status", "endpoint", "replay")
    search_fields = ("=event__public_id", "object_key")
    list_select_related = ("event", "endpoint")
    inlines = (TryInline,)
    show_full_result_count = False
