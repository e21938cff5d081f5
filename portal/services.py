"""The customer portal: magic links, sessions, and what a customer may do there.

No passwords. A customer asks for a link on the portal's first page with their billing email
(or staff send one); the link is random, stored hashed, used once, valid for
``PORTAL_LINK_MINUTES`` (30). Opening it (a POST from the page it leads to, so that mail
scanners fetching the address use nothing) starts a session: a random key in an HttpOnly
cookie, stored hashed, ended after ``PORTAL_IDLE_MINUTES`` (30) without a visit or
``PORTAL_SESSION_HOURS`` (8) in all, by signing out, or by staff revoking the customer's
access. Asking for links is rate limited per address and per IP, page views per session;
every visit and every refusal is logged (``PortalAccess``).

What the portal changes, it changes through billing's and receivables' services, acting for
the customer (no staff user): autopay, default and removed payment methods, disputes. Staff
read the files customers attach to disputes through ``dispute_attachment_read`` (logged).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, PaymentMethod
from billing.processors import ProcessorNotConfigured
from billing.processors import stripe as stripe_adapter
from billing.services.card_setup import card_setup_start
from billing.services.customers import customer_update
from billing.services.payment_methods import payment_method_default_set, payment_method_remove
from billing.services.wallet_setup import wallet_setup_complete, wallet_setup_start
from core.company import company_details
from core.exceptions import DomainError, NotFound, PermissionDeniedError
from portal.models import DisputeMessage, PortalAccess, PortalLink, PortalSession
from receivables.services.disputes import dispute_open

WINDOW = timedelta(minutes=15)
LINKS_PER_ADDRESS = 3
LINK_REQUESTS_PER_IP = 10
VIEWS_PER_MINUTE = 120
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024
# What a dispute may attach, known by its first bytes (the name and type a browser sends are
# not trusted): PDF, PNG, JPEG.
ATTACHMENT_MAGIC = {b"%PDF-": "pdf", b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg"}
ATTACHMENT_TYPES = {"pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg"}


class PortalRefused(DomainError):
    """The link or session cannot be used (unknown, used, expired, revoked, ended)."""

    code = "portal_refused"
    status_code = 404


class TooManyRequests(DomainError):
    code = "too_many_requests"
    status_code = 429


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _minutes(name: str, default: int) -> timedelta:
    return timedelta(minutes=int(getattr(settings, name, default)))


def access_log(
    *,
    action: str,
    ip: str | None,
    customer_id: int | None = None,
    session: PortalSession | None = None,
    path: str = "",
    detail: str = "",
) -> None:
    PortalAccess.objects.create(
        action=action,
        ip=ip,
        customer_id=customer_id,
        session=session,
        path=path[:300],
        detail=detail[:300],
    )


# --- links -------------------------------------------------------------------------------------


def _link_send(customer: Customer, *, ip: str | None, sent_by: Any) -> PortalLink:
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    link = PortalLink.objects.create(
        customer=customer,
        token_hash=_hash(token),
        sent_to=customer.email,
        created_at=now,
        expires_at=now + _minutes("PORTAL_LINK_MINUTES", 30),
        sent_by=sent_by if getattr(sent_by, "pk", None) else None,
        requested_ip=ip,
    )
    url = f"{settings.PUBLIC_BASE_URL}{reverse('portal:enter', args=[token])}"
    company = company_details()
    minutes = int(getattr(settings, "PORTAL_LINK_MINUTES", 30))
    message = EmailMessage(
        subject=f"Your account at {company['name']}",
        body=(
            f"Hello {customer.name},\n\n"
            f"Open this link to see your invoices, statement and payment methods at "
            f"{company['name']}:\n\n{url}\n\n"
            f"It works once, for {minutes} minutes. If you did not ask for it, ignore this "
            "email: nothing happens without the link.\n\n"
            f"{company['name']}"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[customer.email],
        reply_to=[company["email"]] if company.get("email") else None,
    )
    transaction.on_commit(lambda: message.send(fail_silently=False), robust=True)
    return link


def portal_link_request(*, email: str, ip: str | None) -> None:
    """Email a link to each customer billed at ``email``. Says nothing about whether there is
    one (the page answers the same), and quietly sends no more than 3 per address in 15
    minutes; more than 10 requests from one IP in 15 minutes are refused (429)."""
    address = (email or "").strip().lower()[:254]
    since = timezone.now() - WINDOW
    if (
        ip
        and PortalAccess.objects.filter(action="link_requested", ip=ip, at__gte=since).count()
        >= LINK_REQUESTS_PER_IP
    ):
        access_log(action="link_refused", ip=ip, detail="too many requests from this address")
        raise TooManyRequests("Too many requests. Please try again in a few minutes.")
    with transaction.atomic():
        access_log(action="link_requested", ip=ip, detail=address)
        if not address or "@" not in address:
            return
        recent = PortalLink.objects.filter(
            sent_to__iexact=address, created_at__gte=since, sent_by=None
        )
        if recent.count() >= LINKS_PER_ADDRESS:
            access_log(action="link_limited", ip=ip, detail=address)
            return
        for customer in Customer.objects.filter(email__iexact=address).order_by("pk")[:5]:
            _link_send(customer, ip=ip, sent_by=None)


def portal_link_send(*, actor: Any, customer_id: int) -> PortalLink:
    """Staff send the customer a link (to their billing email)."""
    if actor is not None and not actor.has_perm("portal.send_portallink"):
        raise PermissionDeniedError("Your role does not allow sending portal links.")
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id}.")
    if not customer.email:
        raise DomainError(f"{customer.name} has no billing email.", field="email")
    with transaction.atomic():
        return _link_send(customer, ip=None, sent_by=actor)


@dataclass(frozen=True, slots=True)
class Entered:
    session: PortalSession
    key: str


def portal_link_check(*, token: str, ip: str | None) -> PortalLink:
    """The link of a token if it can still be used (the page before signing in)."""
    link = PortalLink.objects.filter(token_hash=_hash(token or "")).first()
    reason = _link_refusal(link)
    if link is not None and not reason:
        return link
    access_log(
        action="link_refused", ip=ip, customer_id=link.customer_id if link else None, detail=reason
    )
    raise PortalRefused(reason)


def _link_refusal(link: PortalLink | None) -> str:
    if link is None:
        return "This link is not valid."
    if link.revoked_at is not None:
        return "This link was withdrawn. Ask for a new one."
    if link.used_at is not None:
        return "This link was used already. Ask for a new one."
    if link.expires_at <= timezone.now():
        return "This link has expired. Ask for a new one."
    return ""


def portal_enter(*, token: str, ip: str | None, user_agent: str = "") -> Entered:
    """Use the link (once) and start a session. A refusal is logged (outside the rolled-back
    transaction)."""
    with transaction.atomic():
        link = PortalLink.objects.select_for_update().filter(token_hash=_hash(token or "")).first()
        reason = _link_refusal(link)
        if link is not None and not reason:
            return _session_start(link, ip=ip, user_agent=user_agent)
    access_log(
        action="link_refused", ip=ip, customer_id=link.customer_id if link else None, detail=reason
    )
    raise PortalRefused(reason)


def _session_start(link: PortalLink, *, ip: str | None, user_agent: str) -> Entered:
    now = timezone.now()
    link.used_at = now
    link.save(update_fields=["used_at"])
    key = secrets.token_urlsafe(32)
    session = PortalSession.objects.create(
        customer_id=link.customer_id,
        link=link,
        key_hash=_hash(key),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=int(getattr(settings, "PORTAL_SESSION_HOURS", 8))),
        ip=ip,
        user_agent=user_agent[:300],
    )
    access_log(action="signed_in", ip=ip, customer_id=link.customer_id, session=session)
    return Entered(session=session, key=key)


def portal_session_open(*, key: str, ip: str | None, path: str) -> PortalSession:
    """The session of a cookie's key, for one request (logged); refused if it ended."""
    session = (
        PortalSession.objects.select_related("customer").filter(key_hash=_hash(key or "")).first()
        if key
        else None
    )
    now = timezone.now()
    if session is None or session.ended_at is not None:
        raise PortalRefused("Please sign in again.")
    if session.expires_at <= now or now - session.last_seen_at > _minutes(
        "PORTAL_IDLE_MINUTES", 30
    ):
        PortalSession.objects.filter(pk=session.pk, ended_at=None).update(
            ended_at=now, end_reason="timed out"
        )
        raise PortalRefused("Your session has ended. Please sign in again.")
    recent = PortalAccess.objects.filter(session=session, at__gte=now - timedelta(minutes=1))
    if recent.count() >= VIEWS_PER_MINUTE:
        access_log(
            action="refused",
            ip=ip,
            session=session,
            customer_id=session.customer_id,
            path=path,
            detail="too many requests",
        )
        raise TooManyRequests("Too many requests. Please wait a minute.")
    PortalSession.objects.filter(pk=session.pk).update(last_seen_at=now)
    access_log(action="view", ip=ip, session=session, customer_id=session.customer_id, path=path)
    return session


