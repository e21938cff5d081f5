"""Payment methods, processor charges and processor webhooks; and the card-number guard.

Roles: payment methods and charges (Stripe, PayPal orders and captures, Coinbase charges) are
for finance_admin, ar_clerk and integration (controller and auditor read payment methods); the
processors' webhooks are public and authenticated by their signature alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from io import BytesIO
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Customer, PaymentMethod, ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.processors import CardNumberRefused, PaymentDeclined
from billing.selectors import payment_method_list
from billing.services.payment_methods import (
    METHOD_TYPES,
    payment_method_add,
    payment_method_remove,
)
from billing.services.processor_payments import (
    HostedCheckout,
    coinbase_charge_create,
    invoice_charge,
    paypal_order_capture,
    paypal_order_create,
)
from billing.services.webhooks import (
    WebhookReceipt,
    coinbase_webhook_receive,
    paypal_webhook_receive,
    stripe_webhook_receive,
)
from core.api.pagination import Pagination, paged
from core.api.permissions import PUBLIC
from core.api.schema import NOT_CONFIGURED
from core.card_numbers import (
    contains_card_number,
    data_contains_card_number,
    looks_like_card_number,
)
from core.money import round_money

logger = logging.getLogger(__name__)

# Where a long number is expected: checked against real card formats only (a 16-digit bank
# account number passes Luhn one time in ten).
CARD_GUARD_LENIENT_KEYS = frozenset({"bank_account_number"})
# Signed by the processor, never typed by a person; a refusal would only make it retry.
CARD_GUARD_EXEMPT_PREFIXES = ("/api/billing/webhooks/",)


# Uploads whose text the import keeps with card numbers masked instead of refusing them: a
# bank statement is what the bank sent (``reconciliation.importers.types.ParsedLine``).
CARD_GUARD_MASKED_UPLOADS = ("/api/reconciliation/statements",)
# The first bytes of the binary files uploads may be (PDF, PNG, JPEG, ZIP/XLSX, GIF): not text.
_BINARY_MAGIC = (b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"PK\x03\x04", b"GIF8")


def request_contains_card_number(request: HttpRequest) -> bool:
    """Whether the request carries a card number anywhere a person could have typed one:
    the query string, and the body whatever the method and content type (JSON and form
    fields walked, multipart fields and text files read, any other body read as text).
    Files of the uploads in ``CARD_GUARD_MASKED_UPLOADS`` are left to their import."""
    for key, values in request.GET.lists():
        if any(contains_card_number(v) for v in (key, *values)):
            return True
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        fields, files = _multipart(request)
        if data_contains_card_number(
            {key: fields.getlist(key) for key in fields}, exempt_keys=CARD_GUARD_LENIENT_KEYS
        ):
            return True
        if request.path.startswith(CARD_GUARD_MASKED_UPLOADS):
            return False
        return any(_file_contains_card_number(f) for f in files)
    body = request.body
    if not body:
        return False
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = (
            request.POST if request.method == "POST" else QueryDict(body, encoding=request.encoding)
        )
        return data_contains_card_number(
            {key: form.getlist(key) for key in form}, exempt_keys=CARD_GUARD_LENIENT_KEYS
        )
    text = _text(body)
    if content_type.endswith("json"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return contains_card_number(text)
        return data_contains_card_number(data, exempt_keys=CARD_GUARD_LENIENT_KEYS)
    return contains_card_number(text)


def _multipart(request: HttpRequest) -> tuple[QueryDict, list[UploadedFile]]:
    """The fields and files of a multipart body: Django parses POST's; other methods' are
    parsed here from the body (which stays readable for the view). A body that does not
    parse is read whole as one file."""
    fields: QueryDict
    if request.method == "POST":
        fields, files = request.POST, request.FILES
    else:
        try:
            fields, files = MultiPartParser(
                request.META, BytesIO(request.body), request.upload_handlers, request.encoding
            ).parse()
        except MultiPartParserError:
            return QueryDict(), [_as_file(request.body)]
    return fields, [f for name in files for f in files.getlist(name)]


def _as_file(body: bytes) -> UploadedFile:
    return UploadedFile(BytesIO(body), name="body", size=len(body))


def _file_contains_card_number(upload: UploadedFile) -> bool:
    upload.seek(0)
    content = upload.read()
    upload.seek(0)
    if isinstance(content, str):
        content = content.encode()
    if content.startswith(_BINARY_MAGIC) or (b"\x00" in content[:8192] and not _bom16(content)):
        return False
    return contains_card_number(_text(content))


def _bom16(content: bytes) -> bool:
    return content.startswith((b"\xff\xfe", b"\xfe\xff"))


def _text(content: bytes) -> str:
    if _bom16(content):
        return content.decode("utf-16", errors="replace")
    return content.decode("utf-8", errors="replace")


class CardNumberGuardMiddleware:
    """Refuses, with 400 and nothing stored or logged but the path, any /api/ request that
    carries a card number (RELIABILITY.md C1). Put it before the idempotency middleware so a
    refused body is not even hashed into a stored key."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and not request.path.startswith(
            CARD_GUARD_EXEMPT_PREFIXES
        ):
            try:
                refused = request_contains_card_number(request)
            except RequestDataTooBig:
                refused = False  # the view refuses it the same way
            if refused:
                logger.warning(
                    "Refused a request carrying a card number: %s %s", request.method, request.path
                )
                return JsonResponse(
                    {
                        "code": CardNumberRefused.code,
                        "message": CardNumberRefused.message_text,
                        "errors": {},
                    },
                    status=400,
                )
        return self.get_response(request)


