"""``manage.py mfa_enroll --username alice``: a new authenticator and recovery codes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.accounts import mfa_device_count, mfa_enroll, totp_secret_base32


class Command(BaseCommand):
    help = "Replace a user's second-factor devices with a new TOTP device and recovery codes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        replaced = mfa_device_count(user=user)
        device, codes = mfa_enroll(user=user)
        if replaced:
            self.stdout.write(f"Replaced {replaced} earlier device(s) of {username}.")
        self.stdout.write(f"Authenticator URL (scan as a QR code): {device.config_url}")
        self.stdout.write(f"Secret (base32, to type in by hand): {totp_secret_base32(device)}")
        self.stdout.write("Recovery codes (each works once; keep them offline):")
        for code in codes:
            self.stdout.write(f"  {code}")
