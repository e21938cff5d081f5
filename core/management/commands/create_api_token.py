"""``manage.py create_api_token --username erp --role integration --scope billing:write``.

A new API token that may call the APIs its scopes name (``--scope`` once per scope:
``<area>:read`` or ``<area>:write``, see ``core.api.scopes``).

The token is printed alone on the last line (for scripts); knox keeps only its digest.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.accounts import api_token_create
from core.api.scopes import API_AREAS
from core.exceptions import DomainError
from core.roles import Role


class Command(BaseCommand):
    help = "Create (or reuse) a user in a role and print a new API token for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument(
            "--role", required=True, help=f"One of: {', '.join(r.value for r in Role)}."
        )
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            dest="scopes",
            help="An API the token may call, as <area>:read or <area>:write (repeat for "
            f"several); areas: {', '.join(API_AREAS)}.",
        )

    def handle(
        self, *args: Any, username: str, role: str, scopes: list[str], **options: Any
    ) -> None:
        try:
            user, token = api_token_create(username=username, role=role, scopes=scopes)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"API token for {user.username} (role {role}, scopes {', '.join(scopes)}); "
            "it is shown only once."
        )
        self.stdout.write("Send it as the header: Authorization: Token <token>")
        self.stdout.write(token)
