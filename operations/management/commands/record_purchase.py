from django.core.management.base import BaseCommand, CommandError

from billing.ledger import LedgerError
from billing.models import Workspace
from billing.money import nanos_display
from buying.purchases import PurchaseError, purchase_record_manual


class Command(BaseCommand):
    help = "Record a pack paid outside Stripe (bank transfer, sales-assisted): credited and invoiced like a Checkout payment."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("pack", help="starter, builder, pro or team")
        parser.add_argument("--reference", default="", help="The payment's reference; the same one twice is one purchase.")

    def handle(self, *args, slug, pack, reference="", **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        try:
            purchase = purchase_record_manual(workspace=workspace, pack_id=pack, reference=reference)
        except (PurchaseError, LedgerError) as error:
            raise CommandError(str(error))
        self.stdout.write(f"Purchase {purchase.pk} ({purchase.pack.name}, {purchase.get_status_display()}): "
                          f"{nanos_display(purchase.credits + purchase.bonus)} credits for {workspace.slug}.")
