"""Admin forms that move money are done once however often they are sent: the record-payment
form and the refund confirmation page, sent twice (a double click, a retry, concurrently),
record one payment or one refund; a refused sending can be corrected and sent again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from billing.models import Customer, Invoice, Payment, Refund
from billing.services.payments import payment_record
from core.admin_once import FIELD
from core.models import FormSubmission
from core.roles import Role
from tests.conftest import verified_client

D = Decimal
ADD = "/admin/billing/payment/add/"


def payment_form(customer: Customer, invoice: Invoice, amount: str, token: str) -> dict[str, str]:
    return {
        "customer": str(customer.pk),
        "amount": amount,
        "currency": "USD",
        "method": "wire_transfer",
        "received_date": timezone.localdate().isoformat(),
        "reference": "WIRE-77",
        "alloc-TOTAL_FORMS": "1",
        "alloc-INITIAL_FORMS": "1",
        "alloc-MIN_NUM_FORMS": "0",
        "alloc-MAX_NUM_FORMS": "1000",
        "alloc-0-invoice": str(invoice.pk),
        "alloc-0-amount": amount,
        "_save": "1",
        FIELD: token,
    }


@pytest.fixture
def clerk_client(make_user: Callable[..., User]) -> Any:
    return verified_client(make_user(Role.AR_CLERK))


@pytest.fixture
def open_invoice(make_invoice: Callable[..., Invoice]) -> Invoice:
    return make_invoice("400.00", due_date=timezone.localdate() + timedelta(days=10))


@pytest.mark.django_db
def test_the_payment_form_sent_twice_records_one_payment(
    clerk_client, customer, open_invoice
) -> None:
    # given the form as the page renders it, with its one-time token
    page = clerk_client.get(f"{ADD}?invoice={open_invoice.pk}")
    token = page.context["once"]
    data = payment_form(customer, open_invoice, "150.00", token)

    # when it is sent twice
    first = clerk_client.post(ADD, data)
    second = clerk_client.post(ADD, data, follow=True)

    # then one payment, and the second sending says so
    assert first.status_code == 302
    assert Payment.objects.count() == 1
    assert str(list(second.context["messages"])[-1]) == (
        "This form was already sent and done once; it was not done again. "
        "Check the list before doing it a second time."
    )
    open_invoice.refresh_from_db()
    assert open_invoice.amount_paid.amount == D("150.00")


@pytest.mark.django_db
def test_a_refused_sending_can_be_corrected_and_sent_again(
    clerk_client, customer, open_invoice
) -> None:
    # given a sending the service refuses (more applied than the invoice owes)
    token = clerk_client.get(ADD).context["once"]
    refused = clerk_client.post(ADD, payment_form(customer, open_invoice, "500.00", token))
    assert refused.status_code == 200
    assert Payment.objects.count() == 0

    # when the clerk corrects the amount and sends the same form again
    accepted = clerk_client.post(ADD, payment_form(customer, open_invoice, "400.00", token))

    # then it is recorded: the refused sending did not use the token up
    assert accepted.status_code == 302
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_the_refund_page_sent_twice_refunds_once(
    clerk_client, make_user: Callable[..., User], customer, open_invoice
) -> None:
    # given a wire payment of the invoice and the refund page
    payment = payment_record(
        actor=make_user(Role.AR_CLERK),
        customer_id=customer.pk,
        amount=D("400.00"),
        currency="USD",
        method="wire_transfer",
    )
    client = verified_client(make_user(Role.FINANCE_ADMIN))
    url = reverse("admin:billing_invoice_refund", args=[open_invoice.pk])
    token = client.get(url).context["once"]
    data = {
        "payment": str(payment.pk),
        "amount": "50.00",
        "reason": "Goodwill",
        "confirm": "1",
        FIELD: token,
    }

    # when the page's button is sent twice
    client.post(url, data)
    client.post(url, data)

    # then one refund
    assert Refund.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_sendings_of_one_form_record_one_payment(
    make_user: Callable[..., User], make_invoice: Callable[..., Invoice], customer
) -> None:
    # given one rendering of the form, sent from two connections at once
    invoice = make_invoice("400.00")
    clerk = make_user(Role.AR_CLERK)
    clients = [verified_client(clerk), verified_client(clerk)]
    token = clients[0].get(ADD).context["once"]
    data = payment_form(customer, invoice, "100.00", token)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def send(client: Any) -> None:
        try:
            start.wait()
            statuses.append(client.post(ADD, data).status_code)
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then one payment, one token, both answered with a redirect (done / already done)
    assert Payment.objects.count() == 1
    assert FormSubmission.objects.filter(token=token).count() == 1
    assert sorted(statuses) == [302, 302]
