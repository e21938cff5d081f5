"""``GET /api/accounts/credit/{customer}``: the customer's credit panel."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Customer
from core.api.fields import DateField
from core.money import round_money
from receivables.scoring import customer_credit_get


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
    rate_date = DateField()


class CustomerCreditOutput(serializers.Serializer):
    customer = serializers.IntegerField()
    name = serializers.CharField()
    currency = serializers.CharField()
    as_of = DateField()
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
        customer: Customer = get_object_or_404(Customer.objects.all(), pk=customer_id)
        credit = customer_credit_get(customer=customer)
        exposure = credit.exposure
        c = customer.currency

        def money(value: Any) -> str:
            return f"{round_money(value, c):f}"

        limit = customer.credit_limit
        available = credit.available
        body = {
            "customer": customer.pk,
            "name": customer.name,
            "currency": c,
            "as_of": credit.as_of,
            "score": credit.score.score,
            "factors": [
                {
                    "name": f.name,
                    "value": f"{f.value:f}",
                    "weight": f.weight,
                    "contribution": f"{f.contribution:f}",
                    "explanation": f.explanation,
                }
                for f in credit.score.factors
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
            "available": None if available is None else money(available),
        }
        return Response(CustomerCreditOutput(body).data)
