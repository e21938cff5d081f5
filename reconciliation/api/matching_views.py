"""Reconciliation runs (``/api/accounts/reconcile``) and the suggestion queue, manual matches
and rules (``/api/reconciliation/matches``, ``/api/reconciliation/rules``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.fields import DateField
from core.api.pagination import Pagination, paged
from core.exceptions import NotFound
from reconciliation.enums import MatchStatus, ReconciliationRunStatus, RuleSign
from reconciliation.models import Match, ReconciliationRun
from reconciliation.selectors_matching import match_list, rule_list, run_get
from reconciliation.services_matching import (
    match_accept,
    match_manual,
    match_reject,
    match_undo,
    reconciliation_run_start,
)
from reconciliation.services_rules import match_rule_create

VIEW = ["reconciliation.view_reconciliationrun", "reconciliation.view_match"]
DECIDE = ["reconciliation.decide_match"]
# Results shown with a run: the first ones by confidence (the queue has them all).
RUN_RESULTS_CAP = 200


class ReconcileInput(serializers.Serializer):
    bank_account = serializers.IntegerField(min_value=1)
    period_start = DateField(required=False, allow_null=True, default=None)
    period_end = DateField(required=False, allow_null=True, default=None)


class MatchTargetOutput(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.SerializerMethodField()
    amount = serializers.DecimalField(max_digits=19, decimal_places=2)

    def get_id(self, obj: Any) -> int | None:
        return (
            obj.invoice_id
            or obj.payment_id
            or obj.payment_run_id
            or obj.payment_run_item_id
            or obj.account_id
            or obj.payout_id
        )


class MatchOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    confidence = serializers.DecimalField(max_digits=5, decimal_places=4)
    rule = serializers.CharField()
    reason = serializers.CharField()
    amount = serializers.DecimalField(max_digits=19, decimal_places=2)
    currency = serializers.CharField()
    lines = serializers.SerializerMethodField()
    targets = MatchTargetOutput(many=True)
    payment = serializers.IntegerField(source="payment_id", allow_null=True)
    created_at = serializers.DateTimeField()
    applied_at = serializers.DateTimeField(allow_null=True)

    def get_lines(self, obj: Match) -> list[int]:
        return [ml.line_id for ml in obj.lines.all()]


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReconciliationRunStatus.choices)
    bank_account = serializers.IntegerField(source="bank_account_id")
    period_start = DateField(allow_null=True)
    period_end = DateField(allow_null=True)
    auto_matched = serializers.IntegerField()
    suggested = serializers.IntegerField()
    unmatched = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ReconcileApi(APIView):
    """Start a reconciliation run: 202 at once with ``id`` and ``status`` (queued); a worker
    does it. Roles: finance_admin, ar_clerk, ap_clerk, controller, integration."""

    required_permissions = {"POST": ["reconciliation.start_reconciliation"]}

    @extend_schema(request=ReconcileInput, responses={202: RunOutput})
    def post(self, request: Request) -> Response:
        data = ReconcileInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        run = reconciliation_run_start(
            actor=request.user,
            bank_account_id=v["bank_account"],
            period_start=v["period_start"],
            period_end=v["period_end"],
        )
        # The state as the caller left it (an eager worker may have finished already).
        body = RunOutput(run).data
        body["status"] = ReconciliationRunStatus.QUEUED
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ReconcileDetailApi(APIView):
    """A run's status, counts and results (matches by confidence, the first
    RUN_RESULTS_CAP; the whole list at /api/reconciliation/matches?run=). Roles:
    finance_admin, ar_clerk, ap_clerk, controller, integration, auditor."""

    required_permissions = {"GET": VIEW}

    @extend_schema(responses=RunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        try:
            run = run_get(run_id=run_id)
        except ReconciliationRun.DoesNotExist:
            raise NotFound(f"No reconciliation run {run_id}.") from None
        results = list(match_list(run_id=run.pk)[: RUN_RESULTS_CAP + 1])
        body = RunOutput(run).data
        body["results"] = MatchOutput(results[:RUN_RESULTS_CAP], many=True).data
        body["results_truncated"] = len(results) > RUN_RESULTS_CAP
        return Response(body)


class ManualMatchInput(serializers.Serializer):
    lines = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1)
    invoices = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list
    )
    payment = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    account = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    bills = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        help_text="Money out: bills whose released payment-run payments the lines are.",
    )


class MatchListApi(APIView):
    """GET the matches (``status``, ``bank_account``, ``run`` filters), paginated; POST a
    manual match (applied at once). Roles: read finance_admin, ar_clerk, ap_clerk,
    controller, integration, auditor; match finance_admin, ar_clerk, ap_clerk, controller."""

    required_permissions = {"GET": VIEW, "POST": DECIDE}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=MatchStatus.values),
            OpenApiParameter("bank_account", int),
            OpenApiParameter("run", int),
        ],
        responses=paged(MatchOutput),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        match_status = params.get("status") or None
        if match_status and match_status not in MatchStatus.values:
            raise serializers.ValidationError({"status": [f"One of {MatchStatus.values}."]})
        ids = {}
        for name in ("bank_account", "run"):
            value = params.get(name)
            if value is not None and not value.isdigit():
                raise serializers.ValidationError({name: ["An id."]})
            ids[name] = int(value) if value else None
        qs = match_list(status=match_status, bank_account_id=ids["bank_account"], run_id=ids["run"])
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(MatchOutput(page, many=True).data)

    @extend_schema(request=ManualMatchInput, responses={201: MatchOutput})
    def post(self, request: Request) -> Response:
        data = ManualMatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        match = match_manual(
            actor=request.user,
            line_ids=v["lines"],
            invoice_ids=v["invoices"],
            payment_id=v["payment"],
            account_id=v["account"],
            bill_ids=v["bills"],
        )
        return Response(
            MatchOutput(match_list().get(pk=match.pk)).data, status=status.HTTP_201_CREATED
        )


class MatchDecisionInput(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class MatchDecisionApi(APIView):
    """POST ``accept`` (apply and learn), ``reject`` or ``undo`` (``reason`` required).
    Roles: finance_admin, ar_clerk, ap_clerk, controller."""

    required_permissions = {"POST": DECIDE}

    @extend_schema(request=MatchDecisionInput, responses=MatchOutput)
    def post(self, request: Request, match_id: int, action: str) -> Response:
        data = MatchDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data["reason"]
        if action == "accept":
            match_accept(match_id=match_id, actor=request.user)
        elif action == "reject":
            match_reject(match_id=match_id, actor=request.user, reason=reason)
        else:
            match_undo(match_id=match_id, actor=request.user, reason=reason)
        return Response(MatchOutput(match_list().get(pk=match_id)).data)


class RuleInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    priority = serializers.IntegerField(min_value=0, default=100)
    bank_account = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None
    )
    text_contains = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    counterparty_name_equals = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    counterparty_account_equals = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    amount_min = serializers.DecimalField(
        max_digits=19, decimal_places=4, required=False, allow_null=True, default=None
    )
    amount_max = serializers.DecimalField(
        max_digits=19, decimal_places=4, required=False, allow_null=True, default=None
    )
    sign = serializers.ChoiceField(choices=RuleSign.choices, default=RuleSign.ANY)
    account = serializers.IntegerField(min_value=1)


class RuleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    priority = serializers.IntegerField()
    bank_account = serializers.IntegerField(source="bank_account_id", allow_null=True)
    text_contains = serializers.CharField()
    counterparty_name_equals = serializers.CharField()
    counterparty_account_equals = serializers.CharField()
    amount_min = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    amount_max = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    sign = serializers.CharField()
    account = serializers.IntegerField(source="account_id")
    is_active = serializers.BooleanField()


class RuleListCreateApi(APIView):
    """Matching rules. Roles: read finance_admin, ar_clerk, ap_clerk, controller,
    integration, auditor; create finance_admin, controller."""

    required_permissions = {
        "GET": ["reconciliation.view_matchrule"],
        "POST": ["reconciliation.add_matchrule"],
    }

    @extend_schema(responses=paged(RuleOutput))
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(rule_list(), request, view=self) or []
        return paginator.get_paginated_response(RuleOutput(page, many=True).data)

    @extend_schema(request=RuleInput, responses={201: RuleOutput})
    def post(self, request: Request) -> Response:
        data = RuleInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        rule = match_rule_create(
            actor=request.user,
            account_id=v.pop("account"),
            bank_account_id=v.pop("bank_account"),
            **v,
        )
        return Response(RuleOutput(rule).data, status=status.HTTP_201_CREATED)
