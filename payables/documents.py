"""The purchase order PDF (WeasyPrint, offline) and the email sending it to the vendor."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.company import company_details
from core.money import format_amount, unit_price_text
from payables.enums import PurchaseOrderStatus
from payables.exceptions import InvalidState
from payables.models import PurchaseOrder

PDF_TEMPLATE = "payables/purchase_order_pdf.html"


def _context(order: PurchaseOrder) -> dict[str, Any]:
    vendor = order.vendor
    terms = f"net {vendor.payment_terms_days} days"
    if vendor.discount_percent:
        terms = f"{vendor.discount_percent.normalize()}/{vendor.discount_days} {terms}"
    return {
        "company": company_details(),
        "number": order.number,
        "order_date": f"{(order.ordered_at or timezone.now()):%B %d, %Y}",
        "currency": order.currency,
        "department": order.department,
        "vendor": {
            "name": vendor.name,
            "email": vendor.email,
            "address": [line for line in vendor.address.splitlines() if line.strip()],
        },
        "lines": [
            {
                "position": line.position,
                "description": line.description,
                "quantity": line.quantity.normalize(),
                "unit_price": f"{unit_price_text(line.unit_price.amount, order.currency)} "
                f"{order.currency}",
                "amount": format_amount(line.amount.amount, order.currency),
            }
            for line in order.lines.order_by("position")
        ],
        "total": format_amount(order.total.amount, order.currency),
        "terms": terms,
    }


def purchase_order_pdf_render(order: PurchaseOrder) -> bytes:
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string(PDF_TEMPLATE, _context(order))
    document = HTML(
        string=html,
        base_url=str(settings.BASE_DIR),
        url_fetcher=URLFetcher(allowed_protocols=("file", "data")),
    )
    pdf: bytes = document.write_pdf()
    return pdf


def purchase_order_send(*, order_id: int | str, force: bool = False) -> bool:
    """Render the placed order's PDF once, store it, and email it to the vendor once (a
    retried task neither loses nor doubles it). Returns whether a message was sent."""
    with transaction.atomic():
        order = PurchaseOrder.objects.select_for_update().select_related("vendor").get(pk=order_id)
        if order.status not in (PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.RECEIVED):
            raise InvalidState(f"Purchase order {order.number} is not placed.")
        if order.sent_at is not None and not force:
            return False
        if not order.pdf:
            content = purchase_order_pdf_render(order)
            order.pdf.save(f"{order.number}.pdf", ContentFile(content), save=False)
        with order.pdf.open("rb") as stored:
            content = stored.read()
        company = company_details()
        message = EmailMessage(
            subject=f"Purchase order {order.number} from {company['name']}",
            body=(
                f"Dear {order.vendor.name},\n\nplease find attached our purchase order "
                f"{order.number} (sha256 {hashlib.sha256(content).hexdigest()[:16]}).\n\n"
                f"{company['name']}\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[order.vendor.email],
            reply_to=[company["email"]] if company.get("email") else None,
        )
        message.attach(f"{order.number}.pdf", content, "application/pdf")
        message.send(fail_silently=False)
        order.sent_at = timezone.now()
        order.save(update_fields=["pdf", "sent_at"])
    return True
