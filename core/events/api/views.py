"""Outbound events: the poll fallback (``GET /api/events``), replay, and the endpoints."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.events.api.serializers import (
    EndpointInput,
    EndpointOutput,
    EndpointPatchInput,
    EndpointWithSecretOutput,
    EventOutput,
    EventPageOutput,
    ReplayInput,
    ReplayOutput,
    RotateInput,
    endpoint_data,
)
from core.events.models import EVENT_TYPES, Event, WebhookEndpoint
from core.events.services import (
    endpoint_create,
    endpoint_secret_rotate,
    endpoint_update,
    event_replay,
)
from core.exceptions import NotFound


class EventListApi(APIView):
    """Events oldest first. Page with ``after`` (the last id of the page before, given as
    ``next_after``); ``since`` starts from a moment instead; ``type`` takes several types
    separated by commas."""

    required_permissions = {"GET": ["events.view_event"]}

    class FilterInput(serializers.Serializer):
        type = serializers.CharField(required=False, max_length=2000)
        since = serializers.DateTimeField(required=False)
        after = serializers.CharField(required=False, max_length=40)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)

        def validate_type(self, value: str) -> list[str]:
            types = [t.strip() for t in value.split(",") if t.strip()]
            unknown = [t for t in types if t not in EVENT_TYPES]
            if unknown:
                raise serializers.ValidationError(f"Unknown event type {unknown[0]!r}.")
            return types

    @extend_schema(
        parameters=[
            OpenApiParameter("type", str, description="invoice.paid,payment.succeeded"),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601 date-time"),
            OpenApiParameter("after", str, description="an event id (evt_...)"),
            OpenApiParameter("limit", int, description="1 to 500 (100)"),
        ],
        responses=EventPageOutput,
        operation_id="events_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        events = Event.objects.order_by("pk")
        if params.get("type"):
            events = events.filter(type__in=params["type"])
        if params.get("since"):
            events = events.filter(created_at__gte=params["since"])
        if params.get("after"):
            cursor = Event.objects.filter(public_id=params["after"]).values_list("pk", flat=True)
            if not cursor:
                raise NotFound(f"No event {params['after']}.", field="after")
            events = events.filter(pk__gt=cursor[0])
        limit = params["limit"]
        rows = list(events[: limit + 1])
        page = rows[:limit]
        return Response(
            {
                "results": EventOutput(page, many=True).data,
                "has_more": len(rows) > limit,
                "next_after": page[-1].public_id if page else params.get("after"),
            }
        )


class EventDetailApi(APIView):
    required_permissions = {"GET": ["events.view_event"]}

    @extend_schema(responses=EventOutput)
    def get(self, request: Request, event_id: str) -> Response:
        event = Event.objects.filter(public_id=event_id).first()
        if event is None:
            raise NotFound(f"No event {event_id}.")
        return Response(EventOutput(event).data)


class EventReplayApi(APIView):
    required_permissions = {"POST": ["events.replay_event"]}

    @extend_schema(request=ReplayInput, responses={202: ReplayOutput})
    def post(self, request: Request, event_id: str) -> Response:
        data = ReplayInput(data=request.data)
        data.is_valid(raise_exception=True)
        deliveries = event_replay(
            actor=request.user, event_id=event_id, endpoint_id=data.validated_data.get("endpoint")
        )
        return Response({"deliveries": len(deliveries)}, status=status.HTTP_202_ACCEPTED)


class EndpointListCreateApi(APIView):
    required_permissions = {
        "GET": ["events.view_webhookendpoint"],
        "POST": ["events.add_webhookendpoint"],
    }

    @extend_schema(responses=EndpointOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(EndpointOutput(WebhookEndpoint.objects.order_by("pk"), many=True).data)

    @extend_schema(request=EndpointInput, responses={201: EndpointWithSecretOutput})
    def post(self, request: Request) -> Response:
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoint_create(actor=request.user, **data.validated_data)
        return Response(endpoint_data(endpoint, with_secret=True), status=status.HTTP_201_CREATED)


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


class EndpointDetailApi(APIView):
    required_permissions = {
        "GET": ["events.view_webhookendpoint"],
        "PATCH": ["events.change_webhookendpoint"],
    }

    @extend_schema(responses=EndpointOutput)
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(EndpointOutput(_endpoint(endpoint_id)).data)

    @extend_schema(request=EndpointPatchInput, responses=EndpointOutput)
    def patch(self, request: Request, endpoint_id: int) -> Response:
        data = EndpointPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoint_update(
            actor=request.user, endpoint_id=endpoint_id, **data.validated_data
        )
        return Response(EndpointOutput(endpoint).data)


class EndpointRotateApi(APIView):
    required_permissions = {"POST": ["events.change_webhookendpoint"]}

    @extend_schema(request=RotateInput, responses=EndpointWithSecretOutput)
    def post(self, request: Request, endpoint_id: int) -> Response:
        data = RotateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = endpoint_secret_rotate(
            actor=request.user,
            endpoint_id=endpoint_id,
            overlap=timedelta(hours=data.validated_data["overlap_hours"]),
        )
        return Response(endpoint_data(endpoint, with_secret=True))
