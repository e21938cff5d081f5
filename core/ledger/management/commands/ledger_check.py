from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.ledger.checks import ledger_check_run


class Command(BaseCommand):
    help = (
        "Verify the ledger: every entry balanced and written by the posting service, the trial "
        "balance zero per currency, sub-ledgers equal to their control accounts. Exits 1 on any "
        "problem."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        run = ledger_check_run()
        for problem in run.problems:
            self.stdout.write(f"PROBLEM [{problem['check']}] {problem['message']}")
        if not run.ok:
            raise CommandError(f"ledger_check found {len(run.problems)} problem(s) (run {run.pk}).")
        self.stdout.write(
            self.style.SUCCESS(f"ledger_check: ok, {run.entries_checked} entries verified.")
        )
