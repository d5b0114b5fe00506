"""manage.py grant_credits SLUG CREDITS --reason TEXT: an adjustment of the purchased bucket."""

from django.core.management.base import BaseCommand, CommandError

from billing.ledger import LedgerError, credits_adjust
from billing.models import Workspace
from billing.money import InvalidAmount, credits_to_nanos, nanos_display


class Command(BaseCommand):
    help = ("Adds CREDITS (a decimal, up to 9 places; negative to remove) to the workspace's purchased bucket "
            "as a ledger adjustment with the reason.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("credits", help="e.g. 250 or 12.5; negative to remove credits")
        parser.add_argument("--reason", required=True, help="Recorded in the ledger.")

    def handle(self, *args, slug, credits, reason, **options):
        workspace = Workspace.objects.select_related("plan").filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        try:
            amount = credits_to_nanos(credits)
        except InvalidAmount as error:
            raise CommandError(f"CREDITS: {error}") from None
        if amount == 0:
            raise CommandError("CREDITS must not be zero.")
        if not reason.strip():
            raise CommandError("--reason must not be empty.")
        try:
            entry = credits_adjust(workspace=workspace, amount=amount, reason=reason)
        except LedgerError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(
            f"{'Granted' if amount > 0 else 'Removed'} {nanos_display(abs(amount))} credits "
            f"{'to' if amount > 0 else 'from'} {slug} (ledger entry #{entry.pk}); "
            f"balance now {nanos_display(entry.balance_after)}."))
