"""GET /invoices/{id}/pdf: the stored invoice PDF, rendered on first request if need be."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from billing.documents import PDF_MIMETYPE, invoice_pdf_content, invoice_pdf_store
from billing.enums import InvoiceStatus
from billing.models import Invoice
from core.exceptions import Conflict


class InvoicePdfApi(APIView):
    required_permissions = {"GET": ["billing.view_invoice"]}

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # The PDF is returned whatever the Accept header says (``Accept: application/pdf``
        # must not be a 406); errors fall back to the first renderer, JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        responses={
            (200, PDF_MIMETYPE): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF"),
            404: OpenApiResponse(description="No such invoice"),
            409: OpenApiResponse(description="A draft has no PDF"),
        }
    )
    def get(self, request: Request, invoice_id: int) -> HttpResponse:
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        if invoice.status == InvoiceStatus.DRAFT:
            raise Conflict(
                f"Invoice {invoice} is a draft: its PDF exists once it is issued.",
                code="invoice_not_issued",
            )
        if not invoice.pdf:
            invoice = invoice_pdf_store(invoice_id=invoice.pk)
        response = HttpResponse(invoice_pdf_content(invoice=invoice), content_type=PDF_MIMETYPE)
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response
