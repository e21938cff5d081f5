"""B1, issue 15 hole 8: schemathesis' stateful phase, so that the two checks that compare a
request with an earlier one of the same scenario run: ``ensure_resource_availability`` (a
created resource is found at once) and ``use_after_free`` (a deleted one is not found
afterwards), beside the checks of what the server answers.

Links between operations are the ones schemathesis infers from the schema (an id a response
returns, a path parameter of the same name). The operations are those of the resources a
client creates, reads, changes and removes: webhook endpoints, customers and their payment
methods, vendors. Scenarios run as a finance admin's verified session inside the test's
transaction. In this bounded run (40 scenarios of up to 10 steps) customers and vendors are
created and read back; a successful DELETE needs a three-step chain to the right customer's
saved method and is rarely drawn, so ``use_after_free`` seldom has anything to compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from billing.services.customers import customer_create
from billing.services.payment_methods import payment_method_add
from core.events.services import endpoint_create
from core.roles import Role
from core.wsgi import application
from tests.core.test_api_fuzz import in_process_requests as in_process_requests  # a fixture
from tests.core.test_api_schema_conformance import ALL_CHECKS, Caller, business_rule, by_design
from tests.core.test_api_schema_conformance import callers as callers  # a fixture

# The checks of what the server answers, and the two that compare steps. Refusing invalid
# input, accepting valid input and enforcing credentials are the conformance test's (each
# operation, positive and negative cases, one request at a time): here bodies carry values
# copied from earlier answers through the inferred links, which those checks misread.
REQUEST_CHECKS = {"negative_data_rejection", "positive_data_acceptance", "ignored_auth"}
CHECKS_HERE = [check for check in ALL_CHECKS if check.__name__ not in REQUEST_CHECKS]
STATEFUL_CHECKS = {"use_after_free", "ensure_resource_availability"}

RESOURCES = r"^/api/(webhook-endpoints|billing/customers|payables/vendors)(/|$)"


@pytest.mark.django_db(transaction=False)
def test_B1_stateful_scenarios_conform_and_find_what_they_created(
    make_user: Callable[..., User], callers: list[Caller], in_process_requests: list[str]
) -> None:
    # given
    caller = next(c for c in callers if c.name == "finance_admin")
    admin = make_user(Role.FINANCE_ADMIN, username="stateful-seed")
    # Resources a scenario can find through a list and then delete (webhook endpoints, saved
    # bank accounts): generated bodies rarely make one (a public https URL, a valid routing
    # number).
    for n in range(3):
        endpoint_create(actor=admin, url=f"https://hooks{n}.example/in")
    customer = customer_create(
        actor=admin, name="Stateful Ltd", email="ap@stateful.example", currency="USD"
    )
    for n in range(3):
        payment_method_add(
            actor=admin,
            customer_id=customer.pk,
            type="ach",
            bank_account_holder="Stateful Ltd",
            bank_routing_number="110000000",
            bank_account_number=f"00012345678{n}",
        )
    seen: list[tuple[str, str, int]] = []
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(
        path_regex=RESOURCES
    )
    # Positive data only: refusing invalid input is the conformance test's (negative cases
    # there); here the scenarios are meant to create, read and delete.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])
    machine = schema.as_state_machine()

    class Scenario(machine):  # type: ignore[misc,valid-type]
        def before_call(self, case: Any) -> None:
            caller.apply(case)

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            seen.append((case.method, case.path, response.status_code))

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            """The checks of CHECKS_HERE, with the scenario's recorder for the stateful ones;
            what the conformance test tolerates, with its reasons, is tolerated here."""
            try:
                case.validate_response(
                    response, checks=CHECKS_HERE, headers=caller.explicit(), recorder=self.recorder
                )
            except FailureGroup as group:
                left = [
                    failure
                    for failure in group.exceptions
                    if not (by_design(response, failure) or business_rule(case, response, failure))
                ]
                if left:
                    raise FailureGroup(left, group.message) from None

    # when / then: every check of every step, stateful ones included
    run_state_machine_as_test(
        Scenario,
        settings=hypothesis_settings(
            max_examples=40,
            stateful_step_count=10,
            database=None,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        ),
    )
    # and the scenarios did what ensure_resource_availability looks at: made resources and
    # read them back by id
    made = {path for method, path, status in seen if method == "POST" and status == 201}
    read = {path for method, path, status in seen if method == "GET" and status == 200}
    assert made, sorted(set(seen))
    assert any(path.endswith("_id}") for path in read), sorted(set(seen))
