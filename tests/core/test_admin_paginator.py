from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.admin import CustomerAdmin, InvoiceAdmin
from billing.models import Customer
from core.admin_paginator import EstimatedCount, EstimatedCountPaginator
from core.roles import Role
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's planner's")


def make_customers(count: int, *, currency: str = "USD") -> None:
    Customer.objects.bulk_create(
        Customer(name=f"Customer {n:03d}", email=f"c{n}@example.com", currency=currency)
        for n in range(count)
    )
    # As autovacuum would: the planner's statistics know the table's size.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_customer")


def count_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


def test_a_small_table_is_counted_exactly() -> None:
    # given
    make_customers(40)

    # when
    with CaptureQueriesContext(connection) as captured:
        count = EstimatedCountPaginator(Customer.objects.all(), 25).count

    # then
    assert count == 40
    assert type(count) is int
    assert len(count_queries(captured)) == 1


def test_a_large_table_shows_the_planner_estimate_without_counting(settings) -> None:
    # given: 40 rows stand for a million when the threshold is 10
    settings.ADMIN_ESTIMATED_COUNT_THRESHOLD = 10
    make_customers(40)

    # when
    with CaptureQueriesContext(connection) as captured:
        paginator = EstimatedCountPaginator(Customer.objects.all(), 25)
        count = paginator.count

    # then
    assert isinstance(count, EstimatedCount)
    assert count == 40
    assert str(count) == "about 40"
    assert paginator.num_pages == 2
    assert count_queries(captured) == []


def test_a_filter_estimated_below_the_threshold_is_counted_exactly(settings) -> None:
    # given
    settings.ADMIN_ESTIMATED_COUNT_THRESHOLD = 10
    make_customers(40)
    make_customers(3, currency="JPY")

    # when
    count = EstimatedCountPaginator(Customer.objects.filter(currency="JPY"), 25).count

    # then
    assert count == 3
    assert type(count) is int


def test_a_filter_that_can_match_nothing_counts_zero(settings) -> None:
    # given a filter Django knows matches nothing without asking the database
    settings.ADMIN_ESTIMATED_COUNT_THRESHOLD = 10
    make_customers(40)

    # when
    count = EstimatedCountPaginator(Customer.objects.filter(pk__in=[]), 25).count

    # then
    assert count == 0


def test_an_estimate_is_worded_as_one_to_two_significant_digits() -> None:
    # then
    assert str(EstimatedCount(1_000_321)) == "about 1,000,000"
    assert str(EstimatedCount(123_456)) == "about 120,000"
    assert str(EstimatedCount(987)) == "about 990"
    assert EstimatedCount(1_000_321) // 100 == 10_003


def test_workspace_admins_use_it_without_a_second_count() -> None:
    # then
    for model_admin in (InvoiceAdmin, CustomerAdmin):
        assert model_admin.paginator is EstimatedCountPaginator
        assert model_admin.show_full_result_count is False


def test_the_change_list_footer_says_about_when_estimated(
    settings, make_user: Callable[..., User]
) -> None:
    # given
    settings.ADMIN_ESTIMATED_COUNT_THRESHOLD = 10
    make_customers(140)
    client = verified_client(make_user(Role.FINANCE_ADMIN))

    # when
    response = client.get(reverse("admin:billing_customer_changelist"))

    # then
    assert response.status_code == 200
    html = " ".join(response.content.decode().split())
    assert "about 140 customers" in html
    assert response.context["cl"].result_count == 140
    assert len(response.context["cl"].result_list) == 100


def test_the_change_list_footer_gives_the_exact_count_of_a_small_list(
    make_user: Callable[..., User],
) -> None:
    # given
    make_customers(7)
    client = verified_client(make_user(Role.FINANCE_ADMIN))

    # when
    response = client.get(reverse("admin:billing_customer_changelist"))

    # then
    html = " ".join(response.content.decode().split())
    assert "7 customers" in html
    assert "about" not in html.split("7 customers")[0][-10:]
