"""The reporting app's one write: marketing spend, the input of acquisition economics.

Everything else in ``reporting`` only reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from moneyed import CURRENCIES

from core.dates import DateKind, date_check
from core.exceptions import Conflict, DomainError, PermissionDeniedError
from core.money import UnknownCurrency, check_amount, round_money
from reporting.models import MarketingSpend

PERMISSION = "reporting.record_marketing_spend"
CHANNEL_LENGTH = 60
CAMPAIGN_LENGTH = 100


class MarketingSpendInvalid(DomainError):
    code = "marketing_spend_invalid"


class MarketingSpendExists(Conflict):
    """Another amount is on record for the channel, campaign, month and currency."""

    code = "marketing_spend_exists"


@dataclass(frozen=True, slots=True)
class SpendResult:
    spend: MarketingSpend
    # "created", "unchanged" (the same amount again) or "replaced".
    outcome: str


def _text(value: str, *, field: str, limit: int, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise MarketingSpendInvalid(f"A {field} is required.", field=field)
    if len(text) > limit:
        raise MarketingSpendInvalid(f"At most {limit} characters.", field=field)
    return text


def marketing_spend_record(
    *,
    actor: Any,
    channel: str,
    campaign: str,
    period: date,
    amount: Decimal,
    currency: str,
    replace: bool = False,
) -> SpendResult:
    """Record the spend of one channel and campaign in the month starting ``period``.

    Idempotent per channel, campaign, month and currency: the same amount again returns the
    row on record ("unchanged"). Another amount is refused with ``marketing_spend_exists``
    (409, naming the amount on record) unless ``replace`` is true, which overwrites the
    amount and keeps the old one in history ("replaced"). Bad input is refused naming its
    field."""
    if actor is None or not actor.has_perm(PERMISSION):
        raise PermissionDeniedError("You may not record marketing spend.")
    channel = _text(channel, field="channel", limit=CHANNEL_LENGTH, required=True)
    campaign = _text(campaign, field="campaign", limit=CAMPAIGN_LENGTH, required=False)
    if period.day != 1:
        raise MarketingSpendInvalid(
            "Spend is recorded per calendar month: give its first day.", field="period"
        )
    date_check(period, field="period", kind=DateKind.DOCUMENT)
    if currency not in CURRENCIES or currency == "XXX":
        raise UnknownCurrency(f"Unknown ISO 4217 currency {currency!r}.", field="currency")
    check_amount(amount, currency, field="amount")
    key = {"channel": channel, "campaign": campaign, "period": period, "currency": currency}
    with transaction.atomic():
        existing = MarketingSpend.objects.select_for_update().filter(**key).first()
        if existing is None:
            try:
                with transaction.atomic():
                    created = MarketingSpend.objects.create(
                        **key, amount=amount, recorded_by=actor, recorded_at=timezone.now()
                    )
                return SpendResult(created, "created")
            except IntegrityError:
                # A concurrent request recorded the same key first: compare with it.
                existing = MarketingSpend.objects.select_for_update().get(**key)
        if existing.amount == amount:
            return SpendResult(existing, "unchanged")
        if not replace:
            raise MarketingSpendExists(
                f"{channel}/{campaign or '-'} {period:%Y-%m} is already recorded at "
                f"{round_money(existing.amount, currency):,f} {currency} "
                f'(spend {existing.pk}). Send "replace": true to correct it.',
                field="amount",
                marketing_spend=existing.pk,
            )
        existing.amount = amount
        existing.recorded_by = actor
        existing.recorded_at = timezone.now()
        existing.save(update_fields=["amount", "recorded_by", "recorded_at"])
        return SpendResult(existing, "replaced")
