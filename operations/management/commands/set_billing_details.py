from django.core.management.base import BaseCommand, CommandError

from billing.models import Workspace
from invoices.services import BillingDetailsError, workspace_billing_details_update


class Command(BaseCommand):
    help = ("Set a workspace's billing details (printed on invoices issued from now on, and deciding the tax "
            "of the test checkout): legal name, country, and optionally tax id, address and invoice e-mail.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--legal-name", required=True)
        parser.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. DE")
        parser.add_argument("--tax-id", help="checked for the country (python-stdnum); '' removes it")
        parser.add_argument("--address", help="lines separated by newlines (or '\\n')")
        parser.add_argument("--email", help="where invoices go; '' for the owner's e-mail")

    def handle(self, *args, slug, legal_name, country, tax_id=None, address=None, email=None, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        changes = {"billing_name": legal_name, "billing_country": country}
        for name, value in (("tax_id", tax_id), ("billing_address", address), ("billing_email", email)):
            if value is not None:
                changes[name] = value.replace("\\n", "\n")
        try:
            workspace = workspace_billing_details_update(workspace=workspace, actor=None, source="command", **changes)
        except BillingDetailsError as error:
            raise CommandError(str(error))
        self.stdout.write(f"{workspace.slug}: {workspace.billing_name}, {workspace.billing_country.code}"
                          + (f", tax id {workspace.tax_id}" if workspace.tax_id else "")
                          + (f", invoices to {workspace.billing_email}" if workspace.billing_email else ""))
