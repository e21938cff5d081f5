"""B1: every write operation of the API, fuzzed from its OpenAPI schema, never answers 5xx.

schemathesis loads the schema from /api/schema/ through the WSGI application (in-process, on
the test's PostgreSQL transaction) and sends each case there. Bodies come from two sources:
schemathesis' own positive and negative cases, and bodies built here from the same request
schema where each field is either plausible (so the request reaches the services) or hostile:
15-25 digit amounts, "1e3", "NaN", negatives, 0.0001, JSON numbers where strings go, dates of
year 1 and 9999, 100,000-character and unicode strings, nulls, lists where objects go. Path
parameters point at seeded objects (customer, draft and open invoice, vendor, purchase
orders, bill, journal entry) most of the time, so the fuzzer reaches the services, not 404s.

Each case runs in a savepoint rolled back afterwards: cases do not change each other's data.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET, NotSet
from schemathesis.generation import GenerationMode

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.ledger.models import Account
from core.ledger.services import LineSpec, journal_post
from core.roles import Role
from core.wsgi import application
from payables.services.bills import BillLineInput, bill_create
from payables.services.orders import LineInput as OrderLineInput
from payables.services.orders import (
    purchase_order_approve,
    purchase_order_create,
    purchase_order_place,
    purchase_order_submit,
)
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from tests.conftest import verified_client

# Cases per operation (both callers drawn among them): 82 operations x 16 cases, about a minute.
EXAMPLES_PER_OPERATION = 16

WRITE_METHODS = {"POST", "PUT", "PATCH"}

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
OPERATIONS = sorted(
    (
        op
        for op in (result.ok() for result in SCHEMA.get_all_operations())
        if op.method.upper() in WRITE_METHODS and op.path.startswith("/api/")
    ),
    key=lambda op: (op.path, op.method),
)

# (method, path) -> why it still answers 5xx. Each is strict: fixing the cause makes it fail,
# and then its line goes.
KNOWN_5XX: dict[tuple[str, str], str] = {}


# -- values ---------------------------------------------------------------------------------------

HUGE_AMOUNTS = [
    "999999999999999",  # 15 digits
    "1" + "0" * 19,  # 20 digits
    "9" * 25,  # 25 digits
    "999999999999.9999",
    "-999999999999999",
    "1e3",
    "NaN",
    "Infinity",
    "-1",
    "-0.0001",
    "0.0001",
    "0.001",
    "0",
    "00000000000000000001",
    " 12.50 ",
    "",
]
WRONG_NUMBERS = [1e3, 10**25, -1, 0.0001, 1e308, -0.0, True]
EXTREME_DATES = ["0001-01-01", "9999-12-31", "2026-02-30", "10000-01-01", "0000-00-00", ""]
EXTREME_DATETIMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00"]
LONG_STRINGS = [
    "x" * 100_000,
    "€" * 20_000,
    "a\x00b",
    "\ud800",
    "\U0001d518\U0001d52b \ufdfd \U0001f9fe \u202e",
    "' OR 1=1 --",
    " ",
]
HUGE_INTEGERS = [0, -1, 2**31, 2**63, -(2**63) - 1, 10**25, 1.5, "1"]
ANYTHING_WRONG = [None, [], {}, [[["deep"]]], {"a": {"b": None}}, 1, 1e3, "text", True, -1]


def _unicode_text() -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=40)


def hostile(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value that does not belong in ``node``, or sits at the edge of what it allows."""
    kind = node.get("type")
    fmt = node.get("format")
    wrong = st.sampled_from(ANYTHING_WRONG)
    if kind == "string" and fmt == "decimal":
        return st.one_of(st.sampled_from(HUGE_AMOUNTS), st.sampled_from(WRONG_NUMBERS), wrong)
    if kind == "number":
        return st.one_of(st.sampled_from(HUGE_AMOUNTS), st.sampled_from(WRONG_NUMBERS), wrong)
    if kind == "string" and fmt == "date":
        return st.one_of(st.sampled_from(EXTREME_DATES), st.sampled_from(WRONG_NUMBERS), wrong)
    if kind == "string" and fmt == "date-time":
        return st.one_of(st.sampled_from(EXTREME_DATETIMES + EXTREME_DATES), wrong)
    if kind == "integer":
        return st.one_of(st.sampled_from(HUGE_INTEGERS), wrong)
    if kind == "array":
        item = node.get("items", {})
        return st.one_of(
            st.lists(hostile(item), min_size=1, max_size=3),
            st.just([{}] * 1001),
            wrong,
        )
    if kind == "object":
        return st.one_of(st.just([]), st.just("object"), wrong)
    return st.one_of(st.sampled_from(LONG_STRINGS), _unicode_text(), wrong)


