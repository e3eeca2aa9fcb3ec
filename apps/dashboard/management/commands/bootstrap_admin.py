"""Create the first admin once (an operator and reviewer) and print its password."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from apps.dashboard.permissions import OPERATORS, REVIEWERS


class Command(BaseCommand):
    help = "Create the first admin user if no superuser exists, and print its password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin already exists; its password is unchanged.")
            return
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        user.groups.add(*Group.objects.filter(name__in=[OPERATORS, REVIEWERS]))
        self.stdout.write(f"Admin created: username {username!r}, password {password!r}")
