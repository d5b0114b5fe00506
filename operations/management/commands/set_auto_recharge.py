from django.core.management.base import BaseCommand, CommandError

from billing.models import AutoRecharge, Workspace
from billing.money import InvalidAmount, credits_to_nanos, nanos_display
from buying.auto_recharge import AutoRechargeError, auto_recharge_set, auto_recharge_test_card_set


class Command(BaseCommand):
    help = "Turn a workspace's auto-recharge on (threshold, pack, ceiling per period) or off; the same service as the page."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--threshold", help="Recharge when available credits fall below this, e.g. 200")
        parser.add_argument("--pack", help="The pack to buy each time: starter, builder, pro or team")
        parser.add_argument("--max-per-period", type=int, help="The most auto-recharges per billing period (default 3)")
        parser.add_argument("--off", action="store_true", help="Turn auto-recharge off")
        parser.add_argument("--test-payment-method", nargs="?", const=AutoRecharge.TEST_CARD_OK,
                            choices=[value for value, _ in AutoRecharge.TEST_CARDS],
                            help="Test-checkout mode: put the built-in test card on file (default: succeeds)")

    def handle(self, *args, slug, threshold=None, pack=None, max_per_period=None, off=False, test_payment_method=None,
               **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        try:
            if test_payment_method:
                auto_recharge_test_card_set(workspace=workspace, mode=test_payment_method)
            if off:
                auto_recharge_set(workspace=workspace, enabled=False)
                self.stdout.write(f"Auto-recharge is off for {slug}.")
                return
            nanos = credits_to_nanos(threshold) if threshold is not None else None
            row = auto_recharge_set(workspace=workspace, enabled=True, threshold=nanos, pack_id=pack,
                                    max_per_period=max_per_period)
        except (AutoRechargeError, InvalidAmount) as error:
            raise CommandError(str(error))
        self.stdout.write(f"Auto-recharge is on for {slug}: below {nanos_display(row.threshold)} credits, buy the "
                          f"{row.pack.name} pack, at most {row.max_per_period} per period ({row.card_label}).")
