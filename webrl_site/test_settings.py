"""The settings the test suite runs with (pyproject's DJANGO_SETTINGS_MODULE): development mode on,
as `make run` has it; the settings themselves default it off. Subprocesses a test starts (workers,
manage.py) inherit the variable and this module."""

import os

os.environ.setdefault("DEBUG", "1")

from webrl_site.settings import *  # noqa: E402,F403