# -- the seeded world -------------------------------------------------------------------------------


def seed_world(make_user: Callable[..., User]) -> dict[str, list[int]]:
    """Real objects for path parameters and id fields: ``{"invoice_id": [draft, open], ...}``."""
    clerk = make_user(Role.AR_CLERK)
    ap_clerk = make_user(Role.AP_CLERK)
    controller = make_user(Role.CONTROLLER)
    customer = customer_create(
        actor=clerk, name="Fuzz Corp", email="ap@fuzz.example", currency="USD"
    )
    line = LineInput(
        description="Item", quantity=Decimal(1), unit_price=Decimal("100.00"), tax_rate=Decimal(0)
    )
    draft = invoice_create(actor=clerk, customer_id=customer.pk, lines=[line], issue=False)
    issued = invoice_create(actor=clerk, customer_id=customer.pk, lines=[line], issue=True)
    vendor = vendor_create(
        actor=ap_clerk,
        name="Fuzz Supplies",
        email="fuzz@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Fuzz Supplies", routing_number="011000015", account_number="123456789"
        ),
    )
    vendor = vendor_activate(vendor_id=vendor.pk, actor=controller)
    order_line = OrderLineInput(description="Paper", quantity=Decimal(1), unit_price=Decimal(50))
    draft_order = purchase_order_create(
        actor=ap_clerk, vendor_id=vendor.pk, currency="USD", lines=[order_line]
    )
    placed_order = purchase_order_create(
        actor=ap_clerk, vendor_id=vendor.pk, currency="USD", lines=[order_line]
    )
    if purchase_order_submit(order_id=placed_order.pk, actor=ap_clerk).status == "pending_approval":
        purchase_order_approve(order_id=placed_order.pk, actor=controller)
    purchase_order_place(order_id=placed_order.pk, actor=ap_clerk, send=False)
    bill = bill_create(
        actor=ap_clerk,
        vendor_id=vendor.pk,
        number="FUZZ-1",
        currency="USD",
        bill_date=timezone.localdate(),
        lines=[BillLineInput(description="Paper", quantity=Decimal(1), unit_price=Decimal(75))],
    )
    cash = Account.objects.filter(role="bank").first() or Account.objects.first()
    expense = Account.objects.exclude(pk=getattr(cash, "pk", None)).filter(role=None).first()
    ids: dict[str, list[int]] = {
        "customer_id": [customer.pk],
        "invoice_id": [draft.pk, issued.pk],
        "vendor_id": [vendor.pk],
        "order_id": [draft_order.pk, placed_order.pk],
        "purchase_order_id": [placed_order.pk],
        "bill_id": [bill.pk],
    }
    if cash is not None and expense is not None:
        entry = journal_post(
            lines=[
                LineSpec(account=expense, debit=Decimal(10), currency="USD"),
                LineSpec(account=cash, credit=Decimal(10), currency="USD"),
            ],
            entry_date=timezone.localdate(),
            description="fuzz",
            actor=controller,
        )
        ids["entry_id"] = [entry.pk]
    return ids


# -- requests -------------------------------------------------------------------------------------


def resolve(node: Any) -> Any:
    """``node`` with its ``$ref`` (and allOf of one) followed into components/schemas."""
    while isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = SCHEMA.raw_schema["components"]["schemas"][name]
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            break
    return node


