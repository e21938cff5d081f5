"""Payment processor adapters: each turns the processor's API into these few shapes.

Adapters never touch the database; the services in billing.services.processor_payments do.
Three outcomes of a charge are told apart, because they are handled differently:
``ProcessorDeclined`` (a definite no), ``ProcessorUnreachable`` (no answer: the charge may or
may not have happened, so it must not be retried blindly) and ``ProcessorRequestError``
(a definite no for another reason than the card).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.exceptions import Conflict, DomainError


@dataclass(frozen=True, slots=True)
class IntentResult:
    """What the processor says about one payment (a Stripe PaymentIntent)."""

    id: str
    status: str
    amount_minor: int
    currency: str
    latest_charge: str = ""
    customer: str = ""
    failure_code: str = ""
    failure_message: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        # Off-session, a PaymentIntent back at requires_payment_method was declined;
        # canceled ones will never be paid.
        return self.status in ("requires_payment_method", "canceled")

    @property
    def charge_id(self) -> str:
        """The id a payment is recorded under: the charge, or the intent if none is known."""
        return self.latest_charge or self.id


class ProcessorError(Exception):
    """Base of the adapters' errors (not shown to API clients as such)."""


class ProcessorDeclined(ProcessorError):
    def __init__(
        self, *, code: str, message: str, intent_id: str = "", charge_id: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.intent_id = intent_id
        self.charge_id = charge_id


class ProcessorRequestError(ProcessorDeclined):
    """Refused for another reason than the card (bad request, authentication, rate limit)."""


class ProcessorUnreachable(ProcessorError):
    """No answer (timeout, connection error, processor 5xx): the outcome is unknown."""


class ProcessorNotConfigured(DomainError):
    code = "processor_not_configured"
    status_code = 503


class PaymentDeclined(DomainError):
    """The processor declined the charge; ``details`` carry the decline code."""

    code = "card_declined"
    status_code = 402

    @classmethod
    def from_attempt(cls, attempt: Any) -> PaymentDeclined:
        return cls(
            attempt.failure_message or "The payment was declined.",
            decline_code=attempt.failure_code,
            attempt=attempt.pk,
        )


class ChargeInProgress(Conflict):
    code = "charge_in_progress"


class PaymentMethodUnusable(DomainError):
    code = "payment_method_unusable"


class CardNumberRefused(DomainError):
    code = "card_number_refused"
    message_text = (
        "Card numbers must not be sent to this service: collect cards with the processor's "
        "form (Stripe Elements) and send the payment method token (pm_...) instead."
    )


class WebhookRefused(DomainError):
    code = "webhook_signature_invalid"
