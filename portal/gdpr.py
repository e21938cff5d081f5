"""The portal's part of a customer's GDPR requests (``billing.services.gdpr``).

Export: the links sent (to which address, when used), the sessions (from which address and
browser) and the access log. Erasure: unused links are withdrawn and open sessions ended, so
nobody signs in as the erased customer; the addresses the links went to, the IP addresses and
browsers of sessions and accesses, and what the customer wrote on a dispute (with its
attachment) are replaced. The fact that a link was sent, a session held or a page opened, and
when, stays: it is the access log's.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from billing.models import Customer
from billing.services.gdpr import CustomerGdprPart, customer_pseudonym, register_customer_gdpr_part
from core.gdpr import ERASED, record_data
from portal.models import DisputeMessage, PortalAccess, PortalLink, PortalSession
from portal.services import portal_access_end


def _messages(customer: Customer) -> Any:
    return DisputeMessage.objects.filter(dispute__customer=customer).order_by("pk")


def _export(customer: Customer) -> dict[str, Any]:
    return {
        "links": [
            record_data(link, exclude=("token_hash",))
            for link in PortalLink.objects.filter(customer=customer).order_by("pk")
        ],
        "sessions": [
            record_data(session, exclude=("key_hash",))
            for session in PortalSession.objects.filter(customer=customer).order_by("pk")
        ],
        "accesses": [
            record_data(access)
            for access in PortalAccess.objects.filter(customer=customer).order_by("pk")
        ],
        "dispute_messages": [record_data(message) for message in _messages(customer)],
    }


def _erase(customer: Customer) -> None:
    portal_access_end(customer_id=customer.pk, reason="customer erased")
    PortalLink.objects.filter(customer=customer).update(
        sent_to=customer_pseudonym(customer.pk)["email"], requested_ip=None
    )
    PortalSession.objects.filter(customer=customer).update(ip=None, user_agent="")
    sessions = PortalSession.objects.filter(customer=customer).values("pk")
    # A link asked for on the portal's own page is logged before anyone knows whose address
    # it is: found by the address (the customer's row still holds it when this runs).
    accesses = PortalAccess.objects.filter(
        Q(customer=customer) | Q(session__in=sessions) | Q(detail__iexact=customer.email)
    )
    accesses.update(ip=None)
    accesses.exclude(detail="").update(detail=ERASED)
    for message in _messages(customer).exclude(attachment=""):
        message.attachment.delete(save=False)
    _messages(customer).update(message=ERASED, attachment="", attachment_name="")


def register() -> None:
    register_customer_gdpr_part(CustomerGdprPart(name="portal", export=_export, erase=_erase))