def plausible(node: Any, name: str, ids: dict[str, list[int]]) -> st.SearchStrategy[Any]:
    """A value ``node`` accepts, pointing at seeded objects where the field names one."""
    node = resolve(node)
    if "oneOf" in node or "anyOf" in node:
        return plausible((node.get("oneOf") or node["anyOf"])[0], name, ids)
    if "enum" in node:
        return st.sampled_from([v for v in node["enum"] if v is not None] or [None])
    kind = node.get("type")
    fmt = node.get("format")
    today = timezone.localdate()
    if kind == "string" and fmt == "decimal":
        return st.sampled_from(["10.00", "1", "0.50", "1000"])
    if kind == "string" and fmt == "date":
        return st.sampled_from([today, today - timedelta(days=1)]).map(date.isoformat)
    if kind == "string" and fmt == "date-time":
        return st.just(timezone.now().isoformat())
    if kind == "string" and name.endswith("currency"):
        return st.sampled_from(["USD", "EUR", "JPY"])
    if kind == "integer":
        seeded = ids.get(name) or ids.get(f"{name}_id")
        if seeded:
            return st.sampled_from(seeded)
        return st.sampled_from([1, 2, 30])
    if kind == "number":
        return st.just(1)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(plausible(node.get("items", {}), name, ids), min_size=1, max_size=2)
    if kind == "object" or "properties" in node:
        return body_for(node, ids, hostility=0.0)
    return st.sampled_from(["fuzz", "Fuzz 1"])


@st.composite
def _object(draw: st.DrawFn, node: dict[str, Any], ids: dict[str, list[int]], hostility: float):
    required = set(node.get("required", []))
    body: dict[str, Any] = {}
    for name, prop in node.get("properties", {}).items():
        prop = resolve(prop)
        if prop.get("readOnly"):
            continue
        roll = draw(st.integers(0, 99)) / 100
        if roll < hostility:
            body[name] = draw(hostile(prop))
        elif name in required or roll < 0.8:
            body[name] = draw(plausible(prop, name, ids))
    return body


def body_for(node: Any, ids: dict[str, list[int]], *, hostility: float) -> st.SearchStrategy[Any]:
    node = resolve(node)
    if node.get("type") == "array":
        return st.lists(body_for(node.get("items", {}), ids, hostility=hostility), max_size=2)
    if node.get("type") == "object" or "properties" in node:
        return _object(node, ids, hostility)
    return hostile(node) if hostility else plausible(node, "", ids)


def json_schema_of(operation: Any) -> dict[str, Any] | None:
    body = operation.definition.raw.get("requestBody", {}).get("content", {})
    for media_type in ("application/json", "multipart/form-data"):
        if media_type in body:
            return body[media_type].get("schema", {})
    return None


def case_strategy(operation: Any, ids: dict[str, list[int]]) -> st.SearchStrategy[Any]:
    path_params = {}
    for parameter in operation.path_parameters:
        seeded = ids.get(parameter.name, [])
        path_params[parameter.name] = st.sampled_from(
            [*seeded, *seeded, *seeded, 0, 2**31, 2**63 - 1, 987654]
        )
    paths = st.fixed_dictionaries(path_params)
    request_schema = json_schema_of(operation)

    @st.composite
    def built(draw: st.DrawFn) -> Any:
        body = NOT_SET
        if request_schema is not None:
            hostility = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
            body = draw(body_for(request_schema, ids, hostility=hostility))
        return operation.Case(
            path_parameters=draw(paths),
            body=body,
            media_type="application/json" if request_schema is not None else None,
        )

    @st.composite
    def generated(draw: st.DrawFn) -> Any:
        mode = draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
        return draw(operation.as_strategy(generation_mode=mode, path_parameters=draw(paths)))

    return st.one_of(built(), built(), generated())


class Credentials:
    """Headers and cookies of one caller."""

    def __init__(self, name: str, headers: dict[str, str], cookies: dict[str, str]) -> None:
        self.name = name
        self.headers = headers
        self.cookies = cookies