def reject_card_numbers(data: Any) -> None:
    """DRF-level guard for serializers: refuses input holding a card number."""
    if data_contains_card_number(data, exempt_keys=CARD_GUARD_LENIENT_KEYS):
        raise serializers.ValidationError(CardNumberRefused.message_text, code="card_number")


class PaymentMethodInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=[(t.value, t.label) for t in METHOD_TYPES])
    processor = serializers.ChoiceField(choices=["stripe", ""], required=False, default="")
    processor_customer_id = serializers.RegexField(
        r"^cus_[A-Za-z0-9]{1,96}$", required=False, default="", allow_blank=True
    )
    processor_token = serializers.RegexField(
        r"^pm_[A-Za-z0-9_]{1,96}$", required=False, default="", allow_blank=True
    )
    card_brand = serializers.RegexField(
        r"^[a-z_]{1,30}$", required=False, default="", allow_blank=True
    )
    card_last4 = serializers.RegexField(r"^[0-9]{4}$", required=False, default="", allow_blank=True)
    card_exp_month = serializers.IntegerField(min_value=1, max_value=12, required=False)
    card_exp_year = serializers.IntegerField(min_value=2000, max_value=2100, required=False)
    bank_account_holder = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True
    )
    bank_routing_number = serializers.RegexField(
        r"^[A-Za-z0-9]{8,34}$", required=False, default="", allow_blank=True
    )
    bank_account_number = serializers.RegexField(
        r"^[A-Za-z0-9 \-]{4,40}$", required=False, default="", allow_blank=True, write_only=True
    )
    is_default = serializers.BooleanField(required=False, default=False)

    def validate_bank_account_number(self, value: str) -> str:
        if looks_like_card_number(value):
            raise serializers.ValidationError(CardNumberRefused.message_text, code="card_number")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        reject_card_numbers(self.initial_data)
        return attrs


class PaymentMethodOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    type = serializers.CharField()
    processor = serializers.CharField()
    processor_customer_id = serializers.CharField()
    processor_token = serializers.CharField()
    card_brand = serializers.CharField()
    card_last4 = serializers.CharField()
    card_exp_month = serializers.IntegerField(allow_null=True)
    card_exp_year = serializers.IntegerField(allow_null=True)
    processor_account = serializers.CharField(help_text="A saved PayPal wallet's email.")
    bank_account_holder = serializers.CharField()
    bank_routing_number = serializers.CharField()
    bank_account_masked = serializers.CharField(help_text="Only the last 4 digits: ••••6789")
    is_default = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    detached_at = serializers.DateTimeField(allow_null=True)


class ProcessorAttemptOutput(serializers.Serializer):
    id = serializers.IntegerField()
    processor = serializers.CharField()
    status = serializers.ChoiceField(choices=AttemptStatus.choices)
    invoice = serializers.IntegerField(source="invoice_id", allow_null=True)
    payment_method = serializers.IntegerField(source="payment_method_id")
    payment = serializers.IntegerField(source="payment_id", allow_null=True)
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    processor_intent_id = serializers.CharField()
    processor_charge_id = serializers.CharField()
    failure_code = serializers.CharField()
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    def get_amount(self, obj: ProcessorAttempt) -> str:
        return f"{round_money(obj.amount.amount, obj.currency):f}"


def _active_methods(customer_id: int) -> Any:
    return payment_method_list(customer_id=customer_id)