def portal_sign_out(*, session: PortalSession, ip: str | None) -> None:
    PortalSession.objects.filter(pk=session.pk, ended_at=None).update(
        ended_at=timezone.now(), end_reason="signed out"
    )
    access_log(action="signed_out", ip=ip, session=session, customer_id=session.customer_id)


@dataclass(frozen=True, slots=True)
class Revoked:
    links: int
    sessions: int


def portal_revoke(*, actor: Any, customer_id: int) -> Revoked:
    """Withdraw the customer's unused links and end their sessions now."""
    if actor is not None and not actor.has_perm("portal.revoke_portal"):
        raise PermissionDeniedError("Your role does not allow revoking portal access.")
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound(f"No customer {customer_id}.")
    who = getattr(actor, "username", "") or "the system"
    with transaction.atomic():
        revoked = portal_access_end(customer_id=customer_id, reason=f"revoked by {who}")
        access_log(action="revoked", ip=None, customer_id=customer_id, detail=f"by {who}")
    return revoked


def portal_access_end(*, customer_id: int, reason: str) -> Revoked:
    """Withdraw the customer's unused links and end their open sessions now (``reason`` is
    the sessions' end reason). The caller holds the permission."""
    now = timezone.now()
    links = PortalLink.objects.filter(customer_id=customer_id, used_at=None, revoked_at=None)
    sessions = PortalSession.objects.filter(customer_id=customer_id, ended_at=None)
    return Revoked(
        links=links.update(revoked_at=now),
        sessions=sessions.update(ended_at=now, end_reason=reason[:100]),
    )


