"""Shared fixtures: users in each role, signed in through a verified second factor, API clients."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from core.otp import AuthenticatorDevice
from core.roles import STAFF_ROLES, Role

SHARED_DATA = Path(
    os.environ.get("BACKOFFICE_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def pytest_configure(config: pytest.Config) -> None:
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "The tests run on PostgreSQL: use `make test`, or set DATABASE_URL=postgres://... "
            f"(the current database engine is {engine})."
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _transactional_tests_restore_the_seed(items)
    if SHARED_DATA.is_dir():
        return
    corpus_items = [item for item in items if "corpus" in item.keywords]
    if corpus_items and os.environ.get("BACKOFFICE_REQUIRE_CORPUS") == "1":
        raise pytest.UsageError(f"BACKOFFICE_REQUIRE_CORPUS=1 but {SHARED_DATA} is missing")
    for item in corpus_items:
        item.add_marker(pytest.mark.skip(reason=f"sample files not found at {SHARED_DATA}"))


def _transactional_tests_restore_the_seed(items: list[pytest.Item]) -> None:
    """A transactional test must also ask for ``serialized_rollback=True``. Without it, its
    flush at the end runs post_migrate again (content types, permissions, the roles' groups),
    and the next transactional test on that worker fails to restore the seeded rows over
    them (duplicate keys): one such test broke every later one in CI."""
    bare = []
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is None:
            continue
        transactional = marker.kwargs.get("transaction", bool(marker.args[:1] and marker.args[0]))
        if transactional and not marker.kwargs.get("serialized_rollback"):
            bare.append(item.nodeid)
    if bare:
        raise pytest.UsageError(
            "Transactional tests without serialized_rollback=True (see tests/conftest.py): "
            + ", ".join(bare[:5])
        )


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> None:
    """Files a test stores (invoice PDFs) go to its own temporary folder. The API's rate
    limits and the sign-in limit per address are lifted: the suite's clients make thousands of
    calls a minute with one token and from one address (tests/core/test_throttling.py sets
    real ones)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.API_THROTTLE_RATES = {}
    settings.API_AUTH_FAILURES_PER_IP = 1_000_000
    settings.LOGIN_FAILURES_PER_IP = 1_000_000


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(role: str | None = None, *, username: str | None = None, mfa: bool = True) -> User:
        name = username or f"{role or 'user'}-{next(counter)}"
        user = User.objects.create_user(
            username=name,
            email=f"{name}@example.com",
            password="correct horse battery staple",
            is_staff=role in STAFF_ROLES,
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        if mfa:
            AuthenticatorDevice.objects.create(user=user, name="phone", confirmed=True)
        return user

    return make


def verified_client(user: User) -> APIClient:
    """A session client whose login passed the second factor (as the admin login does)."""
    client = APIClient()
    client.force_login(user)
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
    assert device is not None, "a verified session needs a confirmed device"
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def client_for(make_user: Callable[..., User]) -> Callable[[str], APIClient]:
    """``client_for("controller")``: a verified session of a new user in that role."""

    def make(role: str) -> APIClient:
        return verified_client(make_user(role))

    return make


@pytest.fixture
def finance_admin(make_user: Callable[..., User]) -> User:
    return make_user(Role.FINANCE_ADMIN)


def token_for(user: User, scopes: tuple[str, ...] = ("*:write",)) -> str:
    """A new API token of ``user`` with ``scopes`` (every area by default), as
    ``manage.py create_api_token`` makes one."""
    from knox.models import AuthToken

    from core.models import ApiTokenScope

    instance, token = AuthToken.objects.create(user=user, expiry=None)
    ApiTokenScope.objects.create(token=instance, scopes=list(scopes))
    return token


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def integration_client(db: None) -> APIClient:
    user = User.objects.create_user(username="erp-integration")
    user.groups.add(Group.objects.get(name=Role.INTEGRATION))
    return token_client(token_for(user))