class PaymentMethodListCreateApi(APIView):
    required_permissions = {
        "GET": ["billing.view_paymentmethod"],
        "POST": ["billing.add_paymentmethod"],
    }

    @extend_schema(responses=paged(PaymentMethodOutput))
    def get(self, request: Request, customer_id: int) -> Response:
        get_object_or_404(Customer, pk=customer_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(_active_methods(customer_id), request, view=self)
        return paginator.get_paginated_response(PaymentMethodOutput(page, many=True).data)

    @extend_schema(request=PaymentMethodInput, responses={201: PaymentMethodOutput})
    def post(self, request: Request, customer_id: int) -> Response:
        get_object_or_404(Customer, pk=customer_id)
        data = PaymentMethodInput(data=request.data)
        data.is_valid(raise_exception=True)
        method = payment_method_add(
            actor=request.user, customer_id=customer_id, **data.validated_data
        )
        return Response(PaymentMethodOutput(method).data, status=status.HTTP_201_CREATED)


class PaymentMethodDetailApi(APIView):
    required_permissions = {
        "GET": ["billing.view_paymentmethod"],
        "DELETE": ["billing.delete_paymentmethod"],
    }

    @extend_schema(responses=PaymentMethodOutput)
    def get(self, request: Request, customer_id: int, payment_method_id: int) -> Response:
        method = get_object_or_404(PaymentMethod, pk=payment_method_id, customer_id=customer_id)
        return Response(PaymentMethodOutput(method).data)

    @extend_schema(responses=PaymentMethodOutput)
    def delete(self, request: Request, customer_id: int, payment_method_id: int) -> Response:
        get_object_or_404(PaymentMethod, pk=payment_method_id, customer_id=customer_id)
        method = payment_method_remove(actor=request.user, payment_method_id=payment_method_id)
        return Response(PaymentMethodOutput(method).data)


class ChargeInput(serializers.Serializer):
    payment_method = serializers.IntegerField(min_value=1)


class InvoiceChargeApi(APIView):
    """Charge what is due on the invoice. 201 with the attempt (succeeded, or pending/unknown
    while the processor decides); 402 ``card_declined`` with ``details.decline_code``."""

    required_permissions = {"POST": ["billing.charge_invoice"]}

    @extend_schema(
        request=ChargeInput,
        responses={
            201: ProcessorAttemptOutput,
            402: OpenApiResponse(
                description='Declined: {"code": "card_declined", "details": {"decline_code"}}'
            ),
            503: NOT_CONFIGURED,
        },
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        data = ChargeInput(data=request.data)
        data.is_valid(raise_exception=True)
        attempt = invoice_charge(
            invoice_id=invoice_id,
            payment_method_id=data.validated_data["payment_method"],
            actor=request.user,
        )
        if attempt.status == AttemptStatus.FAILED:
            raise PaymentDeclined.from_attempt(attempt)
        return Response(ProcessorAttemptOutput(attempt).data, status=status.HTTP_201_CREATED)


class HostedCheckoutOutput(serializers.Serializer):
    attempt = ProcessorAttemptOutput()
    url = serializers.URLField(help_text="Where the payer pays: send them there.")


class PayPalOrderOutput(HostedCheckoutOutput):
    order_id = serializers.CharField(source="attempt.processor_intent_id")
    approve_url = serializers.URLField(source="url")


class CoinbaseChargeOutput(HostedCheckoutOutput):
    charge_code = serializers.CharField(source="attempt.processor_charge_id")
    hosted_url = serializers.URLField(source="url")


def _checkout_response(output: type[serializers.Serializer], checkout: HostedCheckout) -> Response:
    return Response(output(checkout).data, status=status.HTTP_201_CREATED)


class InvoicePayPalOrderApi(APIView):
    """Create a PayPal order for what is due on the invoice. 201 with the attempt (pending),
    the order id and the link where the payer approves it; 400 ``currency_not_supported`` for
    a currency PayPal does not take; 409 while another charge of the invoice is in flight."""

    required_permissions = {"POST": ["billing.charge_invoice"]}

    @extend_schema(request=None, responses={201: PayPalOrderOutput, 503: NOT_CONFIGURED})
    def post(self, request: Request, invoice_id: int) -> Response:
        checkout = paypal_order_create(invoice_id=invoice_id, actor=request.user)
        return _checkout_response(PayPalOrderOutput, checkout)


class PayPalCaptureInput(serializers.Serializer):
    order_id = serializers.RegexField(r"^[A-Za-z0-9-]{1,50}$")


class InvoicePayPalCaptureApi(APIView):
    """Capture the invoice's PayPal order after the payer approved it. 201 with the attempt
    (succeeded with its payment; unknown when PayPal did not answer, resolved later); a
    capture repeated returns the same payment. 402 when PayPal declined the funding source,
    409 ``order_not_approved`` before approval."""

    required_permissions = {"POST": ["billing.charge_invoice"]}

    @extend_schema(
        request=PayPalCaptureInput, responses={201: ProcessorAttemptOutput, 503: NOT_CONFIGURED}
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        data = PayPalCaptureInput(data=request.data)
        data.is_valid(raise_exception=True)
        attempt = paypal_order_capture(
            invoice_id=invoice_id, order_id=data.validated_data["order_id"], actor=request.user
        )
        if attempt.status == AttemptStatus.FAILED:
            raise PaymentDeclined.from_attempt(attempt)
        return Response(ProcessorAttemptOutput(attempt).data, status=status.HTTP_201_CREATED)


class InvoiceCoinbaseChargeApi(APIView):
    """Create a Coinbase Commerce charge for what is due on the invoice. 201 with the attempt
    (pending until Coinbase's webhook confirms the payment) and the hosted page's URL."""

    required_permissions = {"POST": ["billing.charge_invoice"]}

    @extend_schema(request=None, responses={201: CoinbaseChargeOutput, 503: NOT_CONFIGURED})
    def post(self, request: Request, invoice_id: int) -> Response:
        checkout = coinbase_charge_create(invoice_id=invoice_id, actor=request.user)
        return _checkout_response(CoinbaseChargeOutput, checkout)


WEBHOOK_RECEIVED = inline_serializer(
    "WebhookReceived",
    {
        "received": serializers.BooleanField(),
        "duplicate": serializers.BooleanField(),
        "event": serializers.CharField(),
    },
)


def _received(receipt: WebhookReceipt) -> Response:
    return Response(
        {"received": True, "duplicate": receipt.duplicate, "event": receipt.event.event_id}
    )


class StripeWebhookApi(APIView):
    """Stripe's events. Authenticated by the Stripe-Signature header only: a bad, stale or
    future-dated signature is 400 with nothing written; a replayed event is 200, applied once."""

    required_permissions = PUBLIC
    authentication_classes: list[Any] = []
    throttle_classes: list[Any] = []

    @extend_schema(
        request={"application/json": dict}, responses={200: WEBHOOK_RECEIVED, 503: NOT_CONFIGURED}
    )
    def post(self, request: Request) -> Response:
        return _received(
            stripe_webhook_receive(
                payload=request.body, signature=request.headers.get("Stripe-Signature")
            )
        )


class PayPalWebhookApi(APIView):
    """PayPal's events, verified by PayPal (verify-webhook-signature with the transmission
    headers): anything but SUCCESS is 400 with nothing written; a replay is 200, applied once;
    503 when PayPal cannot be asked (PayPal delivers again)."""

    required_permissions = PUBLIC
    authentication_classes: list[Any] = []
    throttle_classes: list[Any] = []

    @extend_schema(
        request={"application/json": dict}, responses={200: WEBHOOK_RECEIVED, 503: NOT_CONFIGURED}
    )
    def post(self, request: Request) -> Response:
        return _received(paypal_webhook_receive(payload=request.body, headers=request.headers))


class CoinbaseWebhookApi(APIView):
    """Coinbase Commerce's events. Authenticated by X-CC-Webhook-Signature (HMAC-SHA256 of the
    exact body) only: a bad signature is 400 with nothing written; a replay is 200, once."""

    required_permissions = PUBLIC
    authentication_classes: list[Any] = []
    throttle_classes: list[Any] = []

    @extend_schema(
        request={"application/json": dict}, responses={200: WEBHOOK_RECEIVED, 503: NOT_CONFIGURED}
    )
    def post(self, request: Request) -> Response:
        return _received(
            coinbase_webhook_receive(
                payload=request.body, signature=request.headers.get("X-CC-Webhook-Signature")
            )
        )


__all__ = [
    "CardNumberGuardMiddleware",
    "CoinbaseWebhookApi",
    "InvoiceChargeApi",
    "InvoiceCoinbaseChargeApi",
    "InvoicePayPalCaptureApi",
    "InvoicePayPalOrderApi",
    "PayPalWebhookApi",
    "PaymentMethodDetailApi",
    "PaymentMethodListCreateApi",
    "StripeWebhookApi",
    "reject_card_numbers",
    "request_contains_card_number",
]
