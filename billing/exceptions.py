from core.exceptions import Conflict, DomainError


class BillingError(DomainError):
    code = "billing_error"


class InvalidTaxId(BillingError):
    code = "invalid_tax_id"


class InvoiceNotEditable(Conflict):
    code = "invoice_not_editable"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class OverAllocation(Conflict):
    code = "over_allocation"


class CurrencyMismatch(BillingError):
    code = "currency_mismatch"


class CustomerErased(Conflict):
    """The customer's personal data was erased (GDPR): the record is never edited again."""

    code = "customer_erased"
