"""Cash-flow projection and revenue forecast API.

Read-only, for ``reporting.view_financial_reports`` (finance_admin, controller, auditor,
integration). Amounts go out as decimal strings rounded to each currency's minor unit, each row
with its currency; currencies are never converted or added together. A number of weeks outside
1-52 (months outside 1-36) or an unknown currency is refused with 400 naming the parameter.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import CurrencyField, DateField
from reporting.forecast import revenue_forecast
from reporting.projection import DEFAULT_SEED, cash_flow_projection

PERMISSION = "reporting.view_financial_reports"


def _amount(help_text: str = "") -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=24, decimal_places=4, coerce_to_string=True, help_text=help_text or None
    )


class ProjectionWeekOutput(serializers.Serializer):
    currency = serializers.CharField()
    week = serializers.IntegerField(help_text="1 is the seven days after as_of.")
    start_date = DateField()
    end_date = DateField()
    receipts = _amount()
    disbursements = _amount()
    net = _amount()
    closing_cash = _amount(help_text="Point estimate: receipts at due date + median days late.")
    p10_closing_cash = _amount()
    p50_closing_cash = _amount()
    p90_closing_cash = _amount()


class OpeningCashOutput(serializers.Serializer):
    currency = serializers.CharField()
    opening_cash = _amount(help_text="Cash and processor clearing at the end of as_of.")
    simulations = serializers.IntegerField(
        help_text=(
            "Monte Carlo runs behind the bands (1 when no receipt's timing is uncertain, 0 "
            "when the bands are the normal approximation)."
        )
    )
    bands = serializers.ChoiceField(
        choices=["simulation", "normal"],
        help_text=(
            "How the P10/P50/P90 were found: a seeded simulation, or, with too many "
            "uncertain receipts to simulate, the normal distribution with the receipts' "
            "exact mean and variance."
        ),
    )


class CashFlowProjectionOutput(serializers.Serializer):
    as_of = DateField()
    seed = serializers.IntegerField(help_text="The simulation's seed: same data, same bands.")
    currencies = OpeningCashOutput(many=True)
    weeks = ProjectionWeekOutput(many=True)


class CashFlowProjectionApi(APIView):
    """The 13-week (1-52) cash-flow projection per currency, with P10/P50/P90 closing cash."""

    required_permissions = {"GET": [PERMISSION]}

    class FilterInput(serializers.Serializer):
        weeks = serializers.IntegerField(required=False, default=13, min_value=1, max_value=52)
        currency = CurrencyField(required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("weeks", int, description="1 to 52; 13 when omitted"),
            OpenApiParameter("currency", str, description="ISO 4217; every currency if omitted"),
        ],
        responses=CashFlowProjectionOutput,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        as_of = timezone.localdate()
        projections = cash_flow_projection(
            as_of=as_of, weeks=data["weeks"], currency=data.get("currency")
        )
        body = {
            "as_of": as_of,
            "seed": DEFAULT_SEED,
            "currencies": [
                {
                    "currency": p.currency,
                    "opening_cash": p.opening_cash,
                    "simulations": p.simulations,
                    "bands": p.bands,
                }
                for p in projections
            ],
            "weeks": [
                {"currency": p.currency, **{f: getattr(w, f) for f in _WEEK_FIELDS}}
                for p in projections
                for w in p.weeks
            ],
        }
        return Response(CashFlowProjectionOutput(body).data)


_WEEK_FIELDS = (
    "week",
    "start_date",
    "end_date",
    "receipts",
    "disbursements",
    "net",
    "closing_cash",
    "p10_closing_cash",
    "p50_closing_cash",
    "p90_closing_cash",
)


class ForecastMonthOutput(serializers.Serializer):
    currency = serializers.CharField()
    month = DateField(help_text="The month's first day.")
    contracted = _amount()
    usage = _amount()
    low = _amount()
    expected = _amount()
    high = _amount()


class ForecastCurrencyOutput(serializers.Serializer):
    currency = serializers.CharField()
    churn_rate = serializers.DecimalField(max_digits=9, decimal_places=6)
    churn_low = serializers.DecimalField(max_digits=9, decimal_places=6)
    churn_high = serializers.DecimalField(max_digits=9, decimal_places=6)
    usage_run_rate = _amount()


class RevenueForecastOutput(serializers.Serializer):
    as_of = DateField()
    currencies = ForecastCurrencyOutput(many=True)
    months = ForecastMonthOutput(many=True)


class RevenueForecastApi(APIView):
    """Monthly revenue forecast (1-36 months) per currency: contracted subscription revenue,
    usage run-rate and churn, with a low / expected / high band."""

    required_permissions = {"GET": [PERMISSION]}

    class FilterInput(serializers.Serializer):
        months = serializers.IntegerField(required=False, default=12, min_value=1, max_value=36)
        currency = CurrencyField(required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("months", int, description="1 to 36; 12 when omitted"),
            OpenApiParameter("currency", str, description="ISO 4217; every currency if omitted"),
        ],
        responses=RevenueForecastOutput,
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        as_of = timezone.localdate()
        forecasts = revenue_forecast(
            as_of=as_of, months=data["months"], currency=data.get("currency")
        )
        body = {
            "as_of": as_of,
            "currencies": [
                {
                    "currency": f.currency,
                    "churn_rate": f.churn_rate,
                    "churn_low": f.churn_low,
                    "churn_high": f.churn_high,
                    "usage_run_rate": f.usage_run_rate,
                }
                for f in forecasts
            ],
            "months": [
                {
                    "currency": f.currency,
                    "month": m.month,
                    "contracted": m.contracted,
                    "usage": m.usage,
                    "low": m.low,
                    "expected": m.expected,
                    "high": m.high,
                }
                for f in forecasts
                for m in f.months
            ],
        }
        return Response(RevenueForecastOutput(body).data)
