"""``manage.py rotate_encryption_keys [--check]``: after putting a new key first in
FIELD_ENCRYPTION_KEY (the old ones after it), re-encrypt every encrypted field of every model,
history rows included, with the new key. ``--check`` rewrites nothing and says how many
values still need an old key; it exits 1 while any does, so the old keys can be dropped
when it exits 0."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.encryption import fields_needing_old_keys, fields_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first FIELD_ENCRYPTION_KEY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Only count the values needing an old key."
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        if not check:
            for label, count in fields_reencrypt().items():
                self.stdout.write(f"{label}: {count} re-encrypted")
        stale = fields_needing_old_keys()
        waiting = sum(stale.values())
        for label, count in stale.items():
            if count:
                self.stdout.write(f"{label}: {count} still need an old key")
        if waiting:
            self.stdout.write(f"{waiting} values still need an old key: keep the old keys.")
            raise SystemExit(1)
        self.stdout.write("Every value reads with the first key alone: old keys may be dropped.")
