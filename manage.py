#!/usr/bin/env python
"""Django's command line for webrl (`python manage.py help`)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webrl_site.settings")
    from django.core.management import execute_from_command_line

    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command not in ("help", "--help", "-h", "version", "--version"):
        import django

        django.setup()
        from webrl_site.startup import OFFLINE_COMMANDS, check_services

        if command not in OFFLINE_COMMANDS:
            check_services()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
