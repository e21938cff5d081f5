"""Hosted invoice links: made for an issued invoice, checked when opened, revoked by staff.

A token is a random nonce signed with the site's key (``django.core.signing``, salted): a
forged, altered or truncated token is refused before the database is asked, the link is
then found by its nonce, and it only works while it is neither expired nor revoked. A token
signed with a previous key (``SECRET_KEY_FALLBACKS``) still opens its link, and addresses
given after a key rotation are signed with the new key.
One active link per invoice is reused (emails and the API give the same address); a revoked
or expired one is replaced by a new one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from billing.enums import InvoiceStatus
from billing.models import Invoice
from billing.models.links import InvoiceLink
from billing.selectors import LINK_SALT, invoice_link_url
from core.exceptions import DomainError, NotFound, PermissionDeniedError


class LinkRefused(DomainError):
    """The link cannot be used: unknown (forged), expired or revoked."""

    code = "invoice_link_refused"
    status_code = 404


def invoice_link_get_or_create(*, invoice_id: int) -> InvoiceLink:
    """The invoice's active link, made when it has none (issued invoices only)."""
    now = timezone.now()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status == InvoiceStatus.DRAFT:
            raise DomainError("A draft has no hosted page: issue it first.")
        link = (
            InvoiceLink.objects.filter(invoice=invoice, revoked_at__isnull=True, expires_at__gt=now)
            .order_by("-expires_at")
            .first()
        )
        if link is not None:
            return link
        link = _new_link(invoice.pk, now)
        link.save()
        return link


def _new_link(invoice_id: int, now: Any) -> InvoiceLink:
    return InvoiceLink(
        invoice_id=invoice_id,
        nonce=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + timedelta(days=settings.INVOICE_LINK_DAYS),
    )


def invoice_links_create(invoices: list[Invoice]) -> None:
    """In the issuing transaction: a link for each just issued invoice (its page exists from
    the moment it is issued; reads never write one)."""
    now = timezone.now()
    bulk_create_with_history([_new_link(i.pk, now) for i in invoices], InvoiceLink)


def invoice_url(*, invoice_id: int) -> str:
    """The address of the invoice's hosted page (made if need be)."""
    return invoice_link_url(invoice_link_get_or_create(invoice_id=invoice_id))


def invoice_link_open(*, token: str, count_view: bool = False) -> InvoiceLink:
    """The link of a token, if it may be used now; else ``LinkRefused`` saying why."""
    try:
        nonce = signing.Signer(salt=LINK_SALT).unsign(token)
    except signing.BadSignature:
        raise LinkRefused("This link is not valid.") from None
    link = InvoiceLink.objects.select_related("invoice__customer").filter(nonce=nonce).first()
    if link is None:
        raise LinkRefused("This link is not valid.")
    if link.revoked_at is not None:
        raise LinkRefused("This link was withdrawn. Please ask us for a new one.")
    if link.expires_at <= timezone.now():
        raise LinkRefused("This link has expired. Please ask us for a new one.")
    if count_view:
        InvoiceLink.objects.filter(pk=link.pk).update(
            view_count=F("view_count") + 1, last_viewed_at=timezone.now()
        )
    return link


@dataclass(frozen=True, slots=True)
class Revoked:
    count: int


def invoice_links_revoke(*, actor: Any, invoice_id: int) -> Revoked:
    """Withdraw every active link of the invoice (a new one is made when next needed)."""
    if actor is not None and not actor.has_perm("billing.revoke_invoicelink"):
        raise PermissionDeniedError("Your role does not allow revoking invoice links.")
    if not Invoice.objects.filter(pk=invoice_id).exists():
        raise NotFound(f"No invoice {invoice_id}.")
    with transaction.atomic():
        return Revoked(
            count=invoice_links_withdraw(
                InvoiceLink.objects.filter(invoice_id=invoice_id), actor=actor
            )
        )


def invoice_links_withdraw(links: QuerySet[InvoiceLink], *, actor: Any, why: str = "") -> int:
    """Revoke the active ``links`` now, one by one so that each revocation is in the link's
    history (who, when, ``why``). The caller holds the transaction and the permission."""
    now = timezone.now()
    count = 0
    for link in links.select_for_update().filter(revoked_at__isnull=True):
        link.revoked_at = now
        link.revoked_by = actor if getattr(actor, "pk", None) else None
        if why:
            link._change_reason = why  # type: ignore[attr-defined]
        link.save(update_fields=["revoked_at", "revoked_by"])
        count += 1
    return count
