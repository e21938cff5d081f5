"""``invoice.overdue``: told once per invoice, the first time the hourly task finds it open
after its due date (in the business's time zone)."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.events import invoice_data
from billing.models import Invoice
from core.events.models import Event
from core.events.services import EventInput, events_emit

CHUNK = 1000


def invoices_overdue_announce(*, today: date | None = None) -> int:
    """Emit ``invoice.overdue`` for every open invoice past its due date that has not had
    one; returns how many. Safe to run again (and on two workers: rows are locked)."""
    today = today or timezone.localdate()
    told = Event.objects.filter(
        type="invoice.overdue",
        object_type="invoice",
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
    )
    count = 0
    while True:
        with transaction.atomic():
            invoices = list(
                Invoice.objects.select_for_update(skip_locked=True)
                .filter(status=InvoiceStatus.OPEN, due_date__lt=today)
                .filter(~Exists(told))
                .order_by("pk")[:CHUNK]
            )
            events_emit(
                [EventInput("invoice.overdue", "invoice", i.pk, invoice_data(i)) for i in invoices]
            )
        count += len(invoices)
        if len(invoices) < CHUNK:
            return count
