"""The company running the back-office: shown on invoices, purchase orders and bank files."""

from __future__ import annotations

from typing import Any

from django.conf import settings

# The issuer shown on every invoice; ``settings.BACKOFFICE_COMPANY`` overrides any key.
DEFAULT_COMPANY: dict[str, Any] = {
    "name": "Back-office Demo Co.",
    "address": ["100 Market Street, Suite 300", "San Francisco, CA 94105", "United States"],
    "email": "billing@backoffice.example",
    "phone": "",
    "tax_id": "EIN 12-3456789",
    "payment_instructions": (
        "Pay by ACH or wire to Back-office Demo Co., Demo Bank N.A., account 000123456789, "
        "routing (ABA) 110000000, SWIFT DEMOUS33, quoting the invoice number."
    ),
    # Our bank account, for the payment files of payment runs (NACHA needs the ACH company id,
    # "1" + EIN, and the ODFI routing number; pain.001 the IBAN and BIC).
    "bank": {
        "name": "Demo Bank N.A.",
        "ach_company_id": "1123456789",
        "routing_number": "110000000",
        "account_number": "000123456789",
        "iban": "DE89370400440532013000",
        "bic": "DEMOUS33",
        "country": "US",
    },
    # CSS page size: "Letter" or "A4".
    "page_size": "Letter",
}


def company_details() -> dict[str, Any]:
    """The company's details: the defaults above, overridden by ``BACKOFFICE_COMPANY``."""
    return {**DEFAULT_COMPANY, **getattr(settings, "BACKOFFICE_COMPANY", DEFAULT_COMPANY)}
