"""History is append-only in PostgreSQL (SOX): every django-simple-history table refuses
UPDATE and DELETE, whoever writes; a user's deletion (history_user SET NULL), a GDPR erasure
and a key rotation pass, each only for what it changes; the admin never reverts a version."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import HistoricalChanges

from billing.models import Customer
from billing.services.customers import customer_create, customer_update
from billing.services.subscriptions import product_create
from core.fx import fx_rate_create
from core.history_guard import (
    TRIGGER_NAME,
    history_erasure_allow,
    history_guards_install,
    history_guards_on_post_migrate,
    history_reencrypt_allow,
    history_tables,
)
from core.models import FxRate
from payables.models import Vendor
from payables.services.vendors import vendor_create
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


def _triggered_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s",
            [TRIGGER_NAME],
        )
        return {name for (name,) in cursor.fetchall()}


def _refused(sql: str, params: list[object]) -> str:
    """Run ``sql`` in a savepoint; the database's refusal message (it must refuse)."""
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as c:
        c.execute(sql, params)
    return str(refused.value)


def _history_table(model: type) -> str:
    return model.history.model._meta.db_table  # type: ignore[attr-defined]


@pytest.fixture
def records(make_user):
    """A customer, a vendor and an FX rate, each with history rows written by a person."""
    clerk = make_user("ar_clerk")
    customer = customer_create(
        actor=clerk, name="Ada Lovelace", email="ada@example.com", currency="USD"
    )
    customer_update(actor=clerk, customer_id=customer.pk, city="London")
    vendor = vendor_create(
        actor=make_user("ap_clerk"), name="Babbage Ltd", email="cb@example.com", currency="USD"
    )
    rate, _ = fx_rate_create(
        actor=make_user("controller"),
        base_currency="EUR",
        quote_currency="USD",
        rate=Decimal("1.1"),
        rate_date=date(2026, 11, 2),
    )
    return {Customer: customer.pk, Vendor: vendor.pk, FxRate: rate.pk}


def test_every_history_table_of_every_app_has_the_trigger() -> None:
    # given every history model Django knows
    from django.apps import apps

    historical = {
        m._meta.db_table
        for m in apps.get_models()
        if issubclass(m, HistoricalChanges) and not m._meta.proxy
    }
    # then simple-history's registry names them all, and each has the trigger
    assert set(history_tables()) == historical
    assert len(historical) > 40
    assert historical <= _triggered_tables()


@pytest.mark.parametrize("model", [Customer, Vendor, FxRate])
def test_raw_sql_update_and_delete_of_history_rows_are_refused(records, model) -> None:
    # given a history row of the record
    table = _history_table(model)
    object_id = records[model]
    before = list(model.history.filter(id=object_id).values())  # type: ignore[attr-defined]
    assert before
    # when a raw UPDATE or DELETE touches it
    update = _refused(
        f"UPDATE {table} SET history_change_reason = 'edited' WHERE id = %s", [object_id]
    )
    delete = _refused(f"DELETE FROM {table} WHERE id = %s", [object_id])
    # then the trigger refuses both, and nothing changed
    assert f"history: {table} rows are append-only (SOX); UPDATE refused" in update
    assert f"history: {table} rows are append-only (SOX); DELETE refused" in delete
    assert list(model.history.filter(id=object_id).values()) == before  # type: ignore[attr-defined]


def test_the_orm_cannot_change_or_delete_history_either(records) -> None:
    history = Customer.history.filter(id=records[Customer])  # type: ignore[attr-defined]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        history.update(name="Someone else")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        history.first().delete()
    assert set(history.values_list("name", flat=True)) == {"Ada Lovelace"}


def _authored_customer(author: User, name: str) -> Customer:
    """A customer whose history rows name ``author`` (as a change made in the workspace)."""
    customer = Customer(name=name, email="g@example.com", currency="USD")
    customer._history_user = author  # type: ignore[attr-defined]
    customer.save()
    customer.city = "Arlington"
    customer.save()
    return customer


def test_deleting_a_user_still_sets_their_history_rows_to_null(make_user) -> None:
    # given a user who wrote history rows
    author = make_user("ar_clerk")
    customer = _authored_customer(author, "Grace")
    rows = Customer.history.filter(id=customer.pk)  # type: ignore[attr-defined]
    assert list(rows.values_list("history_user_id", flat=True)) == [author.pk, author.pk]
    # when the user is deleted (Django sets history_user to NULL: on_delete=SET_NULL)
    author.delete()
    # then it worked, and the rows remain as they were, without their author
    assert not User.objects.filter(pk=author.pk).exists()
    assert list(rows.values_list("history_user_id", "name")) == [(None, "Grace"), (None, "Grace")]


def test_set_null_passes_only_when_nothing_else_changes(make_user) -> None:
    # given a history row with an author
    author = make_user("ar_clerk")
    customer = _authored_customer(author, "Ada Lovelace")
    table = _history_table(Customer)
    # when history_user is set to NULL together with another column, it is refused
    assert "append-only" in _refused(
        f"UPDATE {table} SET history_user_id = NULL, name = 'x' WHERE id = %s",
        [customer.pk],
    )
    # and so is naming another author
    other = make_user("ar_clerk")
    assert "append-only" in _refused(
        f"UPDATE {table} SET history_user_id = %s WHERE id = %s",
        [other.pk, customer.pk],
    )
    assert set(
        Customer.history.filter(id=customer.pk).values_list("history_user_id", flat=True)  # type: ignore[attr-defined]
    ) == {author.pk}


