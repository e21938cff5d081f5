"""Removing a saved card also detaches it from its Stripe customer: after the removal commits,
by a task with retries and an hourly sweep, against the local Stripe fake at the HTTP layer.
The removal itself never waits on Stripe nor fails because of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing.models import PaymentMethod
from billing.selectors import HOSTED_CHECKOUT_PREFIX, payment_method_chargeable
from billing.services.payment_methods import payment_method_add, payment_method_remove
from billing.tasks import (
    payment_method_processor_detach_task,
    payment_methods_processor_detach_sweep_task,
)
from tests.billing.fakes.stripe_server import FakeStripe, running_fake_stripe

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
NOBODY_LISTENS = "http://127.0.0.1:9"


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 0.5
        yield fake


def save_card(clerk, customer, fake: FakeStripe) -> PaymentMethod:
    stripe_customer = f"cus_Test{customer.pk}"
    card = fake.card_saved(stripe_customer)
    return payment_method_add(
        actor=clerk,
        customer_id=customer.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id=stripe_customer,
        processor_token=card["id"],
        card_brand="visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2031,
    )


def test_removal_detaches_the_card_at_stripe_once(
    fake, clerk, customer, django_capture_on_commit_callbacks
):
    # given a card saved on the customer at Stripe
    card = save_card(clerk, customer, fake)
    # when it is removed (and the removal commits)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        payment_method_remove(actor=clerk, payment_method_id=card.pk)
    # then Stripe was asked once to detach it, and says it has no customer any more
    assert len(queued) == 1
    (request,) = fake.detach_requests()
    assert request.path == f"/v1/payment_methods/{card.processor_token}/detach"
    assert request.headers["authorization"] == "Bearer sk_test_fake"
    assert fake.payment_methods[card.processor_token]["customer"] is None
    card.refresh_from_db()
    assert card.detached_at is not None
    assert card.processor_detached_at is not None
    # and nothing sends it again: the task redelivered, a second removal, the sweep
    assert (
        payment_method_processor_detach_task.apply(kwargs={"payment_method_id": str(card.pk)}).get()
        == "detached before"
    )
    with django_capture_on_commit_callbacks(execute=True) as queued_again:
        payment_method_remove(actor=clerk, payment_method_id=card.pk)
    assert queued_again == []
    assert payment_methods_processor_detach_sweep_task.apply().get() == {
        "detached": 0,
        "refused": 0,
        "pending": 0,
    }
    assert len(fake.detach_requests()) == 1


def test_removal_succeeds_while_stripe_is_down_and_is_detached_later(
    fake, clerk, customer, settings, django_capture_on_commit_callbacks
):
    # given two saved cards, and Stripe not answering
    first = save_card(clerk, customer, fake)
    second = save_card(clerk, customer, fake)
    settings.STRIPE_API_BASE = NOBODY_LISTENS
    # when both are removed
    with django_capture_on_commit_callbacks(execute=True) as queued:
        removed = payment_method_remove(actor=clerk, payment_method_id=first.pk)
        payment_method_remove(actor=clerk, payment_method_id=second.pk)
    # then the removals stand: never charged again, waiting for Stripe
    assert len(queued) == 2
    assert removed.detached_at is not None
    for card in (first, second):
        card.refresh_from_db()
        assert card.detached_at is not None
        assert card.processor_detached_at is None
        assert payment_method_chargeable(customer_id=customer.pk, payment_method_id=card.pk) is None
    assert fake.detach_requests() == []
    # when Stripe answers again: the task's retry detaches the first card
    settings.STRIPE_API_BASE = fake.url
    assert (
        payment_method_processor_detach_task.apply(
            kwargs={"payment_method_id": str(first.pk)}
        ).get()
        == "detached"
    )
    # and the sweep the second
    assert payment_methods_processor_detach_sweep_task.apply().get() == {
        "detached": 1,
        "refused": 0,
        "pending": 0,
    }
    # then each was sent once, and Stripe holds neither on the customer
    assert len(fake.detach_requests(first.processor_token)) == 1
    assert len(fake.detach_requests(second.processor_token)) == 1
    for card in (first, second):
        card.refresh_from_db()
        assert card.processor_detached_at is not None
        assert fake.payment_methods[card.processor_token]["customer"] is None


def test_the_sweep_stops_while_stripe_is_down(fake, clerk, customer, settings):
    # given a removed card whose detachment was lost (the queue was down)
    card = save_card(clerk, customer, fake)
    payment_method_remove(actor=clerk, payment_method_id=card.pk)  # no commit: nothing queued
    settings.STRIPE_API_BASE = NOBODY_LISTENS
    # when the sweep runs while Stripe does not answer
    outcome = payment_methods_processor_detach_sweep_task.apply().get()
    # then it stays pending for the next run
    assert outcome == {"detached": 0, "refused": 0, "pending": 1}
    card.refresh_from_db()
    assert card.processor_detached_at is None


@pytest.mark.parametrize("at_stripe", ["detached_there_already", "unknown_to_stripe"])
def test_stripe_saying_it_is_not_attached_counts_as_done(
    fake, clerk, customer, at_stripe, django_capture_on_commit_callbacks
):
    # given a card Stripe no longer holds on the customer (detached in the dashboard), or
    # does not know at all
    card = save_card(clerk, customer, fake)
    if at_stripe == "detached_there_already":
        fake.payment_methods[card.processor_token]["customer"] = None
    else:
        del fake.payment_methods[card.processor_token]
    # when it is removed
    with django_capture_on_commit_callbacks(execute=True):
        payment_method_remove(actor=clerk, payment_method_id=card.pk)
    # then Stripe's refusal (400 "not attached", or 404 resource_missing) is taken as done
    assert len(fake.detach_requests()) == 1
    card.refresh_from_db()
    assert card.processor_detached_at is not None
    assert payment_methods_processor_detach_sweep_task.apply().get()["pending"] == 0
    assert len(fake.detach_requests()) == 1


def test_placeholders_and_bank_accounts_are_not_sent(
    fake, clerk, customer, django_capture_on_commit_callbacks
):
    # given a bank account and the hosted-checkout placeholders PayPal and Coinbase
    # attempts hang on (they hold no token of a card)
    bank = payment_method_add(
        actor=clerk,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder="Acme Corp",
        bank_routing_number="110000000",
        bank_account_number="000123456789",
    )
    placeholders = [
        PaymentMethod.objects.create(
            customer=customer,
            type="credit_card",
            processor=processor,
            processor_token=f"{HOSTED_CHECKOUT_PREFIX}{customer.pk}",
        )
        for processor in ("paypal", "stripe")
    ]
    # when each is removed, and the sweep runs
    with django_capture_on_commit_callbacks(execute=True) as queued:
        for method in (bank, *placeholders):
            payment_method_remove(actor=clerk, payment_method_id=method.pk)
    sweep = payment_methods_processor_detach_sweep_task.apply().get()
    # then nothing went to Stripe, and nothing waits for it
    assert queued == []
    assert fake.detach_requests() == []
    assert sweep == {"detached": 0, "refused": 0, "pending": 0}
    for method in (bank, *placeholders):
        method.refresh_from_db()
        assert method.detached_at is not None
        assert method.processor_detached_at is None
    assert (
        payment_method_processor_detach_task.apply(kwargs={"payment_method_id": str(bank.pk)}).get()
        == "not a Stripe card or PayPal wallet"
    )


def test_removal_through_the_api_detaches_at_stripe(
    fake, clerk, customer, client_for, django_capture_on_commit_callbacks
):
    # given
    card = save_card(clerk, customer, fake)
    # when the card is removed through the REST API
    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for("ar_clerk").delete(
            f"/api/billing/customers/{customer.pk}/payment-methods/{card.pk}"
        )
    # then
    assert answer.status_code == 200, answer.content
    (request,) = fake.detach_requests()
    assert request.path == f"/v1/payment_methods/{card.processor_token}/detach"
    card.refresh_from_db()
    assert card.processor_detached_at is not None
