"""manage.py run_prepare --token-file PATH: everything `make run` does before it serves, in one
process: static files, migrations, the demo (first time only), a developer token for the banner,
and the Stripe webhook endpoint when Stripe is configured.

One process because each Django start costs seconds of CPU (apps, dj-stripe, WeasyPrint): five
`manage.py` calls in a row were a good part of the first start."""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from billing.models import Membership
from usage.tokens import token_create


class Command(BaseCommand):
    help = "What make run does before serving: collectstatic, migrate, seed_demo --if-empty, the banner's token."

    def add_arguments(self, parser):
        parser.add_argument("--token-file", required=True, help="Where the banner's developer token is kept.")

    def handle(self, *args, token_file, **options):
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo", if_empty=True, token_file=token_file, stdout=self.stdout, stderr=self.stderr)
        path = Path(token_file)
        if not path.exists() or not path.read_text().strip():
            # A database seeded earlier (or by hand) whose token this machine never kept: one new
            # token for owner@demo.test, kept for the next starts.
            membership = Membership.objects.filter(workspace__slug="acme", user__email="owner@demo.test").first()
            if membership is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(token_create(membership=membership, name="make run").raw + "\n")
                path.chmod(0o600)
        try:
            call_command("stripe_webhook_endpoint", quiet=True, stdout=self.stdout, stderr=self.stderr)
        except Exception as error:  # noqa: BLE001 (no Stripe, or Stripe unreachable: the demo runs without it)
            self.stderr.write(f"run_prepare: Stripe webhook endpoint not set up: {error}")
