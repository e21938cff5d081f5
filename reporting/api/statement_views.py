"""Financial statements API: profit and loss, balance sheet, cash-flow statement.

Read-only, for ``reporting.view_financial_reports`` (finance_admin, controller, auditor,
integration). Amounts go out as decimal strings with 4 places, as the ledger stores them
(the trial balance API's convention), each with its currency; ``functional`` figures are in
``functional_currency``. A period running backwards or longer than 20 years is refused with
400 ``invalid_period`` naming the parameter; a missing or malformed date with 400 ``invalid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.fields import Field
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import DateField
from reporting.statements import (
    Figures,
    StatementSection,
    balance_sheet,
    cash_flow_statement,
    profit_and_loss,
)

PERMISSION = "reporting.view_financial_reports"


def _amount() -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=24, decimal_places=4)


# ---------------------------------------------------------------------------------- output


class FinancialAmountOutput(serializers.Serializer):
    currency = serializers.CharField()
    amount = _amount()


class FinancialFiguresOutput(serializers.Serializer):
    amounts = FinancialAmountOutput(many=True, help_text="Per transaction currency.")
    functional = _amount()


class FinancialLineOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Account code; empty for a computed line.")
    name = serializers.CharField()
    current = FinancialFiguresOutput()
    comparison = FinancialFiguresOutput(allow_null=True)


class FinancialSectionOutput(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    lines = FinancialLineOutput(many=True)
    total = FinancialFiguresOutput()
    comparison_total = FinancialFiguresOutput(allow_null=True)


class ProfitAndLossOutput(serializers.Serializer):
    # ``from`` is a keyword in Python: the fields are named in ``get_fields``.
    def get_fields(self) -> dict[str, Field]:
        return {
            "from": DateField(),
            "to": DateField(),
            "compare_from": DateField(allow_null=True),
            "compare_to": DateField(allow_null=True),
            "functional_currency": serializers.CharField(),
            "income": FinancialSectionOutput(),
            "expenses": FinancialSectionOutput(),
            "net_income": FinancialFiguresOutput(),
            "comparison_net_income": FinancialFiguresOutput(allow_null=True),
        }


class BalanceSheetOutput(serializers.Serializer):
    as_of = DateField()
    compare_as_of = DateField(allow_null=True)
    functional_currency = serializers.CharField()
    fiscal_year_start = DateField(
        help_text="The fiscal year is the calendar year: 'Current-year result' runs from here."
    )
    balanced = serializers.BooleanField()
    assets = FinancialSectionOutput()
    liabilities = FinancialSectionOutput()
    equity = FinancialSectionOutput(
        help_text="Equity accounts, then 'Retained earnings' (results of earlier years) and "
        "'Current-year result'."
    )
    liabilities_and_equity = FinancialFiguresOutput()
    comparison_liabilities_and_equity = FinancialFiguresOutput(allow_null=True)


class CashFlowAccountOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class CashFlowPositionOutput(serializers.Serializer):
    currency = serializers.CharField()
    opening = _amount()
    net_change = _amount()
    closing = _amount()


class CashFlowLineOutput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["customers", "vendors", "fees", "tax", "fx", "equity", "other"]
    )
    title = serializers.CharField()
    amounts = FinancialAmountOutput(many=True, help_text="Money in positive, out negative.")


class CashFlowStatementOutput(serializers.Serializer):
    def get_fields(self) -> dict[str, Field]:
        return {
            "from": DateField(),
            "to": DateField(),
            "cash_accounts": CashFlowAccountOutput(many=True),
            "cash": CashFlowPositionOutput(many=True),
            "lines": CashFlowLineOutput(many=True),
        }


def _amounts(amounts: Mapping[str, Decimal]) -> list[dict[str, Any]]:
    return [{"currency": c, "amount": a} for c, a in sorted(amounts.items())]


def _figures(figures: Figures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {"amounts": _amounts(figures.amounts), "functional": figures.functional}


def _section(section: StatementSection) -> dict[str, Any]:
    return {
        "key": section.key,
        "title": section.title,
        "lines": [
            {
                "code": line.code,
                "name": line.name,
                "current": _figures(line.current),
                "comparison": _figures(line.comparison),
            }
            for line in section.lines
        ],
        "total": _figures(section.total),
        "comparison_total": _figures(section.comparison_total),
    }


# ----------------------------------------------------------------------------------- input


class PeriodInput(serializers.Serializer):
    def get_fields(self) -> dict[str, Field]:
        return {"from": DateField(), "to": DateField()}


class ComparedPeriodInput(serializers.Serializer):
    def get_fields(self) -> dict[str, Field]:
        return {
            "from": DateField(),
            "to": DateField(),
            "compare_from": DateField(required=False),
            "compare_to": DateField(required=False),
        }


class AsOfInput(serializers.Serializer):
    as_of = DateField()
    compare_as_of = DateField(required=False)


def _date(name: str, description: str, *, required: bool = True) -> OpenApiParameter:
    return OpenApiParameter(
        name, OpenApiTypes.DATE, required=required, description=f"YYYY-MM-DD; {description}"
    )


# ----------------------------------------------------------------------------------- views


class ProfitAndLossApi(APIView):
    required_permissions = {"GET": [PERMISSION]}

    @extend_schema(
        summary="Profit and loss",
        description="Income and expense accounts moved in the period (both days included), "
        "per transaction currency and in the functional currency, with net income; with "
        "compare_from and compare_to, the same for a comparison period. At most 20 years.",
        parameters=[
            _date("from", "first day of the period"),
            _date("to", "last day of the period"),
            _date("compare_from", "first day of the comparison period", required=False),
            _date("compare_to", "last day of the comparison period", required=False),
        ],
        responses=ProfitAndLossOutput,
    )
    def get(self, request: Request) -> Response:
        data = ComparedPeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        pnl = profit_and_loss(
            given["from"], given["to"], given.get("compare_from"), given.get("compare_to")
        )
        body = {
            "from": pnl.date_from,
            "to": pnl.date_to,
            "compare_from": pnl.compare_from,
            "compare_to": pnl.compare_to,
            "functional_currency": pnl.functional_currency,
            "income": _section(pnl.income),
            "expenses": _section(pnl.expenses),
            "net_income": _figures(pnl.net_income),
            "comparison_net_income": _figures(pnl.comparison_net_income),
        }
        return Response(ProfitAndLossOutput(body).data)


class BalanceSheetApi(APIView):
    required_permissions = {"GET": [PERMISSION]}

    @extend_schema(
        summary="Balance sheet",
        description="Assets, liabilities and equity through as_of (entries dated later left "
        "out), per currency and in the functional currency. Results not closed into equity "
        "are shown as 'Retained earnings' (earlier fiscal years) and 'Current-year result', so "
        "assets equal liabilities plus equity.",
        parameters=[
            _date("as_of", "the day the balances are taken at"),
            _date("compare_as_of", "a second day for a comparison column", required=False),
        ],
        responses=BalanceSheetOutput,
    )
    def get(self, request: Request) -> Response:
        data = AsOfInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        sheet = balance_sheet(
            data.validated_data["as_of"], compare_as_of=data.validated_data.get("compare_as_of")
        )
        body = {
            "as_of": sheet.as_of,
            "compare_as_of": sheet.compare_as_of,
            "functional_currency": sheet.functional_currency,
            "fiscal_year_start": sheet.fiscal_year_start,
            "balanced": sheet.is_balanced,
            "assets": _section(sheet.assets),
            "liabilities": _section(sheet.liabilities),
            "equity": _section(sheet.equity),
            "liabilities_and_equity": _figures(sheet.liabilities_and_equity),
            "comparison_liabilities_and_equity": _figures(sheet.comparison_liabilities_and_equity),
        }
        return Response(BalanceSheetOutput(body).data)


class CashFlowStatementApi(APIView):
    required_permissions = {"GET": [PERMISSION]}

    @extend_schema(
        summary="Cash-flow statement (direct method)",
        description="Money in and out of the cash accounts (bank and cash, processor "
        "clearing) in the period, by kind of counterparty (the role of the other side's "
        "account), per currency, with opening and closing cash. Transfers between cash "
        "accounts (payouts) are no flow. At most 20 years.",
        parameters=[
            _date("from", "first day of the period"),
            _date("to", "last day of the period"),
        ],
        responses=CashFlowStatementOutput,
    )
    def get(self, request: Request) -> Response:
        data = PeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        flow = cash_flow_statement(data.validated_data["from"], data.validated_data["to"])
        zero = Decimal(0)
        body = {
            "from": flow.date_from,
            "to": flow.date_to,
            "cash_accounts": [{"code": a.code, "name": a.name} for a in flow.accounts],
            "cash": [
                {
                    "currency": c,
                    "opening": flow.opening.get(c, zero),
                    "net_change": flow.net_change.get(c, zero),
                    "closing": flow.closing.get(c, zero),
                }
                for c in flow.currencies
            ],
            "lines": [
                {"kind": line.kind, "title": line.title, "amounts": _amounts(line.amounts)}
                for line in flow.lines
            ],
        }
        return Response(CashFlowStatementOutput(body).data)
