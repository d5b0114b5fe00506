from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.grants import period_grants_run


class Command(BaseCommand):
    help = "Roll every workspace whose billing period has ended: expire the monthly remainder, grant the new period."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Pretend it is this ISO 8601 moment (UTC if no offset), e.g. 2026-02-28T00:00:00Z.")
        parser.add_argument("--chunk", type=int, default=500)

    def handle(self, *args, now=None, chunk=500, **options):
        moment = timezone.now()
        if now:
            try:
                moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
            except ValueError:
                raise CommandError(f"--now {now!r} is not an ISO 8601 date-time.")
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment, timezone.utc)
        self.stdout.write(f"Period grants as of {moment.isoformat()}")
        report = period_grants_run(now=moment, chunk=max(chunk, 1), progress=lambda line: self.stdout.write("  " + line))
        self.stdout.write(self.style.SUCCESS(
            f"Done: {report.rolled} workspace(s) rolled, {report.skipped} skipped, {report.due} were due."))