# --- what the customer does ----------------------------------------------------------------


def _own_method(session: PortalSession, method_id: int) -> PaymentMethod:
    method = PaymentMethod.objects.filter(
        pk=method_id, customer_id=session.customer_id, detached_at=None
    ).first()
    if method is None:
        raise NotFound("No such payment method.")
    return method


def portal_autopay_set(*, session: PortalSession, on: bool, ip: str | None) -> None:
    customer_update(actor=None, customer_id=session.customer_id, autopay=on)
    access_log(
        action="autopay_on" if on else "autopay_off",
        ip=ip,
        session=session,
        customer_id=session.customer_id,
    )


def portal_method_default(*, session: PortalSession, method_id: int, ip: str | None) -> None:
    method = _own_method(session, method_id)
    payment_method_default_set(actor=None, payment_method_id=method.pk)
    access_log(
        action="method_default",
        ip=ip,
        session=session,
        customer_id=session.customer_id,
        detail=str(method),
    )


def portal_method_remove(*, session: PortalSession, method_id: int, ip: str | None) -> None:
    method = _own_method(session, method_id)
    payment_method_remove(actor=None, payment_method_id=method.pk)
    access_log(
        action="method_removed",
        ip=ip,
        session=session,
        customer_id=session.customer_id,
        detail=str(method),
    )


def portal_card_add(*, session: PortalSession, ip: str | None) -> str:
    """Stripe's page where the customer saves a card; the card is kept when Stripe's webhook
    confirms it (``billing.services.card_setup``)."""
    home = f"{settings.PUBLIC_BASE_URL}{reverse('portal:home')}"
    url = card_setup_start(
        customer_id=session.customer_id, success_url=f"{home}?done=card", cancel_url=home
    )
    access_log(action="card_setup_started", ip=ip, session=session, customer_id=session.customer_id)
    return url


def portal_wallet_add(*, session: PortalSession, ip: str | None) -> str:
    """PayPal's page where the customer approves saving the wallet; PayPal sends them back
    to ``portal_wallet_return``."""
    base = settings.PUBLIC_BASE_URL
    url = wallet_setup_start(
        customer_id=session.customer_id,
        return_url=f"{base}{reverse('portal:wallet_return')}",
        cancel_url=f"{base}{reverse('portal:home')}",
    )
    access_log(
        action="wallet_setup_started", ip=ip, session=session, customer_id=session.customer_id
    )
    return url


def portal_wallet_return(
    *, session: PortalSession, setup_token_id: str, ip: str | None
) -> PaymentMethod:
    """Back from PayPal: the wallet is saved if PayPal confirms the approval is this
    customer's (``wallet_setup_complete`` reads it from PayPal, not from the address)."""
    try:
        method = wallet_setup_complete(
            customer_id=session.customer_id, setup_token_id=setup_token_id
        )
    except DomainError as exc:
        access_log(
            action="wallet_setup_refused",
            ip=ip,
            session=session,
            customer_id=session.customer_id,
            detail=exc.message,
        )
        raise
    access_log(
        action="wallet_saved",
        ip=ip,
        session=session,
        customer_id=session.customer_id,
        detail=f"payment method {method.pk}",
    )
    return method


