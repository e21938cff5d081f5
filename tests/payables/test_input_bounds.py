"""Issue 11 in payables: orders and bills with extreme figures or dates are a 400 naming the
field, nothing written; lines go in in bulk, with their history."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payables.models import Bill, BillLine, PurchaseOrder, PurchaseOrderLine

pytestmark = pytest.mark.django_db
API = "/api/payables"


def _line(quantity: str = "1", unit_price: str = "10.00") -> dict:
    return {"description": "Laptop", "quantity": quantity, "unit_price": unit_price}


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([_line("999999999999999", "999999999999999")], "lines"),
        ([_line("100000000", "100000")], "lines[0].unit_price"),
        ([_line("1", "600000000000"), _line("1", "600000000000")], "lines"),
        ([_line("1", "10.001")], "lines[0].unit_price"),
        ([_line("1", "-5.00")], "lines"),
        ([_line("1000000000", "1")], "lines"),
        ([_line() for _ in range(1001)], "lines"),
    ],
)
def test_bad_order_input_is_a_400_naming_the_field(client_for, vendor, lines, field) -> None:
    # given a vendor / when an order with extreme figures is posted
    response = client_for("ap_clerk").post(
        f"{API}/purchase-orders",
        {"vendor": vendor.pk, "currency": "USD", "lines": lines},
        format="json",
    )
    # then 400 naming the field; nothing written
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert PurchaseOrder.objects.count() == 0
    assert PurchaseOrderLine.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bill_date": "9999-12-31"}, "bill_date"),
        ({"bill_date": "0001-01-01"}, "bill_date"),
        ({"bill_date": "2026-03-10", "due_date": "2026-03-01"}, "due_date"),
        ({"lines": [_line("1", "600000000000"), _line("1", "600000000000")]}, "lines"),
    ],
)
def test_bad_bill_input_is_a_400_naming_the_field(client_for, vendor, change, field) -> None:
    # given a bill body / when one value is extreme
    body = {
        "vendor": vendor.pk,
        "number": "INV-77",
        "currency": "USD",
        "bill_date": "2026-03-01",
        "lines": [_line()],
        **change,
    }
    response = client_for("ap_clerk").post(f"{API}/bills", body, format="json")
    # then 400 naming the field; nothing written
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert Bill.objects.count() == 0
    assert BillLine.objects.count() == 0


def test_order_lines_go_in_in_bulk_with_their_history(client_for, vendor) -> None:
    # given a clerk / when an order of 5 lines and one of 500 are posted
    clerk = client_for("ap_clerk")

    def post(count: int) -> tuple[int, int]:
        lines = [_line(unit_price=f"{n}.00") for n in range(1, count + 1)]
        with CaptureQueriesContext(connection) as queries:
            response = clerk.post(
                f"{API}/purchase-orders",
                {"vendor": vendor.pk, "currency": "USD", "lines": lines},
                format="json",
            )
        assert response.status_code == 201, response.json()
        return response.json()["id"], len(queries)

    _, small = post(5)
    order_id, large = post(500)
    # then the query count does not grow with the lines
    assert large == small
    order = PurchaseOrder.objects.get(pk=order_id)
    assert order.lines.count() == 500
    assert PurchaseOrderLine.history.filter(order_id=order.pk).count() == 500
    assert str(order.total.amount) == "125250.0000"
