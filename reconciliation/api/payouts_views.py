"""``/api/reconciliation/payouts``: processor payouts (Stripe payouts, PayPal and Coinbase
Commerce settlements) with their items, the imports from each processor, and reconciling a
payout with its bank deposit."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import DateField
from core.api.pagination import Pagination, paged
from core.api.parsers import JSONParser
from core.api.schema import NOT_CONFIGURED
from reconciliation.api.serializers import amount_out
from reconciliation.enums import PayoutStatus
from reconciliation.exceptions import UploadTooLarge
from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.models import Payout
from reconciliation.selectors import payout_get, payout_list
from reconciliation.services_payouts import (
    PROCESSOR_LABELS,
    payout_reconcile,
    payouts_import,
)
from reconciliation.services_settlements import (
    coinbase_settlement_import,
    paypal_settlements_import,
)

VIEW = ["reconciliation.view_payout"]


class PayoutItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    balance_transaction_id = serializers.CharField()
    category = serializers.CharField()
    source_id = serializers.CharField()
    charge_id = serializers.CharField()
    amount = serializers.SerializerMethodField()
    fee = serializers.SerializerMethodField()
    net = serializers.SerializerMethodField()
    currency = serializers.CharField()
    description = serializers.CharField()
    payment = serializers.IntegerField(source="payment_id", allow_null=True)
    refund = serializers.IntegerField(source="refund_id", allow_null=True)

    def get_amount(self, obj: Any) -> str | None:
        return amount_out(obj.amount, obj.currency)

    def get_fee(self, obj: Any) -> str | None:
        return amount_out(obj.fee, obj.currency)

    def get_net(self, obj: Any) -> str | None:
        return amount_out(obj.net, obj.currency)


class PayoutOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    external_id = serializers.CharField()
    bank_account = serializers.IntegerField(source="bank_account_id", allow_null=True)
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    arrival_date = DateField()
    provider_status = serializers.CharField()
    automatic = serializers.BooleanField()
    charges = serializers.SerializerMethodField()
    refunds = serializers.SerializerMethodField()
    disputes = serializers.SerializerMethodField()
    fees = serializers.SerializerMethodField()
    other = serializers.SerializerMethodField()
    holds = serializers.SerializerMethodField()
    conversions = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=PayoutStatus.choices)
    problem = serializers.CharField()
    statement_line = serializers.IntegerField(source="statement_line_id", allow_null=True)
    journal_entry = serializers.IntegerField(source="journal_entry_id", allow_null=True)
    imported_at = serializers.DateTimeField()
    reconciled_at = serializers.DateTimeField(allow_null=True)

    def _money(self, obj: Payout, name: str) -> str | None:
        return amount_out(getattr(obj, name), obj.currency)

    def get_amount(self, obj: Payout) -> str | None:
        return self._money(obj, "amount")

    def get_charges(self, obj: Payout) -> str | None:
        return self._money(obj, "charges")

    def get_refunds(self, obj: Payout) -> str | None:
        return self._money(obj, "refunds")

    def get_disputes(self, obj: Payout) -> str | None:
        return self._money(obj, "disputes")

    def get_fees(self, obj: Payout) -> str | None:
        return self._money(obj, "fees")

    def get_other(self, obj: Payout) -> str | None:
        return self._money(obj, "other")

    def get_holds(self, obj: Payout) -> str | None:
        return self._money(obj, "holds")

    def get_conversions(self, obj: Payout) -> str | None:
        return self._money(obj, "conversions")


class PayoutDetailOutput(PayoutOutput):
    items = PayoutItemOutput(many=True)


class PayoutImportInput(serializers.Serializer):
    since = DateField(required=False, allow_null=True, default=None)


class PayPalSettlementImportInput(serializers.Serializer):
    since = DateField(required=False, allow_null=True, default=None)
    until = DateField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["since"] and attrs["until"] and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"since": ["On or before until."]})
        return attrs


class CoinbaseSettlementImportInput(serializers.Serializer):
    file = serializers.FileField(use_url=False)


class PayoutImportOutput(serializers.Serializer):
    fetched = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    exceptions = serializers.IntegerField()


class PayoutReconcileInput(serializers.Serializer):
    line = serializers.IntegerField(min_value=1)


class PayoutListApi(APIView):
    """Payouts (``status``, ``currency``, ``provider`` filters), newest arrival first,
    paginated. Roles: finance_admin, ar_clerk, ap_clerk, controller, integration, auditor."""

    required_permissions = {"GET": VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=PayoutStatus.values),
            OpenApiParameter("currency", str),
            OpenApiParameter("provider", str, enum=sorted(PROCESSOR_LABELS)),
        ],
        responses=paged(PayoutOutput),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        payout_status = params.get("status") or None
        if payout_status and payout_status not in PayoutStatus.values:
            raise serializers.ValidationError({"status": [f"One of {PayoutStatus.values}."]})
        currency = params.get("currency") or None
        if currency and (len(currency) != 3 or not currency.isalpha()):
            raise serializers.ValidationError({"currency": ["A three-letter currency code."]})
        provider = params.get("provider") or None
        if provider and provider not in PROCESSOR_LABELS:
            raise serializers.ValidationError({"provider": [f"One of {sorted(PROCESSOR_LABELS)}."]})
        qs = payout_list(status=payout_status, currency=currency, provider=provider)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(PayoutOutput(page, many=True).data)


class PayoutDetailApi(APIView):
    """One payout with its balance transactions. Roles: as the list."""

    required_permissions = {"GET": VIEW}

    @extend_schema(responses=PayoutDetailOutput)
    def get(self, request: Request, payout_id: int) -> Response:
        return Response(PayoutDetailOutput(payout_get(payout_id=payout_id)).data)


class PayoutImportApi(APIView):
    """Import Stripe's payouts now (the schedule does it hourly): 200 with the counts; 502
    with the provider's error code (``provider_unavailable``, ``invalid_credentials``...)
    when Stripe fails. Roles: finance_admin, ar_clerk, ap_clerk, controller, integration."""

    required_permissions = {"POST": ["reconciliation.add_payout"]}
    # JSON only: a form cannot say null, and these bodies are a few optional dates.
    parser_classes = [JSONParser]

    @extend_schema(
        request=PayoutImportInput, responses={200: PayoutImportOutput, 503: NOT_CONFIGURED}
    )
    def post(self, request: Request) -> Response:
        data = PayoutImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = payouts_import(actor=request.user, since=data.validated_data["since"])
        return Response(PayoutImportOutput(result).data)


class PayPalSettlementImportApi(APIView):
    """Import PayPal settlements now: every withdrawal to the bank from ``since`` (two weeks
    back) to ``until`` (today), each with the transactions it sweeps, from the Transaction
    Search report. 200 with the counts (the same period again: all unchanged); 502 with the
    provider's error code when PayPal fails or its report is malformed or partial, nothing
    stored. Roles: finance_admin, ar_clerk, ap_clerk, controller, integration."""

    required_permissions = {"POST": ["reconciliation.add_payout"]}
    # JSON only: a form cannot say null, and these bodies are a few optional dates.
    parser_classes = [JSONParser]

    @extend_schema(
        request=PayPalSettlementImportInput,
        responses={200: PayoutImportOutput, 503: NOT_CONFIGURED},
    )
    def post(self, request: Request) -> Response:
        data = PayPalSettlementImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = paypal_settlements_import(
            actor=request.user,
            since=data.validated_data["since"],
            until=data.validated_data["until"],
        )
        return Response(PayoutImportOutput(result).data)


class CoinbaseSettlementImportApi(APIView):
    """Import one Coinbase Commerce settlement export (multipart ``file``; its JSON shape in
    ``reconciliation.payouts.coinbase_settlements``), its charges read from Coinbase. 200 with
    the counts (the same file again: unchanged); 400 ``settlement_refused`` naming what is
    wrong, 409 ``settlement_restated`` for a stored settlement with other figures, 413 for an
    upload over the limit, 502 when Coinbase fails: nothing stored. Roles: as the PayPal
    import."""

    required_permissions = {"POST": ["reconciliation.add_payout"]}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": CoinbaseSettlementImportInput},
        responses={200: PayoutImportOutput, 503: NOT_CONFIGURED},
    )
    def post(self, request: Request) -> Response:
        data = CoinbaseSettlementImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        content = upload.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:
            raise UploadTooLarge(f"The file is larger than {MAX_FILE_BYTES} bytes.")
        result = coinbase_settlement_import(actor=request.user, data=content)
        return Response(PayoutImportOutput(result).data)


class PayoutReconcileApi(APIView):
    """Reconcile a payout with its bank deposit ``line``: the settlement is posted and the
    line matched (undo through the match). 400/409 with a code when the line does not equal
    the payout or either is taken. Roles: finance_admin, ar_clerk, ap_clerk, controller."""

    required_permissions = {"POST": ["reconciliation.decide_match"]}

    @extend_schema(request=PayoutReconcileInput, responses=PayoutOutput)
    def post(self, request: Request, payout_id: int) -> Response:
        data = PayoutReconcileInput(data=request.data)
        data.is_valid(raise_exception=True)
        payout = payout_reconcile(
            payout_id=payout_id, line_id=data.validated_data["line"], actor=request.user
        )
        return Response(PayoutOutput(payout).data)


urlpatterns: list[Any] = [
    path("payouts", PayoutListApi.as_view(), name="reconciliation-payouts"),
    path("payouts/import", PayoutImportApi.as_view(), name="reconciliation-payouts-import"),
    path(
        "payouts/import/paypal",
        PayPalSettlementImportApi.as_view(),
        name="reconciliation-payouts-import-paypal",
    ),
    path(
        "payouts/import/coinbase",
        CoinbaseSettlementImportApi.as_view(),
        name="reconciliation-payouts-import-coinbase",
    ),
    path("payouts/<int:payout_id>", PayoutDetailApi.as_view(), name="reconciliation-payout"),
    path(
        "payouts/<int:payout_id>/reconcile",
        PayoutReconcileApi.as_view(),
        name="reconciliation-payout-reconcile",
    ),
]
