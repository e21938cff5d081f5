"""Billing API: one view per operation, each a few lines around one service call."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.processor_views import ProcessorAttemptOutput
from billing.api.serializers import (
    CreditApplyInput,
    CustomerInput,
    CustomerOutput,
    InvoiceInput,
    InvoiceIssueInput,
    InvoiceOutput,
    InvoiceUpdateInput,
    PaymentInput,
    PaymentOutput,
    ReasonInput,
)
from billing.enums import InvoiceStatus
from billing.exceptions import BillingError
from billing.models import CreditNote, Refund
from billing.models.processors import AttemptStatus
from billing.processors import PaymentDeclined
from billing.selectors import customer_list, invoice_link_url, invoice_list, payment_list
from billing.services.credit_balance import customer_credit_apply
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create, customer_update
from billing.services.invoices import (
    LineInput,
    invoice_create,
    invoice_issue,
    invoice_mark_uncollectible,
    invoice_update_draft,
    invoice_void,
)
from billing.services.links import invoice_link_get_or_create, invoice_links_revoke
from billing.services.payments import AllocationInput, payment_record
from billing.services.processor_payments import payment_charge
from billing.services.refunds import refund_create
from core.api.fields import AmountField, BusinessDateField, DateField, MoneyOutputField
from core.api.pagination import Pagination, paged
from core.dates import DateKind


def _paginated(view: APIView, request: Request, qs: Any, serializer: type) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class CustomerListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_customer"], "POST": ["billing.add_customer"]}

    @extend_schema(responses=paged(CustomerOutput))
    def get(self, request: Request) -> Response:
        return _paginated(self, request, customer_list(), CustomerOutput)

    @extend_schema(request=CustomerInput, responses={201: CustomerOutput})
    def post(self, request: Request) -> Response:
        data = CustomerInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_create(actor=request.user, **data.validated_data)
        return Response(CustomerOutput(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    required_permissions = {
        "GET": ["billing.view_customer"],
        "PUT": ["billing.change_customer"],
        "PATCH": ["billing.change_customer"],
    }

    @extend_schema(responses=CustomerOutput)
    def get(self, request: Request, customer_id: int) -> Response:
        return Response(CustomerOutput(get_object_or_404(customer_list(), pk=customer_id)).data)

    def _update(self, request: Request, customer_id: int, *, partial: bool) -> Response:
        get_object_or_404(customer_list(), pk=customer_id)
        data = CustomerInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        customer = customer_update(
            actor=request.user, customer_id=customer_id, **data.validated_data
        )
        return Response(CustomerOutput(customer).data)

    @extend_schema(request=CustomerInput, responses=CustomerOutput)
    def put(self, request: Request, customer_id: int) -> Response:
        return self._update(request, customer_id, partial=False)

    @extend_schema(request=CustomerInput, responses=CustomerOutput)
    def patch(self, request: Request, customer_id: int) -> Response:
        return self._update(request, customer_id, partial=True)


def _lines(validated: list[dict[str, Any]]) -> list[LineInput]:
    return [
        LineInput(**{k: v for k, v in line.items() if k != "price"}, price_id=line.get("price"))
        for line in validated
    ]


class InvoiceListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_invoice"], "POST": ["billing.add_invoice"]}

    class FilterInput(serializers.Serializer):
        customer = serializers.IntegerField(required=False)
        status = serializers.ChoiceField(choices=InvoiceStatus.choices, required=False)
        currency = serializers.CharField(required=False, max_length=3)
        issued_from = DateField(required=False)
        issued_to = DateField(required=False)
        due_from = DateField(required=False)
        due_to = DateField(required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", int),
            OpenApiParameter("status", str, enum=InvoiceStatus.values),
            OpenApiParameter("currency", str),
            OpenApiParameter("issued_from", OpenApiTypes.DATE, description="YYYY-MM-DD"),
            OpenApiParameter("issued_to", OpenApiTypes.DATE, description="YYYY-MM-DD"),
            OpenApiParameter("due_from", OpenApiTypes.DATE, description="YYYY-MM-DD"),
            OpenApiParameter("due_to", OpenApiTypes.DATE, description="YYYY-MM-DD"),
        ],
        responses=paged(InvoiceOutput),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return _paginated(self, request, invoice_list(**filters.validated_data), InvoiceOutput)

    @extend_schema(request=InvoiceInput, responses={201: InvoiceOutput})
    def post(self, request: Request) -> Response:
        data = InvoiceInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        invoice = invoice_create(
            actor=request.user,
            customer_id=v["customer"].pk,
            currency=v.get("currency"),
            issue_date=v.get("issue_date"),
            due_date=v.get("due_date"),
            memo=v.get("memo", ""),
            lines=_lines(v["lines"]),
            issue=v.get("issue", False),
            override_credit_limit=v.get("override_credit_limit", False),
        )
        invoice = invoice_list().get(pk=invoice.pk)
        return Response(InvoiceOutput(invoice).data, status=status.HTTP_201_CREATED)


class InvoiceDetailApi(APIView):
    required_permissions = {"GET": ["billing.view_invoice"], "PUT": ["billing.change_invoice"]}

    @extend_schema(responses=InvoiceOutput)
    def get(self, request: Request, invoice_id: int) -> Response:
        return Response(InvoiceOutput(get_object_or_404(invoice_list(), pk=invoice_id)).data)

    @extend_schema(request=InvoiceUpdateInput, responses=InvoiceOutput)
    def put(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        data = InvoiceUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        invoice_update_draft(
            actor=request.user,
            invoice_id=invoice_id,
            currency=v.get("currency"),
            issue_date=v.get("issue_date"),
            due_date=v.get("due_date"),
            memo=v.get("memo", ""),
            lines=_lines(v["lines"]),
        )
        return Response(InvoiceOutput(invoice_list().get(pk=invoice_id)).data)


class InvoiceIssueApi(APIView):
    required_permissions = {"POST": ["billing.issue_invoice"]}

    @extend_schema(request=InvoiceIssueInput, responses=InvoiceOutput)
    def post(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        data = InvoiceIssueInput(data=request.data)
        data.is_valid(raise_exception=True)
        invoice_issue(actor=request.user, invoice_id=invoice_id, **data.validated_data)
        return Response(InvoiceOutput(invoice_list().get(pk=invoice_id)).data)


class InvoiceVoidApi(APIView):
    required_permissions = {"POST": ["billing.void_invoice"]}

    @extend_schema(request=ReasonInput, responses=InvoiceOutput)
    def post(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        invoice_void(actor=request.user, invoice_id=invoice_id, **data.validated_data)
        return Response(InvoiceOutput(invoice_list().get(pk=invoice_id)).data)


class InvoiceMarkUncollectibleApi(APIView):
    required_permissions = {"POST": ["billing.write_off_invoice"]}

    @extend_schema(request=ReasonInput, responses=InvoiceOutput)
    def post(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        invoice_mark_uncollectible(actor=request.user, invoice_id=invoice_id, **data.validated_data)
        return Response(InvoiceOutput(invoice_list().get(pk=invoice_id)).data)


class HostedLinkOutput(serializers.Serializer):
    url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class RevokedOutput(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many active links were withdrawn.")


class InvoiceHostedLinkApi(APIView):
    """The invoice's hosted page link: the active one, or a new one when it has none (after
    a revocation or expiry). Drafts have none (400)."""

    required_permissions = {"POST": ["billing.view_invoice"]}

    @extend_schema(request=None, responses=HostedLinkOutput)
    def post(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        link = invoice_link_get_or_create(invoice_id=invoice_id)
        return Response(
            HostedLinkOutput({"url": invoice_link_url(link), "expires_at": link.expires_at}).data
        )


class InvoiceHostedLinkRevokeApi(APIView):
    """Withdraw the invoice's hosted page links at once (a link sent to the wrong address)."""

    required_permissions = {"POST": ["billing.revoke_invoicelink"]}

    @extend_schema(request=None, responses=RevokedOutput)
    def post(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        revoked = invoice_links_revoke(actor=request.user, invoice_id=invoice_id)
        return Response(RevokedOutput({"revoked": revoked.count}).data)


class InvoiceApplyCreditApi(APIView):
    """Settle (part of) the invoice from the customer's credit balance."""

    required_permissions = {"POST": ["billing.record_payment"]}

    @extend_schema(request=CreditApplyInput, responses=InvoiceOutput)
    def post(self, request: Request, invoice_id: int) -> Response:
        get_object_or_404(invoice_list(), pk=invoice_id)
        data = CreditApplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer_credit_apply(actor=request.user, invoice_id=invoice_id, **data.validated_data)
        return Response(InvoiceOutput(invoice_list().get(pk=invoice_id)).data)


class PaymentListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_payment"], "POST": ["billing.record_payment"]}

    @extend_schema(parameters=[OpenApiParameter("customer", int)], responses=paged(PaymentOutput))
    def get(self, request: Request) -> Response:
        customer = request.query_params.get("customer")
        if customer is not None and not customer.isdigit():
            raise serializers.ValidationError({"customer": ["A customer id."]})
        qs = payment_list(customer=int(customer) if customer else None)
        return _paginated(self, request, qs, PaymentOutput)

    @extend_schema(request=PaymentInput, responses={201: PaymentOutput})
    def post(self, request: Request) -> Response:
        data = PaymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        allocations = v.get("allocations")
        if v.get("payment_method"):
            return self._charge(request, v)
        payment = payment_record(
            actor=request.user,
            customer_id=v["customer"].pk,
            amount=v["amount"],
            currency=v["currency"],
            method=v["method"],
            received_date=v.get("received_date"),
            reference=v.get("reference", ""),
            allocations=None
            if allocations is None
            else [
                AllocationInput(invoice_id=a["invoice"], amount=a["amount"]) for a in allocations
            ],
        )
        payment = payment_list().get(pk=payment.pk)
        return Response(PaymentOutput(payment).data, status=status.HTTP_201_CREATED)

    def _charge(self, request: Request, v: dict[str, Any]) -> Response:
        """Through the processor: 201 with the payment once it succeeded, 202 with the
        attempt while the processor decides, 402 when declined."""
        allocations = v.get("allocations") or []
        if len(allocations) != 1 or allocations[0]["amount"] != v["amount"]:
            raise BillingError(
                "A payment through a saved payment method settles one invoice: give exactly "
                "one allocation, of the whole amount.",
                field="allocations",
            )
        attempt = payment_charge(
            actor=request.user,
            customer_id=v["customer"].pk,
            invoice_id=allocations[0]["invoice"],
            amount=v["amount"],
            currency=v["currency"],
            payment_method_id=v["payment_method"],
        )
        if attempt.status == AttemptStatus.FAILED:
            raise PaymentDeclined.from_attempt(attempt)
        if attempt.payment_id:
            payment = payment_list().get(pk=attempt.payment_id)
            return Response(PaymentOutput(payment).data, status=status.HTTP_201_CREATED)
        return Response(ProcessorAttemptOutput(attempt).data, status=status.HTTP_202_ACCEPTED)


class PaymentDetailApi(APIView):
    required_permissions = {"GET": ["billing.view_payment"]}

    @extend_schema(responses=PaymentOutput)
    def get(self, request: Request, payment_id: int) -> Response:
        return Response(PaymentOutput(get_object_or_404(payment_list(), pk=payment_id)).data)


class CreditNoteLineInput(serializers.Serializer):
    description = serializers.CharField(max_length=500)
    amount = AmountField()
    tax_rate = serializers.DecimalField(
        max_digits=7, decimal_places=6, min_value=0, max_value=1, required=False, allow_null=True
    )


class CreditNoteInput(serializers.Serializer):
    invoice = serializers.IntegerField()
    reason = serializers.CharField(max_length=300)
    lines = CreditNoteLineInput(many=True, required=False, allow_empty=False)
    issue_date = BusinessDateField(required=False)


class CreditNoteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    invoice = serializers.IntegerField(source="invoice_id")
    customer = serializers.IntegerField(source="customer_id")
    currency = serializers.CharField()
    subtotal = MoneyOutputField()
    tax = MoneyOutputField()
    total = MoneyOutputField()
    applied_to_invoice = MoneyOutputField()
    applied_to_balance = MoneyOutputField()
    reason = serializers.CharField()
    issue_date = DateField()


class CreditNoteListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_creditnote"], "POST": ["billing.add_creditnote"]}

    @extend_schema(responses=paged(CreditNoteOutput))
    def get(self, request: Request) -> Response:
        return _paginated(self, request, CreditNote.objects.order_by("-pk"), CreditNoteOutput)

    @extend_schema(request=CreditNoteInput, responses={201: CreditNoteOutput})
    def post(self, request: Request) -> Response:
        data = CreditNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        get_object_or_404(invoice_list(), pk=v["invoice"])
        lines = v.get("lines")
        note = credit_note_issue(
            actor=request.user,
            invoice_id=v["invoice"],
            reason=v["reason"],
            issue_date=v.get("issue_date"),
            lines=None if lines is None else [CreditLineInput(**line) for line in lines],
        )
        return Response(CreditNoteOutput(note).data, status=status.HTTP_201_CREATED)


class RefundInput(serializers.Serializer):
    customer = serializers.IntegerField()
    payment = serializers.IntegerField(required=False, allow_null=True)
    amount = AmountField()
    reason = serializers.CharField(max_length=300)
    refund_date = BusinessDateField(kind=DateKind.RECEIVED, required=False)


class RefundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    payment = serializers.IntegerField(source="payment_id", allow_null=True)
    currency = serializers.CharField()
    amount = MoneyOutputField()
    from_credit_balance = MoneyOutputField()
    from_invoices = MoneyOutputField()
    reason = serializers.CharField()
    refund_date = DateField()
    processor_refund_id = serializers.CharField(allow_null=True)


class RefundPendingOutput(serializers.Serializer):
    status = serializers.CharField()
    processor_refund_id = serializers.CharField()
    idempotency_key = serializers.CharField()
    message = serializers.CharField()


class RefundListCreateApi(APIView):
    required_permissions = {"GET": ["billing.view_refund"], "POST": ["billing.add_refund"]}

    @extend_schema(responses=paged(RefundOutput))
    def get(self, request: Request) -> Response:
        return _paginated(self, request, Refund.objects.order_by("-pk"), RefundOutput)

    @extend_schema(request=RefundInput, responses={201: RefundOutput, 202: RefundPendingOutput})
    def post(self, request: Request) -> Response:
        """A refund of a Stripe payment is made at Stripe first: 201 once Stripe confirmed it,
        409 ``refund_refused`` if Stripe refused it, 202 "pending" if Stripe has not answered
        or is still processing it (booked when it confirms)."""
        data = RefundInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        get_object_or_404(customer_list(), pk=v["customer"])
        outcome = refund_create(
            actor=request.user,
            customer_id=v["customer"],
            payment_id=v.get("payment"),
            amount=v["amount"],
            reason=v["reason"],
            refund_date=v.get("refund_date"),
        )
        if outcome.refund is None:
            return Response(RefundPendingOutput(outcome).data, status=status.HTTP_202_ACCEPTED)
        return Response(RefundOutput(outcome.refund).data, status=status.HTTP_201_CREATED)
