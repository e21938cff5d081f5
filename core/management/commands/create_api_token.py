"""``manage.py create_api_token --username erp --role integration``: a new API token.

The token is printed alone on the last line (for scripts); knox keeps only its digest.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.accounts import api_token_create
from core.exceptions import DomainError
from core.roles import Role


class Command(BaseCommand):
    help = "Create (or reuse) a user in a role and print a new API token for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--role", required=True, help=f"One of: {', '.join(r.value for r in Role)}."
        )

    def handle(self, *args: Any, username: str, role: str, **options: Any) -> None:
        try:
            user, token = api_token_create(username=username, role=role)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"API token for {user.username} (role {role}); it is shown only once.")
        self.stdout.write("Send it as the header: Authorization: Token <token>")
        self.stdout.write(token)
