#!/usr/bin/env python
"""Django's command-line utility for the back-office."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    from django.core.management import execute_from_command_line

    from core.system_settings import SystemSettingsError

    try:
        execute_from_command_line(sys.argv)
    except SystemSettingsError as exc:
        # One line naming the key and the bad value, not a traceback.
        sys.stderr.write(f"Invalid system settings: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