@pytest.fixture
def callers(make_user, integration_client) -> list[Credentials]:
    """A finance admin's session verified by a second factor, and the integration token."""
    session = verified_client(make_user(Role.FINANCE_ADMIN))
    csrf = "f" * 32
    token = integration_client._credentials["HTTP_AUTHORIZATION"]
    return [
        Credentials(
            "finance_admin",
            {"X-CSRFToken": csrf},
            {
                settings.SESSION_COOKIE_NAME: session.cookies[settings.SESSION_COOKIE_NAME].value,
                settings.CSRF_COOKIE_NAME: csrf,
            },
        ),
        Credentials("integration", {"Authorization": token}, {}),
    ]


@pytest.fixture
def in_process_requests() -> Iterator[list[str]]:
    """Requests served on the test's connection and transaction (as Django's test client
    does), with each server error's traceback collected."""
    errors: list[str] = []

    def record(sender: Any, request: Any = None, **kwargs: Any) -> None:
        errors.append(traceback.format_exc())

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(record)
    try:
        yield errors
    finally:
        got_request_exception.disconnect(record)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def server_error(status: int, body: bytes) -> bool:
    """A 5xx, except the 503 a payment processor's operation answers by design when that
    processor has no credentials (none are configured in tests: no call leaves the machine)."""
    if status < 500:
        return False
    if status == 503:
        try:
            return json.loads(body).get("code") != "processor_not_configured"
        except (ValueError, AttributeError):
            return True
    return True


def _params() -> Iterator[Any]:
    for operation in OPERATIONS:
        label = f"{operation.method.upper()} {operation.path}"
        reason = KNOWN_5XX.get((operation.method.upper(), operation.path))
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        yield pytest.param(operation, id=label, marks=marks)


@pytest.mark.parametrize("operation", list(_params()))
def test_B1_write_operations_never_answer_5xx(
    operation: Any,
    callers: list[Credentials],
    make_user: Callable[..., User],
    in_process_requests: list[str],
) -> None:
    # given
    ids = seed_world(make_user)
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    @seed(20261206)
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy(operation, ids), caller=st.sampled_from(callers))
    def fuzz(case: Any, caller: Credentials) -> None:
        # when
        savepoint = transaction.savepoint()
        try:
            in_process_requests.clear()
            response = case.call(headers=caller.headers, cookies=caller.cookies)
        finally:
            transaction.savepoint_rollback(savepoint)
        # then
        statuses[response.status_code] += 1
        if server_error(response.status_code, response.content):
            body = None if isinstance(case.body, NotSet) else case.body
            failures.append(
                f"{response.status_code} {case.method} {case.formatted_path} as {caller.name} "
                f"body={json.dumps(body, default=str)[:400]}\n"
                + "".join(in_process_requests)[-3000:]
            )

    fuzz()

    assert sum(statuses.values()) == EXAMPLES_PER_OPERATION
    assert not failures, "\n\n".join(failures[:3])


NESTED = {
    "list": "[" * 10_000 + "]" * 10_000,
    "object": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "list_under_the_parser_limit": "[" * 900 + '"4242 4242 4242 4242"' + "]" * 900,
}


@pytest.mark.parametrize("shape", list(NESTED))
def test_B1_deeply_nested_json_is_a_4xx_on_every_write_operation(
    shape: str, finance_admin: User, in_process_requests: list[str]
) -> None:
    # given
    client = verified_client(finance_admin)
    body = NESTED[shape]
    answers: dict[str, int] = {}
    # when
    for operation in OPERATIONS:
        path = operation.path.format(**{p.name: 1 for p in operation.path_parameters})
        response = client.generic(
            operation.method.upper(), path, body, content_type="application/json"
        )
        status = response.status_code
        if server_error(status, response.content) or status < 400:
            answers[f"{operation.method.upper()} {operation.path}"] = status
    # then
    assert answers == {}
