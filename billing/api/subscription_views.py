"""Catalog, subscriptions and usage API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.enums import Aggregation, BillingInterval, PriceType
from billing.models import Customer, Price, Product, Subscription
from billing.services.subscriptions import (
    ItemInput,
    UsageInput,
    price_create,
    product_create,
    subscription_cancel,
    subscription_change,
    subscription_create,
    subscription_pause,
    subscription_resume,
    usage_ingest,
)
from core.api.fields import AmountField, BusinessDateField, CurrencyField, DateField
from core.api.pagination import Pagination, paged


def _paginated(view: APIView, request: Request, qs: Any, serializer: type) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class ProductSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(read_only=True)


class TierSerializer(serializers.Serializer):
    up_to = serializers.IntegerField(min_value=1, allow_null=True)
    unit_amount = AmountField()
    flat_amount = AmountField(required=False, default=Decimal(0))


class PriceInput(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    currency = CurrencyField()
    type = serializers.ChoiceField(choices=PriceType.choices)
    interval = serializers.ChoiceField(choices=BillingInterval.choices)
    unit_amount = AmountField(required=False, allow_null=True)
    package_size = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    tiers = TierSerializer(many=True, required=False)
    tax_inclusive = serializers.BooleanField(required=False, default=False)
    metric = serializers.SlugField(max_length=60, required=False, allow_blank=True, default="")
    aggregation = serializers.ChoiceField(
        choices=Aggregation.choices, required=False, allow_blank=True, default=""
    )
    nickname = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class PriceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    product = serializers.IntegerField(source="product_id")
    nickname = serializers.CharField()
    currency = serializers.CharField()
    type = serializers.CharField()
    interval = serializers.CharField()
    unit_amount = serializers.DecimalField(max_digits=19, decimal_places=4, allow_null=True)
    package_size = serializers.IntegerField(allow_null=True)
    tiers = serializers.JSONField()
    tax_inclusive = serializers.BooleanField()
    metric = serializers.CharField()
    aggregation = serializers.CharField()
    is_active = serializers.BooleanField()


class ItemSerializer(serializers.Serializer):
    price = serializers.IntegerField()
    quantity = AmountField(required=False, default=Decimal(1))


class SubscriptionInput(serializers.Serializer):
    customer: serializers.PrimaryKeyRelatedField[Customer] = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all()
    )
    items = ItemSerializer(many=True, allow_empty=False)
    start_date = BusinessDateField(required=False)
    trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False, default=0)
    # Let it past the customer's credit limit (billing.override_credit_limit).
    override_credit_limit = serializers.BooleanField(required=False, default=False)
    autopay = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Charge its invoices automatically; null: as the customer is set.",
    )


class SubscriptionItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    price = serializers.IntegerField(source="price_id")
    quantity = serializers.DecimalField(max_digits=19, decimal_places=4)


class SubscriptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    status = serializers.CharField()
    currency = serializers.CharField()
    interval = serializers.CharField()
    started_on = DateField()
    current_period_start = DateField()
    current_period_end = DateField()
    trial_end = DateField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    ended_on = DateField(allow_null=True)
    autopay = serializers.BooleanField(allow_null=True)
    items = SubscriptionItemOutput(many=True)


class ChangeInput(serializers.Serializer):
    items = ItemSerializer(many=True, allow_empty=False)
    on_date = BusinessDateField(required=False)
    prorate_now = serializers.BooleanField(required=False, default=False)


class CancelInput(serializers.Serializer):
    at_period_end = serializers.BooleanField(required=False, default=True)
    on_date = BusinessDateField(required=False)


class UsageEventInput(serializers.Serializer):
    subscription_item = serializers.IntegerField()
    metric = serializers.CharField(max_length=60)
    quantity = AmountField()
    value = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    timestamp = serializers.DateTimeField()
    idempotency_key = serializers.CharField(max_length=200)


class UsageBatchInput(serializers.Serializer):
    # many=True hands max_length to the ListSerializer (DRF >= 3.15); the stubs miss it.
    events = UsageEventInput(many=True, allow_empty=False, max_length=10_000)  # type: ignore[call-arg]


class UsageBatchOutput(serializers.Serializer):
    recorded = serializers.IntegerField()
    duplicates = serializers.IntegerField()


def _items(data: list[dict[str, Any]]) -> list[ItemInput]:
    return [ItemInput(price_id=i["price"], quantity=i["quantity"]) for i in data]


def _subscriptions() -> Any:
    return Subscription.objects.prefetch_related("items").order_by("-created_at", "-pk")


class ProductListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_product"], "POST": ["billing.add_product"]}

    @extend_schema(responses=paged(ProductSerializer))
    def get(self, request: Request) -> Response:
        return _paginated(self, request, Product.objects.order_by("name", "pk"), ProductSerializer)

    @extend_schema(request=ProductSerializer, responses={201: ProductSerializer})
    def post(self, request: Request) -> Response:
        data = ProductSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = product_create(actor=request.user, **data.validated_data)
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)


class PriceListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_price"], "POST": ["billing.add_price"]}

    @extend_schema(responses=paged(PriceOutput))
    def get(self, request: Request) -> Response:
        return _paginated(self, request, Price.objects.order_by("pk"), PriceOutput)

    @extend_schema(request=PriceInput, responses={201: PriceOutput})
    def post(self, request: Request) -> Response:
        data = PriceInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        v["product_id"] = v.pop("product").pk
        v["tiers"] = [
            {
                "up_to": t["up_to"],
                "unit_amount": str(t["unit_amount"]),
                "flat_amount": str(t["flat_amount"]),
            }
            for t in v.get("tiers", [])
        ]
        price = price_create(actor=request.user, **v)
        return Response(PriceOutput(price).data, status=status.HTTP_201_CREATED)


class SubscriptionListCreateApi(APIView):
    required_permissions = {
        "GET": ["billing.view_subscription"],
        "POST": ["billing.add_subscription"],
    }

    @extend_schema(responses=paged(SubscriptionOutput))
    def get(self, request: Request) -> Response:
        return _paginated(self, request, _subscriptions(), SubscriptionOutput)

    @extend_schema(request=SubscriptionInput, responses={201: SubscriptionOutput})
    def post(self, request: Request) -> Response:
        data = SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sub = subscription_create(
            actor=request.user,
            customer_id=v["customer"].pk,
            items=_items(v["items"]),
            start_date=v.get("start_date"),
            trial_days=v.get("trial_days", 0),
            override_credit_limit=v.get("override_credit_limit", False),
            autopay=v.get("autopay"),
        )
        return Response(
            SubscriptionOutput(_subscriptions().get(pk=sub.pk)).data, status=status.HTTP_201_CREATED
        )


class SubscriptionDetailApi(APIView):
    required_permissions = {"GET": ["billing.view_subscription"]}

    @extend_schema(responses=SubscriptionOutput)
    def get(self, request: Request, subscription_id: int) -> Response:
        return Response(
            SubscriptionOutput(get_object_or_404(_subscriptions(), pk=subscription_id)).data
        )


class SubscriptionChangeApi(APIView):
    required_permissions = {"POST": ["billing.change_subscription"]}

    @extend_schema(request=ChangeInput, responses=SubscriptionOutput)
    def post(self, request: Request, subscription_id: int) -> Response:
        get_object_or_404(_subscriptions(), pk=subscription_id)
        data = ChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        subscription_change(
            actor=request.user,
            subscription_id=subscription_id,
            items=_items(v["items"]),
            on_date=v.get("on_date"),
            prorate_now=v["prorate_now"],
        )
        return Response(SubscriptionOutput(_subscriptions().get(pk=subscription_id)).data)


class SubscriptionCancelApi(APIView):
    required_permissions = {"POST": ["billing.change_subscription"]}

    @extend_schema(request=CancelInput, responses=SubscriptionOutput)
    def post(self, request: Request, subscription_id: int) -> Response:
        get_object_or_404(_subscriptions(), pk=subscription_id)
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        subscription_cancel(
            actor=request.user, subscription_id=subscription_id, **data.validated_data
        )
        return Response(SubscriptionOutput(_subscriptions().get(pk=subscription_id)).data)


class SubscriptionPauseApi(APIView):
    required_permissions = {"POST": ["billing.change_subscription"]}

    @extend_schema(request=None, responses=SubscriptionOutput)
    def post(self, request: Request, subscription_id: int) -> Response:
        get_object_or_404(_subscriptions(), pk=subscription_id)
        subscription_pause(actor=request.user, subscription_id=subscription_id)
        return Response(SubscriptionOutput(_subscriptions().get(pk=subscription_id)).data)


class SubscriptionResumeApi(APIView):
    required_permissions = {"POST": ["billing.change_subscription"]}

    @extend_schema(request=None, responses=SubscriptionOutput)
    def post(self, request: Request, subscription_id: int) -> Response:
        get_object_or_404(_subscriptions(), pk=subscription_id)
        subscription_resume(actor=request.user, subscription_id=subscription_id)
        return Response(SubscriptionOutput(_subscriptions().get(pk=subscription_id)).data)


class UsageEventBatchApi(APIView):
    required_permissions = {"POST": ["billing.add_usageevent"]}

    @extend_schema(request=UsageBatchInput, responses={201: UsageBatchOutput})
    def post(self, request: Request) -> Response:
        data = UsageBatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        recorded, duplicates = usage_ingest(
            actor=request.user,
            events=[
                UsageInput(
                    subscription_item_id=e["subscription_item"],
                    metric=e["metric"],
                    quantity=e["quantity"],
                    occurred_at=e["timestamp"],
                    idempotency_key=e["idempotency_key"],
                    value=e["value"],
                )
                for e in data.validated_data["events"]
            ],
        )
        return Response(
            UsageBatchOutput({"recorded": recorded, "duplicates": duplicates}).data,
            status=status.HTTP_201_CREATED,
        )
