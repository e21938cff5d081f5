"""``/api/accounts/payment-plans``: create a payment plan, list and read them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import BusinessDateField, DateField
from core.api.pagination import Pagination, paged
from core.money import round_money
from receivables.models_plans import PaymentPlan
from receivables.services.payment_plans import MAX_INSTALLMENTS, payment_plan_create

VIEW = ["receivables.view_paymentplan", "receivables.view_installment"]


def payment_plan_qs() -> QuerySet[PaymentPlan]:
    return PaymentPlan.objects.select_related("customer").prefetch_related(
        "installments", "plan_invoices__invoice"
    )


class PaymentPlanInput(serializers.Serializer):
    customer = serializers.IntegerField()
    invoices = serializers.ListField(child=serializers.IntegerField(), min_length=1)
    installments = serializers.IntegerField(min_value=1, max_value=MAX_INSTALLMENTS)
    first_due_date = BusinessDateField()
    # Either every ``interval_days`` days, or monthly (the default).
    interval_days = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    monthly = serializers.BooleanField(required=False)
    payment_method = serializers.IntegerField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("interval_days") and attrs.get("monthly"):
            raise serializers.ValidationError("Give interval_days or monthly, not both.")
        return attrs


class InstallmentOutput(serializers.Serializer):
    sequence = serializers.IntegerField()
    due_date = DateField()
    amount = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    paid_date = DateField(allow_null=True)
    paid_payment = serializers.IntegerField(allow_null=True)


class PlanInvoiceOutput(serializers.Serializer):
    invoice = serializers.IntegerField()
    number = serializers.CharField()
    amount = serializers.CharField()


class PaymentPlanOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField()
    currency = serializers.CharField()
    total = serializers.CharField()
    amount_paid = serializers.CharField()
    status = serializers.CharField()
    first_due_date = DateField()
    interval_days = serializers.IntegerField(allow_null=True)
    monthly = serializers.BooleanField()
    payment_method = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    invoices = PlanInvoiceOutput(many=True)
    installments = InstallmentOutput(many=True)


def _render(plan: PaymentPlan) -> dict[str, Any]:
    c = plan.currency

    def money(value: Any) -> str:
        return f"{round_money(value.amount, c):f}"

    return PaymentPlanOutput(
        {
            "id": plan.pk,
            "customer": plan.customer_id,
            "currency": c,
            "total": money(plan.total),
            "amount_paid": money(plan.amount_paid),
            "status": plan.status,
            "first_due_date": plan.first_due_date,
            "interval_days": plan.interval_days,
            "monthly": plan.interval_days is None,
            "payment_method": plan.payment_method_id,
            "created_at": plan.created_at,
            "invoices": [
                {"invoice": p.invoice_id, "number": p.invoice.number, "amount": money(p.amount)}
                for p in plan.plan_invoices.all()
            ],
            "installments": [
                {
                    "sequence": i.sequence,
                    "due_date": i.due_date,
                    "amount": money(i.amount),
                    "status": i.status,
                    "attempts": i.attempts,
                    "paid_date": i.paid_date,
                    "paid_payment": i.paid_payment_id,
                }
                for i in plan.installments.all()
            ],
        }
    ).data


class PaymentPlanListCreateApi(APIView):
    """Roles: create for finance_admin and ar_clerk; list for those, controller and auditor."""

    required_permissions = {"GET": VIEW, "POST": ["receivables.add_paymentplan"]}

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", int),
            OpenApiParameter("status", str),
        ],
        responses=paged(PaymentPlanOutput),
    )
    def get(self, request: Request) -> Response:
        plans = payment_plan_qs()
        if customer := request.query_params.get("customer"):
            if not customer.isdigit():
                raise serializers.ValidationError({"customer": "An id."})
            plans = plans.filter(customer_id=int(customer))
        if state := request.query_params.get("status"):
            plans = plans.filter(status=state)
        paginator = Pagination()
        page = paginator.paginate_queryset(plans, request, view=self) or []
        return paginator.get_paginated_response([_render(p) for p in page])

    @extend_schema(request=PaymentPlanInput, responses={201: PaymentPlanOutput})
    def post(self, request: Request) -> Response:
        data = PaymentPlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        plan = payment_plan_create(
            actor=request.user,
            customer_id=v["customer"],
            invoice_ids=v["invoices"],
            installments=v["installments"],
            first_due_date=v["first_due_date"],
            interval_days=v.get("interval_days"),
            payment_method_id=v.get("payment_method"),
        )
        return Response(_render(payment_plan_qs().get(pk=plan.pk)), status=status.HTTP_201_CREATED)


class PaymentPlanDetailApi(APIView):
    """Roles: finance_admin, ar_clerk, controller, auditor."""

    required_permissions = {"GET": VIEW}

    @extend_schema(responses=PaymentPlanOutput)
    def get(self, request: Request, plan_id: int) -> Response:
        return Response(_render(get_object_or_404(payment_plan_qs(), pk=plan_id)))


urlpatterns = [
    path("payment-plans", PaymentPlanListCreateApi.as_view(), name="accounts-payment-plans"),
    path(
        "payment-plans/<int:plan_id>",
        PaymentPlanDetailApi.as_view(),
        name="accounts-payment-plan",
    ),
]