def test_a_new_history_table_gets_the_trigger_and_installing_again_changes_nothing() -> None:
    # given a history table that appeared without the trigger (an app added later), with a row
    product_create(actor=None, name="Gadget")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE test_historicalgadget (LIKE billing_historicalproduct INCLUDING ALL)"
        )
        cursor.execute("INSERT INTO test_historicalgadget SELECT * FROM billing_historicalproduct")
        cursor.execute(f"DROP TRIGGER {TRIGGER_NAME} ON billing_historicalcustomer")
    assert "test_historicalgadget" not in _triggered_tables()
    assert "billing_historicalcustomer" not in _triggered_tables()
    # when the post_migrate receiver runs (after migrate and every test flush)
    history_guards_on_post_migrate(using="default")
    installed = history_guards_install(
        connection, tables=[*history_tables(), "test_historicalgadget"]
    )
    # then both have it, and a second install finds nothing to do
    assert "billing_historicalcustomer" in _triggered_tables()
    assert installed == ["test_historicalgadget"]
    assert history_guards_install(connection, tables=["test_historicalgadget"]) == []
    assert "append-only" in _refused("DELETE FROM test_historicalgadget", [])


def test_the_erasure_flag_lets_personal_fields_change_and_nothing_else(records) -> None:
    table = _history_table(Customer)
    object_id = records[Customer]
    # given an erasure's transaction
    with transaction.atomic():
        history_erasure_allow()
        # then personal fields may be pseudonymised
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET name = 'Erased', email = 'e@erased.invalid' WHERE id = %s",
                [object_id],
            )
        # but never when, what kind, which record or by whom, and nothing is deleted
        assert "append-only" in _refused(
            f"UPDATE {table} SET history_date = now() WHERE id = %s",
            [object_id],
        )
        assert "append-only" in _refused(
            f"UPDATE {table} SET history_type = '-' WHERE id = %s",
            [object_id],
        )
        assert "append-only" in _refused(f"DELETE FROM {table} WHERE id = %s", [object_id])
    assert set(Customer.history.filter(id=object_id).values_list("name", flat=True)) == {"Erased"}  # type: ignore[attr-defined]


def test_the_reencrypt_flag_lets_only_encrypted_values_change(records) -> None:
    table = _history_table(Customer)
    object_id = records[Customer]
    history_id = Customer.history.filter(id=object_id).first().history_id  # type: ignore[attr-defined]
    with transaction.atomic():
        history_reencrypt_allow()
        # a plain value is not an encrypted one: refused
        assert "append-only" in _refused(
            f"UPDATE {table} SET name = 'fernet:x' WHERE history_id = %s",
            [history_id],
        )
    # an encrypted value rewritten as another encrypted value passes (key rotation)
    with transaction.atomic():
        history_erasure_allow()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET tax_id = 'fernet:old' WHERE history_id = %s",
                [history_id],
            )
    with transaction.atomic():
        history_reencrypt_allow()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET tax_id = 'fernet:new' WHERE history_id = %s",
                [history_id],
            )
    assert Customer.history.get(history_id=history_id).tax_id == "fernet:new"  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_flags_end_with_their_transaction_and_truncate_still_flushes(make_user) -> None:
    # given history rows written in a transactional test (its teardown flushes with TRUNCATE)
    clerk = make_user("ar_clerk")
    customer = customer_create(
        actor=clerk, name="Flushed Ltd", email="f@example.com", currency="USD"
    )
    table = _history_table(Customer)
    # a flag is transaction-local: asked for outside a transaction, it is refused
    with pytest.raises(RuntimeError, match="transaction-local"):
        history_erasure_allow()
    # inside one it lets the erasure through, and ends with it
    with transaction.atomic():
        history_erasure_allow()
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET name = 'Erased' WHERE id = %s", [customer.pk])
    assert "append-only" in _refused(
        f"UPDATE {table} SET name = 'Again' WHERE id = %s", [customer.pk]
    )
    assert Customer.history.filter(id=customer.pk).get().name == "Erased"  # type: ignore[attr-defined]
    # then TRUNCATE is not blocked (the flush after this test would fail otherwise)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = %s", [TRIGGER_NAME])
        assert cursor.fetchone()[0] > 40


def test_no_admin_reverts_or_edits_a_past_version(rf, make_user) -> None:
    # given every admin that shows history
    request = rf.get("/")
    request.user = make_user("finance_admin")
    history_admins = [a for a in admin.site._registry.values() if isinstance(a, SimpleHistoryAdmin)]
    assert len(history_admins) > 20
    # then none offers a revert or lets a version be changed
    for model_admin in history_admins:
        assert model_admin.revert_disabled(request), type(model_admin).__name__
        assert not model_admin.has_change_history_permission(request), type(model_admin).__name__


def test_posting_a_past_version_is_refused_even_for_a_superuser(make_user) -> None:
    # given a customer with two versions and a superuser in the workspace
    clerk = make_user("ar_clerk")
    customer = customer_create(actor=clerk, name="Old Name", email="o@example.com", currency="USD")
    customer_update(actor=clerk, customer_id=customer.pk, name="New Name")
    first = Customer.history.filter(id=customer.pk).order_by("history_date").first()  # type: ignore[attr-defined]
    superuser = make_user("finance_admin")
    superuser.is_superuser = True
    superuser.save()
    client = verified_client(superuser)
    url = reverse("admin:billing_customer_simple_history", args=[customer.pk, first.history_id])
    # when the first version's page is shown, then posted (a revert)
    shown = client.get(url)
    posted = client.post(url, {"name": "Old Name", "email": "o@example.com", "currency": "USD"})
    # then it is shown read-only, and the post is refused
    assert shown.status_code == 200
    assert b"Revert" not in shown.content
    assert posted.status_code == 403
    assert Customer.objects.get(pk=customer.pk).name == "New Name"
