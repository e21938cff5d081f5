from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from payables.models import PurchaseOrder, Vendor
from payables.services.orders import LineInput, purchase_order_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create


@pytest.fixture
def ap_clerk(make_user):
    return make_user("ap_clerk")


@pytest.fixture
def make_vendor(ap_clerk, make_user) -> Callable[..., Vendor]:
    activator = make_user("controller")

    def make(name: str = "Globex Supplies", *, currency: str = "USD", active: bool = True, **kw):
        vendor = vendor_create(
            actor=ap_clerk,
            name=name,
            email=f"{name.split()[0].lower()}@vendor.example",
            currency=currency,
            bank=kw.pop(
                "bank",
                BankDetails(
                    account_holder=name, routing_number="011000015", account_number="123456789"
                ),
            ),
            **kw,
        )
        if active:
            vendor = vendor_activate(vendor_id=vendor.pk, actor=activator)
        return vendor

    return make


@pytest.fixture
def vendor(make_vendor) -> Vendor:
    return make_vendor()


@pytest.fixture
def make_order(ap_clerk, vendor) -> Callable[..., PurchaseOrder]:
    def make(*prices: str, requester=None, on: Vendor | None = None, currency: str = "USD"):
        lines = [
            LineInput(description=f"Item {n}", quantity=Decimal(1), unit_price=Decimal(p))
            for n, p in enumerate(prices or ("500.00",), start=1)
        ]
        return purchase_order_create(
            actor=requester or ap_clerk,
            vendor_id=(on or vendor).pk,
            currency=currency,
            lines=lines,
        )

    return make
