"""Production settings and login throttling (RELIABILITY.md A7, A4 in part)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

ROOT = Path(__file__).parents[2]


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(
        BACKOFFICE_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY="dGVzdC1rZXktZm9yLWRldmVsb3BtZW50LW9ubHktMDE=",
        ALLOWED_HOSTS="backoffice.example.com",
        DATABASE_URL=os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backoffice"
        ),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        PUBLIC_BASE_URL="https://pay.backoffice.example.com",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_A7_check_deploy_is_clean_in_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets() -> None:
    env = production_env()
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_quick_start_defaults_are_not_production() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={k: v for k, v in os.environ.items() if k != "BACKOFFICE_ENV"},
    )
    assert result.returncode != 0  # development settings are not fit to deploy, and say so


@pytest.mark.django_db
@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_bad_passwords_lock_the_admin_login(client, make_user) -> None:
    # given a staff user with a device
    user = make_user("controller")
    from django_otp.oath import totp

    from core.otp import AuthenticatorDevice

    device = AuthenticatorDevice.objects.get(user=user)
    # when three bad passwords are tried
    for _ in range(3):
        client.post(
            "/admin/login/", {"username": user.username, "password": "wrong", "otp_token": "123456"}
        )
    # then even the right password and code are refused from that address for the cool-off
    response = client.post(
        "/admin/login/",
        {
            "username": user.username,
            "password": "correct horse battery staple",
            "otp_token": f"{totp(device.bin_key):06d}",
        },
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_one_address_spraying_passwords_over_usernames_is_locked_out(
    client, make_user, settings
) -> None:
    from django.core.cache import cache
    from django_otp.oath import totp

    from core.otp import AuthenticatorDevice

    cache.clear()
    settings.LOGIN_FAILURES_PER_IP = 4
    user = make_user("controller")
    device = AuthenticatorDevice.objects.get(user=user)
    # given four bad passwords, each for another username (axes counts each name apart)
    for n in range(4):
        answer = client.post(
            "/admin/login/", {"username": f"user{n}", "password": "guess", "otp_token": "1"}
        )
        assert answer.status_code == 200
    # then that address may not sign in, even with the right password and code
    right = {
        "username": user.username,
        "password": "correct horse battery staple",
        "otp_token": f"{totp(device.bin_key):06d}",
    }
    refused = client.post("/admin/login/", right)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 15 * 60
    assert "_auth_user_id" not in client.session
    # while another address can
    other = client.post("/admin/login/", right, REMOTE_ADDR="198.51.100.20")
    assert other.status_code == 302
    cache.clear()