def card_setup_offered() -> bool:
    try:
        stripe_adapter.stripe_client()
    except ProcessorNotConfigured:
        return False
    return True


def _kind_of(head: bytes) -> str:
    for magic, kind in ATTACHMENT_MAGIC.items():
        if head.startswith(magic):
            return kind
    return ""


def _attachment_kind(upload: UploadedFile) -> str:
    if upload.size is not None and upload.size > ATTACHMENT_MAX_BYTES:
        raise DomainError("The file is larger than 5 MB.", field="attachment")
    head = upload.read(16)
    upload.seek(0)
    kind = _kind_of(head)
    if not kind:
        raise DomainError("Attach a PDF, PNG or JPEG file.", field="attachment")
    return kind


def portal_dispute_open(
    *,
    session: PortalSession,
    invoice_id: int,
    amount_text: str,
    message: str,
    attachment: UploadedFile | None,
    ip: str | None,
) -> DisputeMessage:
    """Dispute (part of) one of the customer's invoices, with a message and a file."""
    invoice = Invoice.objects.filter(pk=invoice_id, customer_id=session.customer_id).first()
    if invoice is None or invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
        raise NotFound("No such invoice to dispute.", field="invoice")
    message = (message or "").strip()
    if not message:
        raise DomainError("Tell us what is wrong.", field="message")
    if len(message) > 5000:
        raise DomainError("The message is longer than 5,000 characters.", field="message")
    try:
        amount = Decimal((amount_text or "").strip().replace(",", "")) if amount_text else None
    except InvalidOperation:
        raise DomainError("The amount is not a number.", field="amount") from None
    if amount is None:
        amount = invoice.total.amount
    kind = _attachment_kind(attachment) if attachment else ""
    with transaction.atomic():
        dispute = dispute_open(
            actor=None, invoice_id=invoice.pk, amount=amount, reason=message[:500]
        )
        note = DisputeMessage(dispute=dispute, message=message, session=session)
        if attachment is not None:
            note.attachment_name = (attachment.name or f"attachment.{kind}")[:200]
            note.attachment.save(f"dispute-{dispute.pk}.{kind}", attachment, save=False)
        note.save()
        access_log(
            action="dispute_opened",
            ip=ip,
            session=session,
            customer_id=session.customer_id,
            detail=f"dispute {dispute.pk} on {invoice.number}",
        )
    return note


# --- what staff read ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DisputeAttachment:
    content: bytes
    content_type: str
    filename: str


def _download_name(note: DisputeMessage, kind: str) -> str:
    """``dispute-12-seats.pdf``: the customer's name for the file cut to plain ASCII letters,
    digits, ``-`` and ``_`` (nothing a header or a file system could misread), and the
    extension of the type the bytes were checked to be."""
    given = re.split(r"[\\/]", note.attachment_name or "")[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", given).strip("-_")[:60] or "attachment"
    return f"dispute-{note.dispute_id}-{stem}.{kind or 'bin'}"


def dispute_attachment_read(
    *, actor: Any, message_id: int, ip: str | None, path: str = ""
) -> DisputeAttachment:
    """The file a customer attached to a dispute, for staff who may view disputes. Every
    read, and every refusal, is written to the portal's access log (who, when, from where,
    which file). The type is the one its first bytes show (PDF, PNG, JPEG; anything else is
    served as bytes), never the name the customer's browser sent."""
    who = getattr(actor, "username", "") or "nobody"
    note = DisputeMessage.objects.select_related("dispute").filter(pk=message_id).first()
    customer_id = note.dispute.customer_id if note is not None else None
    if actor is None or not actor.has_perm("receivables.view_dispute"):
        access_log(
            action="attachment_refused",
            ip=ip,
            customer_id=customer_id,
            path=path,
            detail=f"message {message_id} refused to {who}: no right to view disputes",
        )
        raise PermissionDeniedError("Your role does not allow viewing disputes.")
    if note is None or not note.attachment:
        raise NotFound("This message has no attachment.")
    try:
        with note.attachment.open("rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise NotFound("The attached file is missing from the storage.") from None
    kind = _kind_of(content[:16])
    access_log(
        action="attachment_read",
        ip=ip,
        customer_id=customer_id,
        path=path,
        detail=f"dispute {note.dispute_id} message {note.pk} ({note.attachment.name}) by {who}",
    )
    return DisputeAttachment(
        content=content,
        content_type=ATTACHMENT_TYPES.get(kind, "application/octet-stream"),
        filename=_download_name(note, kind),
    )
