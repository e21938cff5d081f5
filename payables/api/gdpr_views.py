"""GDPR requests about a vendor: ``GET /vendors/{id}/export`` (all that is held, as a JSON
attachment) and ``POST /vendors/{id}/erase`` (pseudonymisation, bills kept). Roles:
finance_admin only (``payables.export_vendor``, ``payables.erase_vendor``); each request is
logged with its actor (and the erasure's reason) in the admin log the compliance report reads.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from payables.api import serializers as s
from payables.api.views import _vendor_out
from payables.services.gdpr import vendor_erase, vendor_export


class VendorExportApi(APIView):
    """Everything held about the vendor: the record and its bank-detail changes (tax id,
    account numbers and IBANs masked), summaries of its documents, orders, bills, payments
    and expense reports, and the history rows of the vendor and its bank changes; served as
    ``vendor-{id}-personal-data.json``."""

    required_permissions = {"GET": ["payables.export_vendor"]}

    @extend_schema(
        summary="Export a vendor's personal data (GDPR)",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The JSON export"),
            403: OpenApiResponse(description="Only finance administrators export"),
            404: OpenApiResponse(description="No such vendor"),
        },
    )
    def get(self, request: Request, vendor_id: int) -> Response:
        data = vendor_export(actor=request.user, vendor_id=vendor_id)
        filename = f"vendor-{vendor_id}-personal-data.json"
        return Response(data, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class VendorEraseApi(APIView):
    """Pseudonymise the vendor's personal data (and its history rows) and block it; bills,
    orders, payments and ledger entries stay as they are. 409 ``erasure_open_items`` while
    bills are unapproved or unpaid, orders open, payments scheduled, a bank change or an
    expense report pending (``details.open_items`` names them). Erasing again answers the
    erased vendor and changes nothing."""

    required_permissions = {"POST": ["payables.erase_vendor"]}

    @extend_schema(
        summary="Erase a vendor's personal data (GDPR)",
        request=s.PayablesReasonInput,
        responses={
            200: s.VendorOutput,
            400: OpenApiResponse(description="``reason`` missing"),
            403: OpenApiResponse(description="Only finance administrators erase"),
            404: OpenApiResponse(description="No such vendor"),
            409: OpenApiResponse(description="``erasure_open_items``: open items remain"),
        },
    )
    def post(self, request: Request, vendor_id: int) -> Response:
        data = s.PayablesReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        vendor = vendor_erase(
            actor=request.user, vendor_id=vendor_id, reason=data.validated_data["reason"]
        )
        return Response(_vendor_out(vendor))
