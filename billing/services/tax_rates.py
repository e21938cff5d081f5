from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from billing.exceptions import BillingError
from billing.models import TaxRate
from core.exceptions import PermissionDeniedError


def tax_rate_set(*, actor: Any, jurisdiction: str, name: str, rate: Decimal) -> TaxRate:
    """Create or change a jurisdiction's rate. Drafts written afterwards use it; issued
    invoices keep the rate printed on their lines."""
    if actor is not None and not actor.has_perm("billing.change_taxrate"):
        raise PermissionDeniedError("Your role does not allow changing tax rates.")
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise BillingError(f"A tax rate is between 0 and 1, got {rate}.", field="rate")
    jurisdiction = jurisdiction.strip().upper()
    if not jurisdiction:
        raise BillingError("A tax rate needs a jurisdiction.", field="jurisdiction")
    with transaction.atomic():
        tax_rate, _ = TaxRate.objects.update_or_create(
            jurisdiction=jurisdiction, defaults={"name": name, "rate": rate}
        )
    return tax_rate
