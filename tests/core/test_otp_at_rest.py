"""Second factors at rest (issue 15, hole 6): authenticator keys are encrypted with the field
encryption keys (and rotate with them), recovery codes are stored only as salted hashes, each
code signs in once, and migration 0007 moved django-otp's plain devices over and retired their
tables."""

from __future__ import annotations

import importlib
import io
from binascii import hexlify
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django_otp.oath import totp

from core.accounts import mfa_enroll
from core.admin_export import export_resource_for
from core.encryption import encrypted_fields
from core.otp import (
    AuthenticatorDevice,
    RecoveryCode,
    RecoveryCodeDevice,
    recovery_code_matches,
)
from core.roles import Role

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
INVALID_CODE = "Invalid token. Please make sure you have entered it correctly."
RETIRED_TABLES = ("otp_totp_totpdevice", "otp_static_staticdevice", "otp_static_statictoken")
migration = importlib.import_module("core.migrations.0007_otp_at_rest")


def _column(sql: str, params: list[object] | None = None) -> list[Any]:
    """Values as the database holds them (a cursor, not the ORM: nothing decrypted)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return [row[0] for row in cursor.fetchall()]


def _retired_rows() -> list[int]:
    """Rows in django-otp's plugin tables (plain keys and codes lived there)."""
    return [_column(f"SELECT COUNT(*) FROM {table}")[0] for table in RETIRED_TABLES]


def _sign_in(username: str, code: str) -> int:
    response = Client().post(
        "/admin/login/",
        {"username": username, "password": PASSWORD, "otp_token": code, "next": "/admin/"},
    )
    if response.status_code == 200:
        assert INVALID_CODE in response.content.decode()
    return response.status_code


@pytest.fixture
def erin(make_user: Callable[..., User]) -> User:
    return make_user(Role.FINANCE_ADMIN, username="erin", mfa=False)


def test_the_database_holds_no_recovery_code_and_no_hex_key(erin: User) -> None:
    # when
    device, codes = mfa_enroll(user=erin)

    # then the key column holds a Fernet token, never the key in hex or base32
    [stored_key] = _column("SELECT key FROM core_authenticatordevice WHERE id = %s", [device.pk])
    hex_key = hexlify(device.bin_key).decode()
    assert stored_key.startswith("fernet:")
    assert hex_key not in stored_key.lower()
    assert device.key == hex_key
    # and the code column holds salted hashes, none of them a code
    stored = _column("SELECT code_hash FROM core_recoverycode ORDER BY id")
    assert len(stored) == len(set(stored)) == 10
    assert all(value.startswith("pbkdf2_sha256$100000$") for value in stored)
    plain = {c for code in codes for c in (code, code.replace("-", ""), code.upper())}
    assert [value for value in stored if any(c in value for c in plain)] == []
    # and django-otp's plain tables stay empty
    assert _retired_rows() == [0, 0, 0]


def test_a_recovery_code_signs_in_once(erin: User) -> None:
    # given
    _, codes = mfa_enroll(user=erin)

    # when one is typed in capitals with spaces, and another used twice
    typed = _sign_in("erin", codes[4].replace("-", " ").upper())
    first = _sign_in("erin", codes[3])
    second = _sign_in("erin", codes[3])

    # then each signs in once, the second use is refused, and both codes are gone
    assert (typed, first, second) == (302, 302, 200)
    assert RecoveryCode.objects.filter(device__user=erin).count() == 8
    device = RecoveryCodeDevice.objects.get(user=erin)
    assert device.last_used_at is not None


def test_an_authenticator_code_verifies_once(erin: User) -> None:
    # given
    device, _ = mfa_enroll(user=erin)
    code = f"{totp(device.bin_key):06d}"

    # when
    first = _sign_in("erin", code)
    second = _sign_in("erin", code)

    # then
    assert (first, second) == (302, 200)
    device.refresh_from_db()
    assert device.last_t > 0
    assert device.throttling_failure_count == 1


def test_a_code_claimed_by_a_racing_request_is_refused(erin: User) -> None:
    # given two requests that loaded the device before either verified
    device, _ = mfa_enroll(user=erin)
    mine, theirs = (AuthenticatorDevice.objects.get(pk=device.pk) for _ in range(2))
    code = totp(device.bin_key)

    # when both verify the same code
    results = (theirs.verify_token(code), mine.verify_token(code))

    # then only the first wins: the time step is claimed in the database, not in memory
    assert results == (True, False)
    assert AuthenticatorDevice.objects.get(pk=device.pk).last_t == theirs.last_t


def test_wrong_codes_are_refused_and_throttled(erin: User) -> None:
    # given
    device, codes = mfa_enroll(user=erin)
    recovery = RecoveryCodeDevice.objects.get(user=erin)
    a_hash = RecoveryCode.objects.filter(device=recovery).values_list("code_hash", flat=True)[0]

    # when
    with time_machine.travel(datetime(2026, 1, 5, 9, 0, tzinfo=UTC), tick=False) as clock:
        results = [
            device.verify_token("not a number"),
            recovery.verify_token("wrong-code"),
            recovery.verify_token(codes[0]),  # right, but within a second of a failure
        ]
        clock.shift(2)
        later = recovery.verify_token(codes[0])

    # then
    assert (results, later) == ([False, False, False], True)
    assert recovery_code_matches("x" * 10_000, a_hash) is False
    recovery.refresh_from_db()
    assert recovery.throttling_failure_count == 0
    assert RecoveryCode.objects.filter(device=recovery).count() == 9


