"""Disputes: ``/api/accounts/disputes`` (list, open) and ``/{id}/review|resolve``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import AmountField
from core.api.pagination import Pagination, paged
from core.money import round_money
from receivables.models_disputes import Dispute, DisputeStatus
from receivables.services.disputes import (
    OUTCOMES,
    dispute_open,
    dispute_resolve,
    dispute_review,
)

VIEW = ["receivables.view_dispute"]


class DisputeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    invoice = serializers.IntegerField(source="invoice_id")
    customer = serializers.IntegerField(source="customer_id")
    currency = serializers.CharField()
    amount = serializers.SerializerMethodField()
    reason = serializers.CharField()
    status = serializers.CharField()
    opened_at = serializers.DateTimeField()
    opened_by = serializers.IntegerField(source="opened_by_id", allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.IntegerField(source="resolved_by_id", allow_null=True)
    resolution_note = serializers.CharField()
    credit_note = serializers.IntegerField(source="credit_note_id", allow_null=True)
    stripe_dispute_id = serializers.CharField(allow_null=True)
    evidence_due_by = serializers.DateTimeField(allow_null=True)
    processor_status = serializers.CharField()

    def get_amount(self, obj: Dispute) -> str:
        return f"{round_money(obj.amount.amount, obj.currency):f}"


def _out(dispute: Dispute) -> dict[str, Any]:
    return dict(DisputeOutput(dispute).data)


class DisputeListOpenApi(APIView):
    """GET: disputes, newest first, filtered by status and customer (roles: finance_admin,
    controller, ar_clerk, auditor). POST: open one (ar_clerk, finance_admin)."""

    required_permissions = {"GET": VIEW, "POST": ["receivables.add_dispute"]}

    class FilterInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=DisputeStatus.choices, required=False)
        customer = serializers.IntegerField(required=False, min_value=1)

    class OpenInput(serializers.Serializer):
        invoice = serializers.IntegerField(min_value=1)
        amount = AmountField()
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("customer", int)],
        responses=paged(DisputeOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = Dispute.objects.filter(**filters.validated_data).order_by("-opened_at", "-pk")
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response([_out(d) for d in page])

    @extend_schema(request=OpenInput, responses={201: DisputeOutput})
    def post(self, request: Request) -> Response:
        data = self.OpenInput(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = dispute_open(
            actor=request.user,
            invoice_id=data.validated_data["invoice"],
            amount=data.validated_data["amount"],
            reason=data.validated_data["reason"],
        )
        return Response(_out(dispute), status=status.HTTP_201_CREATED)


class DisputeReviewApi(APIView):
    """Open -> under review (ar_clerk, finance_admin, controller)."""

    required_permissions = {"POST": ["receivables.review_dispute"]}

    @extend_schema(request=None, responses=DisputeOutput)
    def post(self, request: Request, dispute_id: int) -> Response:
        return Response(_out(dispute_review(actor=request.user, dispute_id=dispute_id)))


class DisputeResolveApi(APIView):
    """Under review -> upheld (credit note) or rejected (finance_admin, controller)."""

    required_permissions = {"POST": ["receivables.resolve_dispute"]}

    class ResolveInput(serializers.Serializer):
        outcome = serializers.ChoiceField(choices=OUTCOMES)
        note = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=ResolveInput, responses=DisputeOutput)
    def post(self, request: Request, dispute_id: int) -> Response:
        data = self.ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = dispute_resolve(actor=request.user, dispute_id=dispute_id, **data.validated_data)
        return Response(_out(dispute))
