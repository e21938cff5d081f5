"""The dashboard's figures as JSON (``GET /api/reporting/dashboard``).

For ``reporting.view_dashboard`` (every staff role), with the panels filtered by role as on
the workspace's start page (``reporting.dashboard.dashboard_figures``): a panel the caller
may not see is null. Amounts go out as decimal strings with 4 places, each with its
currency; currencies are never converted or added together. A bad or future ``as_of`` is
refused with 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.aging import AgingBucket
from core.api.fields import DateField
from reporting.dashboard import dashboard_figures, dashboard_json

PERMISSION = "reporting.view_dashboard"


def _amount(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=24, decimal_places=4, **kwargs)


# ----------------------------------------------------------------------------------- input


class DashboardInput(serializers.Serializer):
    as_of = DateField(required=False)

    def validate_as_of(self, value: Any) -> Any:
        if value > timezone.localdate():
            raise serializers.ValidationError("The date is in the future.")
        return value


# ---------------------------------------------------------------------------------- output


class FigureValueOutput(serializers.Serializer):
    currency = serializers.CharField(help_text="Empty for figures that are not money.")
    value = _amount(allow_null=True)


class FigureOutput(serializers.Serializer):
    code = serializers.CharField()
    # DRF's metaclass takes declared fields off the class: no shadowing of Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.CharField(help_text="money, days, percent or count.")
    how = serializers.CharField(help_text="How it is computed (the page's tooltip).")
    values = FigureValueOutput(many=True, help_text="One per currency; empty when undefined.")


class CountOutput(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    how = serializers.CharField()
    count = serializers.IntegerField()
    link = serializers.CharField(help_text="The queue in the workspace.")


class CashAccountOutput(serializers.Serializer):
    bank_account_id = serializers.IntegerField()
    name = serializers.CharField()
    currency = serializers.CharField()
    book_balance = _amount()
    statement_balance = _amount(allow_null=True)
    statement_date = DateField(allow_null=True)


class CashOutput(serializers.Serializer):
    how = serializers.CharField()
    statement_how = serializers.CharField()
    accounts = CashAccountOutput(many=True)
    total = FigureOutput()


class BucketOutput(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=AgingBucket.choices)
    label = serializers.CharField()  # type: ignore[assignment]
    amount = _amount()


class AgingCurrencyOutput(serializers.Serializer):
    currency = serializers.CharField()
    total = _amount()
    buckets = BucketOutput(many=True)


class AgingOutput(serializers.Serializer):
    how = serializers.CharField()
    item_count = serializers.IntegerField()
    currencies = AgingCurrencyOutput(many=True)


class MovementOutput(serializers.Serializer):
    currency = serializers.CharField()
    new = _amount()
    expansion = _amount()
    contraction = _amount()
    churn = _amount()
    reactivation = _amount()


class MrrOutput(serializers.Serializer):
    mrr = FigureOutput()
    arr = FigureOutput()
    movement_how = serializers.DictField(child=serializers.CharField())
    movement = MovementOutput(many=True, help_text="Month to date, per currency.")


class SuccessSeriesOutput(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]
    attempted = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    rates = serializers.ListField(
        child=_amount(allow_null=True), help_text="Percent per week; null with no attempt."
    )


class DeclineOutput(serializers.Serializer):
    code = serializers.CharField()
    count = serializers.IntegerField()


class PaymentSuccessOutput(serializers.Serializer):
    how = serializers.CharField()
    attempted = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    week_ends = serializers.ListField(child=DateField())
    by_processor = SuccessSeriesOutput(many=True)
    by_method = SuccessSeriesOutput(many=True)
    top_decline_codes = DeclineOutput(many=True)


class DashboardProjectionWeekOutput(serializers.Serializer):
    week = serializers.IntegerField()
    start_date = DateField()
    end_date = DateField()
    receipts = _amount()
    disbursements = _amount()
    closing_cash = _amount()
    p10_closing_cash = _amount()
    p50_closing_cash = _amount()
    p90_closing_cash = _amount()


class DashboardProjectionCurrencyOutput(serializers.Serializer):
    currency = serializers.CharField()
    opening_cash = _amount()
    weeks = DashboardProjectionWeekOutput(many=True)


class DashboardProjectionOutput(serializers.Serializer):
    how = serializers.CharField()
    currencies = DashboardProjectionCurrencyOutput(many=True)


class DashboardOutput(serializers.Serializer):
    as_of = DateField()
    counts = CountOutput(many=True)
    cash = CashOutput(allow_null=True)
    ar = AgingOutput(allow_null=True)
    ap = AgingOutput(allow_null=True)
    ratios = FigureOutput(many=True, allow_null=True)
    mrr = MrrOutput(allow_null=True)
    payment_success = PaymentSuccessOutput(allow_null=True)
    projection = DashboardProjectionOutput(allow_null=True)


# ----------------------------------------------------------------------------------- views


class DashboardApi(APIView):
    required_permissions = {"GET": [PERMISSION]}

    @extend_schema(
        summary="Dashboard figures",
        description="The workspace dashboard's figures as of the end of a day (today by "
        "default), each with how it is computed. Panels follow the caller's role: AR aging "
        "with billing.view_invoice, AP aging with payables.view_bill, cash, ratios, MRR, "
        "payment success and the projection with reporting.view_financial_reports, each "
        "queue count with its queue's view permission; a panel not allowed is null.",
        parameters=[
            OpenApiParameter(
                "as_of", OpenApiTypes.DATE, description="YYYY-MM-DD; today when omitted"
            )
        ],
        responses=DashboardOutput,
    )
    def get(self, request: Request) -> Response:
        data = DashboardInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        as_of = data.validated_data.get("as_of") or timezone.localdate()
        return Response(dashboard_json(dashboard_figures(request.user, as_of)))
