from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.events.models import EVENT_TYPES, Event, WebhookEndpoint


class EventOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    type = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    object = serializers.SerializerMethodField()
    data = serializers.JSONField()  # type: ignore[assignment]

    def get_object(self, event: Event) -> dict[str, str]:
        return {"type": event.object_type, "id": event.object_id}


class EventPageOutput(serializers.Serializer):
    results = EventOutput(many=True)
    has_more = serializers.BooleanField()
    next_after = serializers.CharField(allow_null=True)


class EndpointOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class EndpointWithSecretOutput(EndpointOutput):
    """Given once, when the endpoint is made or its secret rotated."""

    secret = serializers.CharField()


class EndpointInput(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, max_length=50
    )


class EndpointPatchInput(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, max_length=50
    )
    enabled = serializers.BooleanField(required=False)


class RotateInput(serializers.Serializer):
    overlap_hours = serializers.IntegerField(min_value=0, max_value=168, default=24)


class ReplayInput(serializers.Serializer):
    endpoint = serializers.IntegerField(required=False, min_value=1)


class ReplayOutput(serializers.Serializer):
    deliveries = serializers.IntegerField()


def endpoint_data(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    kind = EndpointWithSecretOutput if with_secret else EndpointOutput
    return dict(kind(endpoint).data)
