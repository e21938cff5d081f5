from __future__ import annotations

import zoneinfo
from typing import Any

from django.db import transaction
from django.utils import timezone
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumValidationError
from stdnum.util import get_cc_module

from billing.exceptions import BillingError, InvalidTaxId
from billing.models import Customer
from billing.services.credit import credit_fields_clean
from billing.services.gdpr import customer_erased_refuse
from core.exceptions import PermissionDeniedError
from core.money import minor_unit_exponent

EDITABLE = {
    "name",
    "email",
    "cc_emails",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "currency",
    "payment_terms",
    "tax_jurisdiction",
    "tax_id",
    "tax_exempt",
    "reverse_charge",
    "acquisition_channel",
    "campaign",
    "acquired_on",
    "payment_allocation_order",
    "credit_limit",
    "credit_hold",
    "credit_hold_reason",
    "autopay",
    "time_zone",
}


def tax_id_normalize(*, tax_id: str, country: str) -> str:
    """Validate a tax id with python-stdnum where the country has a format (EU VAT, US EIN,
    ...), and return it in its compact form; ids of other countries are kept as typed."""
    tax_id = tax_id.strip()
    if not tax_id:
        return ""
    cc = country.strip().lower()
    if cc in eu_vat.MEMBER_STATES or (not cc and tax_id[:2].lower() in eu_vat.MEMBER_STATES):
        # EU VAT numbers keep their country prefix (DE136695976): VIES and invoices need it.
        number = tax_id if tax_id[:2].isalpha() else f"{cc.upper()}{tax_id}"
        try:
            return str(eu_vat.validate(number))
        except StdnumValidationError as exc:
            raise InvalidTaxId(
                f"{tax_id!r} is not a valid EU VAT number: {exc}", field="tax_id"
            ) from None
    module = None
    for kind in ("vat", "ein", "tin"):
        module = get_cc_module(cc, kind) if cc else None
        if module is not None:
            break
    if module is None:
        return tax_id
    try:
        return str(module.validate(tax_id))
    except StdnumValidationError as exc:
        raise InvalidTaxId(
            # Every stdnum validator is a module; its protocol type just does not say so.
            f"{tax_id!r} is not a valid {module.__name__.split('.', 1)[1].upper()} number: {exc}",  # type: ignore[attr-defined]
            field="tax_id",
        ) from None


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - EDITABLE
    if unknown:
        raise BillingError(f"Unknown customer field(s): {', '.join(sorted(unknown))}.")
    if "currency" in fields:
        minor_unit_exponent(fields["currency"])
    if "country" in fields:
        fields["country"] = (fields["country"] or "").upper()
    if fields.get("time_zone"):
        fields["time_zone"] = fields["time_zone"].strip()
        if fields["time_zone"] not in zoneinfo.available_timezones():
            raise BillingError(
                f"{fields['time_zone']!r} is not an IANA time zone (such as Europe/Paris).",
                field="time_zone",
            )
    if "acquired_on" in fields:
        acquired = fields["acquired_on"]
        if acquired is None:
            raise BillingError("A customer needs the day they were won.", field="acquired_on")
        if acquired > timezone.localdate():
            raise BillingError(
                f"{acquired.isoformat()} is in the future: a customer is won by now.",
                code="date_out_of_range",
                field="acquired_on",
            )
    return fields


def _check(actor: Any, perm: str) -> None:
    """``actor=None`` is the system (demo data, imports); people need the permission."""
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError("Your role does not allow changing customers.")


def customer_create(*, actor: Any, **fields: Any) -> Customer:
    _check(actor, "billing.add_customer")
    fields = _clean(fields)
    fields = credit_fields_clean(actor=actor, fields=fields, currency=fields.get("currency", ""))
    fields["tax_id"] = tax_id_normalize(
        tax_id=fields.get("tax_id", ""), country=fields.get("country", "")
    )
    customer = Customer(**fields)
    customer.credit_balance_currency = customer.currency  # type: ignore[attr-defined]
    with transaction.atomic():
        customer.save()
    return customer


def customer_update(*, actor: Any, customer_id: int, **fields: Any) -> Customer:
    _check(actor, "billing.change_customer")
    fields = _clean(fields)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        customer_erased_refuse(customer)
        if "currency" in fields and fields["currency"] != customer.currency:
            if customer.invoices.exists() or customer.payments.exists():
                raise BillingError(
                    "The customer's currency cannot change once it has invoices or payments.",
                    code="currency_locked",
                )
            if customer.credit_balance.amount:
                raise BillingError("The customer has a credit balance in its currency.")
        fields = credit_fields_clean(
            actor=actor,
            fields=fields,
            currency=fields.get("currency", customer.currency),
            current=customer,
        )
        for name, value in fields.items():
            setattr(customer, name, value)
        if "tax_id" in fields or "country" in fields:
            customer.tax_id = tax_id_normalize(tax_id=customer.tax_id, country=customer.country)
        customer.save()
    return customer
