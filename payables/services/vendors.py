"""Vendors: onboarding, activation by a second person, documents and bank detail changes.

A vendor's remittance details change only through ``vendor_bank_change_request`` followed
by ``vendor_bank_change_approve`` by someone else; the change is announced to the vendor's
contact and to finance, and while it waits no payment run includes the vendor.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from stdnum import bic as bic_check
from stdnum import iban as iban_check
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import vat as gb_vat
from stdnum.us import ein as us_ein
from stdnum.us import rtn as us_rtn

from core.company import company_details
from core.exceptions import NotFound
from core.money import minor_unit_exponent
from payables.enums import BankChangeStatus, TaxIdType, VendorKind, VendorStatus
from payables.exceptions import ApprovalRefused, InvalidState, PayablesError
from payables.models import Vendor, VendorBankChange, VendorDocument
from payables.services.common import require
from payables.services.gdpr import vendor_erased_refuse
from payables.uploads import upload_check

if TYPE_CHECKING:
    from stdnum.util import NumberValidationModule

TAX_ID_VALIDATORS: dict[str, NumberValidationModule] = {
    TaxIdType.US_EIN: us_ein,
    TaxIdType.EU_VAT: eu_vat,
    TaxIdType.GB_VAT: gb_vat,
}


class InvalidField(PayablesError):
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, code="invalid", fields={field: [message]})


@dataclass(frozen=True)
class BankDetails:
    account_holder: str = ""
    routing_number: str = ""
    account_number: str = ""
    account_type: str = "checking"
    iban: str = ""
    bic: str = ""

    @property
    def empty(self) -> bool:
        return not (self.account_number or self.iban)


def tax_id_clean(tax_id_type: str, tax_id: str) -> str:
    """The tax id in its compact form, validated with python-stdnum for its type."""
    if not tax_id:
        return ""
    validator = TAX_ID_VALIDATORS.get(tax_id_type)
    if validator is None:
        if tax_id_type:
            raise InvalidField("tax_id_type", f"Unknown tax id type {tax_id_type!r}.")
        raise InvalidField("tax_id_type", "Say which kind of tax id this is.")
    try:
        return str(validator.validate(tax_id))
    except StdnumError as exc:
        raise InvalidField("tax_id", f"Not a valid {tax_id_type} number: {exc}.") from None


def bank_details_clean(details: BankDetails) -> BankDetails:
    """Validate a US account (ABA routing checksum, digits) or an IBAN (+ BIC)."""
    routing, account = details.routing_number.strip(), details.account_number.replace(" ", "")
    iban, bic = details.iban.replace(" ", "").upper(), details.bic.replace(" ", "").upper()
    if routing or account:
        try:
            routing = us_rtn.validate(routing)
        except StdnumError:
            raise InvalidField(
                "routing_number", "Not a valid ABA routing number (9 digits, checksum)."
            ) from None
        if not account.isdigit() or not 4 <= len(account) <= 17:
            raise InvalidField("account_number", "An account number is 4 to 17 digits.")
        if details.account_type not in ("checking", "savings"):
            raise InvalidField("account_type", "Account type is checking or savings.")
    if iban:
        try:
            iban = iban_check.validate(iban)
        except StdnumError:
            raise InvalidField("iban", "Not a valid IBAN.") from None
    if bic:
        try:
            bic = bic_check.validate(bic)
        except StdnumError:
            raise InvalidField("bic", "Not a valid BIC.") from None
    return BankDetails(
        account_holder=details.account_holder.strip()[:200],
        routing_number=routing,
        account_number=account,
        account_type=details.account_type,
        iban=iban,
        bic=bic,
    )


def _apply_bank_details(vendor: Vendor, details: BankDetails) -> None:
    vendor.bank_account_holder = details.account_holder
    vendor.bank_routing_number = details.routing_number
    vendor.bank_account_number = details.account_number
    vendor.bank_account_type = details.account_type or "checking"
    vendor.iban = details.iban
    vendor.bic = details.bic


def _terms_check(payment_terms_days: int, discount_percent: Decimal, discount_days: int) -> None:
    if not Decimal(0) <= discount_percent < Decimal(100):
        raise InvalidField("discount_percent", "A discount is between 0 and 100 percent.")
    if discount_percent and not 0 < discount_days < payment_terms_days:
        raise InvalidField(
            "discount_days", "The discount period must be shorter than the payment terms."
        )


def vendor_create(
    *,
    name: str,
    email: str,
    currency: str,
    actor: Any,
    kind: str = VendorKind.SUPPLIER,
    employee: Any = None,
    country: str = "",
    address: str = "",
    tax_id_type: str = "",
    tax_id: str = "",
    payment_terms_days: int | None = None,
    discount_percent: Decimal = Decimal(0),
    discount_days: int = 0,
    bank: BankDetails | None = None,
) -> Vendor:
    """A new vendor in onboarding: ``pending_review`` when its tax id and bank details are
    there, else ``invited``. It is paid or ordered from only once someone other than its
    creator activates it."""
    if actor is not None and kind == VendorKind.SUPPLIER:
        require(actor, "payables.add_vendor", "add vendors")
    minor_unit_exponent(currency)
    if payment_terms_days is None:
        from core.system_settings import system_settings

        payment_terms_days = system_settings().billing.payment_terms
    _terms_check(payment_terms_days, discount_percent, discount_days)
    vendor = Vendor(
        name=name.strip(),
        email=email,
        kind=kind,
        employee=employee,
        currency=currency,
        country=country.upper(),
        address=address,
        tax_id_type=tax_id_type,
        tax_id=tax_id_clean(tax_id_type, tax_id),
        payment_terms_days=payment_terms_days,
        discount_percent=discount_percent,
        discount_days=discount_days,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    if bank is not None and not bank.empty:
        _apply_bank_details(vendor, bank_details_clean(bank))
    with transaction.atomic():
        if vendor.tax_id and vendor.has_bank_details:
            vendor.submit_for_review()
        vendor.save()
    return vendor


def _vendor_for_update(vendor_id: int) -> Vendor:
    """The vendor, locked; an erased one (GDPR) is refused: it is never changed again."""
    try:
        vendor = Vendor.objects.select_for_update().get(pk=vendor_id)
    except Vendor.DoesNotExist:
        raise NotFound(f"Vendor {vendor_id} does not exist.") from None
    vendor_erased_refuse(vendor)
    return vendor


def vendor_update(*, vendor_id: int, actor: Any, **fields: Any) -> Vendor:
    """Change contact details and terms (never status or bank details: they have their own
    services)."""
    require(actor, "payables.change_vendor", "change vendors")
    allowed = {
        "name",
        "email",
        "country",
        "address",
        "payment_terms_days",
        "discount_percent",
        "discount_days",
        "tax_id_type",
        "tax_id",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidField(sorted(unknown)[0], "This field is not changed here.")
    with transaction.atomic():
        vendor = _vendor_for_update(vendor_id)
        for key, value in fields.items():
            setattr(vendor, key, value)
        _terms_check(vendor.payment_terms_days, vendor.discount_percent, vendor.discount_days)
        vendor.tax_id = tax_id_clean(vendor.tax_id_type, vendor.tax_id)
        vendor.save()
    return vendor


def vendor_activate(*, vendor_id: int, actor: Any) -> Vendor:
    """Activate a vendor in onboarding (or a blocked one): a second person, never its
    creator, who holds ``activate_vendor``."""
    require(actor, "payables.activate_vendor", "activate vendors")
    with transaction.atomic():
        vendor = _vendor_for_update(vendor_id)
        if vendor.status == VendorStatus.ACTIVE:
            raise InvalidState(f"Vendor {vendor} is already active.", code="invalid_state")
        if vendor.created_by_id == actor.pk:
            raise ApprovalRefused(
                "You added this vendor: someone else must activate it.",
                code="requester_cannot_approve",
            )
        vendor.activate(by=actor)
        vendor.save()
    return vendor


def vendor_block(*, vendor_id: int, reason: str, actor: Any) -> Vendor:
    require(actor, "payables.activate_vendor", "block vendors")
    if not reason.strip():
        raise InvalidField("reason", "Say why the vendor is blocked.")
    with transaction.atomic():
        vendor = _vendor_for_update(vendor_id)
        vendor.block(reason=reason.strip()[:300])
        vendor.save()
    return vendor


def _notify_bank_change(change: VendorBankChange, event: str) -> None:
    """Tell the vendor's contact and finance that remittance details are changing: the
    classic fraud is a forged request, and the real vendor is the one who notices."""
    vendor = change.vendor
    company = company_details()
    body = (
        f"Bank details of {vendor.name} were {event}.\n"
        f"New account: {change.bank_account_masked or change.iban_masked} "
        f"(requested {change.requested_at:%Y-%m-%d %H:%M} UTC).\n"
        "If you did not ask for this change, contact us at once.\n"
    )
    to = [vendor.email]
    finance = getattr(settings, "PAYABLES_ALERT_EMAILS", None) or [company.get("email")]
    message = EmailMessage(
        subject=f"{company['name']}: bank details of {vendor.name} {event}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        bcc=[e for e in finance if e],
    )
    message.send(fail_silently=False)


def vendor_bank_change_request(
    *, vendor_id: int, bank: BankDetails, reason: str, actor: Any
) -> VendorBankChange:
    """Ask for new remittance details. Nothing changes until a second person approves; the
    vendor is on payment hold meanwhile."""
    require(actor, "payables.add_vendorbankchange", "request bank detail changes")
    details = bank_details_clean(bank)
    if details.empty:
        raise InvalidField("account_number", "Give an account number or an IBAN.")
    with transaction.atomic():
        vendor = _vendor_for_update(vendor_id)
        if vendor.bank_changes.filter(status=BankChangeStatus.PENDING).exists():
            raise InvalidState(
                f"A bank detail change for {vendor} already waits for approval.",
                code="bank_change_pending",
            )
        change = VendorBankChange.objects.create(
            vendor=vendor,
            bank_account_holder=details.account_holder,
            bank_routing_number=details.routing_number,
            bank_account_number=details.account_number,
            bank_account_type=details.account_type or "checking",
            iban=details.iban,
            bic=details.bic,
            reason=reason[:300],
            requested_by=actor,
        )
        transaction.on_commit(lambda: _notify_bank_change(change, "changed (pending approval)"))
    return change


def _change_for_update(change_id: int) -> VendorBankChange:
    try:
        return (
            VendorBankChange.objects.select_for_update().select_related("vendor").get(pk=change_id)
        )
    except VendorBankChange.DoesNotExist:
        raise NotFound(f"Bank detail change {change_id} does not exist.") from None


def _decide_bank_change(change: VendorBankChange, actor: Any) -> None:
    if change.status != BankChangeStatus.PENDING:
        raise InvalidState(f"This change was already {change.status}.", code="invalid_state")
    if change.requested_by_id == actor.pk:
        raise ApprovalRefused(
            "You asked for this change: a second person must decide on it.",
            code="requester_cannot_approve",
        )


def vendor_bank_change_approve(
    *, change_id: int, actor: Any, comment: str = ""
) -> VendorBankChange:
    require(actor, "payables.approve_vendorbankchange", "approve bank detail changes")
    with transaction.atomic():
        change = _change_for_update(change_id)
        _decide_bank_change(change, actor)
        vendor = _vendor_for_update(change.vendor_id)
        _apply_bank_details(
            vendor,
            BankDetails(
                account_holder=change.bank_account_holder,
                routing_number=change.bank_routing_number,
                account_number=change.bank_account_number,
                account_type=change.bank_account_type,
                iban=change.iban,
                bic=change.bic,
            ),
        )
        vendor.save()
        change.status = BankChangeStatus.APPROVED
        change.decided_by = actor
        change.decided_at = timezone.now()
        change.comment = comment[:500]
        change.save()
        transaction.on_commit(lambda: _notify_bank_change(change, "changed"))
    return change


def vendor_bank_change_reject(*, change_id: int, actor: Any, comment: str) -> VendorBankChange:
    require(actor, "payables.approve_vendorbankchange", "reject bank detail changes")
    with transaction.atomic():
        change = _change_for_update(change_id)
        _decide_bank_change(change, actor)
        change.status = BankChangeStatus.REJECTED
        change.decided_by = actor
        change.decided_at = timezone.now()
        change.comment = comment[:500]
        change.save()
    return change


def vendor_document_upload(*, vendor_id: int, kind: str, upload: Any, actor: Any) -> VendorDocument:
    require(actor, "payables.add_vendordocument", "upload vendor documents")
    if kind not in VendorDocument.Kind.values:
        raise InvalidField("kind", f"Unknown document kind {kind!r}.")
    checked = upload_check(upload)
    with transaction.atomic():
        vendor = _vendor_for_update(vendor_id)
        document = VendorDocument(
            vendor=vendor,
            kind=kind,
            original_name=checked.original_name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            extension=checked.extension,
            uploaded_by=actor,
        )
        document.file.save(checked.content.name, checked.content, save=False)
        try:
            document.save()
        except BaseException:
            document.file.storage.delete(document.file.name)
            raise
    return document


def employee_payee_get_or_create(*, user: Any) -> Vendor:
    """The payee record through which an employee's expenses are reimbursed."""
    from core.system_settings import system_settings

    payee = Vendor.objects.filter(employee=user).first()
    if payee is not None:
        return payee
    name = user.get_full_name() or user.get_username()
    return vendor_create(
        name=name,
        email=user.email or f"{user.get_username()}@invalid.example",
        currency=system_settings().functional_currency,
        actor=None,
        kind=VendorKind.EMPLOYEE,
        employee=user,
    )
