"""GDPR requests about a customer: ``GET /customers/{id}/export`` (all that is held, as a JSON
attachment) and ``POST /customers/{id}/erase`` (pseudonymisation, invoices kept). Roles:
finance_admin only (``billing.export_customer``, ``billing.erase_customer``); each request is
logged with its actor (and the erasure's reason) in the admin log the compliance report reads.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.serializers import CustomerOutput, ReasonInput
from billing.services.gdpr import customer_erase, customer_export


class CustomerExportApi(APIView):
    """Everything held about the customer: the record, saved payment methods (masked),
    summaries of its invoices, credit notes, payments, refunds and subscriptions, payment
    plans, disputes and collection steps, and the history rows of the customer and its
    methods; served as ``customer-{id}-personal-data.json``."""

    required_permissions = {"GET": ["billing.export_customer"]}

    @extend_schema(
        summary="Export a customer's personal data (GDPR)",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The JSON export"),
            403: OpenApiResponse(description="Only finance administrators export"),
            404: OpenApiResponse(description="No such customer"),
        },
    )
    def get(self, request: Request, customer_id: int) -> Response:
        data = customer_export(actor=request.user, customer_id=customer_id)
        filename = f"customer-{customer_id}-personal-data.json"
        return Response(data, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class CustomerEraseApi(APIView):
    """Pseudonymise the customer's personal data (and its history rows), remove its saved
    payment methods; invoices, payments and ledger entries stay as they are. 409
    ``erasure_open_items`` while open or draft invoices, a credit balance, subscriptions not
    canceled, payments in flight, open payment plans or disputes remain (``details.open_items``
    names them). Erasing again answers the erased customer and changes nothing."""

    required_permissions = {"POST": ["billing.erase_customer"]}

    @extend_schema(
        summary="Erase a customer's personal data (GDPR)",
        request=ReasonInput,
        responses={
            200: CustomerOutput,
            400: OpenApiResponse(description="``reason`` missing"),
            403: OpenApiResponse(description="Only finance administrators erase"),
            404: OpenApiResponse(description="No such customer"),
            409: OpenApiResponse(description="``erasure_open_items``: open items remain"),
        },
    )
    def post(self, request: Request, customer_id: int) -> Response:
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_erase(
            actor=request.user, customer_id=customer_id, reason=data.validated_data["reason"]
        )
        return Response(CustomerOutput(customer).data)
