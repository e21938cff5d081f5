"""``manage.py seed_demo``: a demo year of a small SaaS company and a finance admin login."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.demo import SQLITE_SCALE, demo_default_scale, demo_seed
from core.exceptions import DomainError


class Command(BaseCommand):
    help = "Seed demo data (idempotent) and print a new login for the demo finance admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale",
            type=float,
            default=None,
            help="Size of the generated year, above 0 and at most 1 (1: about 300 customers; "
            f"by default 1, or {SQLITE_SCALE} on the quick start's SQLite).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scale = options["scale"] if options["scale"] is not None else demo_default_scale()
        try:
            result = demo_seed(scale=scale)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        login = result.login
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            f"FX rates recorded: {result.fx_rates_recorded}. "
            f"Journal entries posted: {len(result.entries_posted)}, "
            f"already there: {len(result.entries_existing)}."
        )
        for report in result.app_reports:
            self.stdout.write(report)
        self.stdout.write("")
        self.stdout.write(f"Log in at   http://127.0.0.1:{port}/admin/")
        self.stdout.write(f"Username:   {login.username}")
        self.stdout.write(f"Password:   {login.password}")
        self.stdout.write("Second factor: add this to an authenticator app (scan it as a QR code)")
        self.stdout.write(f"  {login.otpauth_url}")
        self.stdout.write(f"  or type the secret: {login.totp_secret}")
        self.stdout.write("  or use a recovery code (each works once):")
        for code in login.recovery_codes:
            self.stdout.write(f"    {code}")
        self.stdout.write("Running seed_demo again keeps the data and issues a new login.")
