"""``GET /api/accounts/credit/{customer}``: the customer's credit panel."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Customer
from billing.services.credit import customer_exposure
from core.money import round_money
from receivables.scoring import credit_figures_get, credit_score


class FactorOutput(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField()
    weight = serializers.IntegerField()
    contribution = serializers.CharField()
    explanation = serializers.CharField()


class ExposureDetailOutput(serializers.Serializer):
    open_amount = serializers.CharField()
    credit_balance = serializers.CharField()
    converted_from = serializers.ListField(child=serializers.CharField())
    rate_date = serializers.DateField()


class CustomerCreditOutput(serializers.Serializer):
    customer = serializers.IntegerField()
    name = serializers.CharField()
    currency = serializers.CharField()
    as_of = serializers.DateField()
    score = serializers.IntegerField(min_value=0, max_value=100)
    factors = FactorOutput(many=True)
    credit_limit = serializers.CharField(allow_null=True)
    credit_hold = serializers.BooleanField()
    credit_hold_reason = serializers.CharField()
    exposure = serializers.CharField()
    exposure_detail = ExposureDetailOutput()
    available = serializers.CharField(allow_null=True)


class CustomerCreditApi(APIView):
    """Score, factors, limit and exposure of one customer. Exposure is the amount due on
    its open invoices in its currency (other currencies at today's rate) minus its credit
    balance. Roles: those who view customers (finance_admin, controller, ar_clerk,
    approver, auditor, integration)."""

    required_permissions = {"GET": ["billing.view_customer"]}

    @extend_schema(responses=CustomerCreditOutput)
    def get(self, request: Request, customer_id: int) -> Response:
        customer = get_object_or_404(Customer.objects.all(), pk=customer_id)
        as_of = timezone.localdate()
        exposure = customer_exposure(customer=customer, on_date=as_of)
        result = credit_score(credit_figures_get(customer=customer, as_of=as_of, exposure=exposure))
        c = customer.currency

        def money(value: Any) -> str:
            return f"{round_money(value, c):f}"

        limit = customer.credit_limit
        body = {
            "customer": customer.pk,
            "name": customer.name,
            "currency": c,
            "as_of": as_of,
            "score": result.score,
            "factors": [
                {
                    "name": f.name,
                    "value": f"{f.value:f}",
                    "weight": f.weight,
                    "contribution": f"{f.contribution:f}",
                    "explanation": f.explanation,
                }
                for f in result.factors
            ],
            "credit_limit": None if limit is None else money(limit),
            "credit_hold": customer.credit_hold,
            "credit_hold_reason": customer.credit_hold_reason,
            "exposure": money(exposure.total),
            "exposure_detail": {
                "open_amount": money(exposure.open_amount),
                "credit_balance": money(exposure.credit_balance),
                "converted_from": list(exposure.converted_from),
                "rate_date": exposure.rate_date,
            },
            # What may still be issued before the limit; never below zero.
            "available": None if limit is None else money(max(limit - exposure.total, 0)),
        }
        return Response(CustomerCreditOutput(body).data)
