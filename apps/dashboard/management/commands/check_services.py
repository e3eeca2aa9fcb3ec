"""Check that the database and Redis answer; one clear line per problem, exit code 2."""

from django.core.management.base import BaseCommand

from webrl_site.startup import check_services


class Command(BaseCommand):
    help = "Exit with a clear message if Postgres or Redis cannot be reached."

    def handle(self, *args, **options):
        check_services()
        self.stdout.write("database and redis: ok")