def test_device_pages_and_exports_never_carry_the_key() -> None:
    # then
    exported = export_resource_for(AuthenticatorDevice)().fields
    assert "key" not in exported
    assert {"user", "name", "confirmed"} <= set(exported)


def test_migration_moves_plain_devices_and_retires_their_tables(
    make_user: Callable[..., User],
) -> None:
    # given django-otp's plugin devices as they were stored, plain (the retired tables are
    # opened for this test's transaction only)
    PlainTotp = apps.get_model("otp_totp", "TOTPDevice")
    PlainStatic = apps.get_model("otp_static", "StaticDevice")
    PlainToken = apps.get_model("otp_static", "StaticToken")
    user = make_user(Role.CONTROLLER, username="pat", mfa=False)
    with connection.schema_editor() as editor:
        migration.retired_tables_unlock(apps, editor)
    key = "3132333435363738393031323334353637383930"
    created = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    plain_totp = PlainTotp.objects.create(
        user=user, name="phone", key=key, drift=1, last_t=123, throttling_failure_count=2
    )
    static = PlainStatic.objects.create(user=user, name="backup", confirmed=True)
    PlainTotp.objects.filter(pk=plain_totp.pk).update(created_at=created)
    PlainToken.objects.bulk_create(
        [PlainToken(device=static, token="abcdefgh"), PlainToken(device=static, token="ijklmnop")]
    )

    # when the migration's steps run
    with connection.schema_editor() as editor:
        migration.devices_move(apps, editor)
        migration.retired_tables_lock(apps, editor)

    # then the authenticator moved with its settings, its key encrypted
    moved = AuthenticatorDevice.objects.get(user=user)
    assert (moved.name, moved.key, moved.drift, moved.last_t) == ("phone", key, 1, 123)
    assert (moved.throttling_failure_count, moved.created_at) == (2, created)
    [stored_key] = _column("SELECT key FROM core_authenticatordevice WHERE id = %s", [moved.pk])
    assert stored_key.startswith("fernet:")
    assert key not in stored_key
    # and the recovery codes as hashes that still sign in, once
    codes = RecoveryCodeDevice.objects.get(user=user, name="backup")
    stored = _column("SELECT code_hash FROM core_recoverycode WHERE device_id = %s", [codes.pk])
    assert len(stored) == 2
    assert [value for value in stored if "abcdefgh" in value or "ijklmnop" in value] == []
    assert codes.verify_token("abcdefgh") is True
    assert codes.verify_token("abcdefgh") is False
    # and the plain rows are gone, and the tables take no new ones
    assert _retired_rows() == [0, 0, 0]
    with pytest.raises(IntegrityError), transaction.atomic():
        PlainTotp.objects.create(user=user, name="again", key=key)
    with pytest.raises(IntegrityError), transaction.atomic():
        PlainStatic.objects.create(user=user, name="again")


def test_plugin_tables_refuse_rows_after_migrate(make_user: Callable[..., User]) -> None:
    # given
    user = make_user(Role.CONTROLLER)

    # when django-otp's own code (its admin, its addstatictoken command) tries to add a device
    with pytest.raises(IntegrityError), transaction.atomic():
        apps.get_model("otp_static", "StaticDevice").objects.create(user=user, name="codes")

    # then
    assert _retired_rows() == [0, 0, 0]


def _rotate(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("rotate_encryption_keys", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_rotate_encryption_keys_reencrypts_the_authenticator_key(erin: User, settings) -> None:
    # given an enrolled authenticator, and a new key put first
    device, _ = mfa_enroll(user=erin)
    [before] = _column("SELECT key FROM core_authenticatordevice WHERE id = %s", [device.pk])
    assert ("core.AuthenticatorDevice", ["key"]) in [
        (model._meta.label, names) for model, names in encrypted_fields()
    ]
    old_key = settings.FIELD_ENCRYPTION_KEY.split(",")[0]
    settings.FIELD_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},{old_key}"

    # when the check runs, then the rotation, then the check again
    checked = _rotate("--check")
    rotated = _rotate()

    # then the check counted the key, the rotation rewrote it, and the new key alone reads it
    assert checked[0] == 1
    assert "core.AuthenticatorDevice.key: 1 still need an old key" in checked[1]
    assert rotated[0] == 0, rotated[1]
    assert "core.AuthenticatorDevice.key: 1 re-encrypted" in rotated[1]
    [after] = _column("SELECT key FROM core_authenticatordevice WHERE id = %s", [device.pk])
    assert after != before
    assert after.startswith("fernet:")
    settings.FIELD_ENCRYPTION_KEY = settings.FIELD_ENCRYPTION_KEY.split(",")[0]
    reread = AuthenticatorDevice.objects.get(pk=device.pk)
    assert reread.bin_key == device.bin_key
    assert reread.verify_token(totp(reread.bin_key)) is True
    assert _rotate("--check")[0] == 0
