"""manage.py set_sso SLUG --issuer URL --client-id ID --client-secret S --domains a.com,b.com
[--required] [--default-role member|admin] [--off]"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import SsoConnection
from accounts.sso import SsoError, domains_parse, sso_settings_set
from billing.models import Membership, Workspace


class Command(BaseCommand):
    help = ("Sets a workspace's single sign-on (OpenID Connect, Enterprise only); --off turns it off and keeps "
            "the settings. Audited with no actor (system).")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--issuer", help="The provider's issuer URL (https).")
        parser.add_argument("--client-id")
        parser.add_argument("--client-secret", help="Stored encrypted; omit to keep the stored one.")
        parser.add_argument("--domains", help="Comma-separated e-mail domains, e.g. a.com,b.com.")
        parser.add_argument("--required", action="store_true", help="Members at the domains cannot use passwords.")
        parser.add_argument("--default-role", choices=[Membership.MEMBER, Membership.ADMIN], default=Membership.MEMBER)
        parser.add_argument("--off", action="store_true")

    def handle(self, *args, slug, issuer, client_id, client_secret, domains, required, default_role, off, **options):
        workspace = Workspace.objects.select_related("plan").filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        existing = SsoConnection.objects.filter(workspace=workspace).first()
        if off:
            if existing is None:
                raise CommandError(f"{slug} has no single sign-on to turn off.")
            issuer, client_id = issuer or existing.issuer, client_id or existing.client_id
            domains = domains if domains is not None else ",".join(existing.domain_names)
            required, default_role = required or existing.required, existing.default_role
        elif not (issuer and client_id and domains):
            raise CommandError("Give --issuer, --client-id and --domains (and --client-secret the first time).")
        try:
            connection = sso_settings_set(workspace=workspace, actor=None, issuer=issuer, client_id=client_id,
                                          client_secret=client_secret, domains=domains_parse(domains),
                                          required=required, default_role=default_role, enabled=not off)
        except SsoError as error:
            raise CommandError(str(error)) from None
        state = "off (settings kept)" if not connection.enabled else (
            f"on for {', '.join(connection.domain_names)}{', required' if connection.required else ''}, "
            f"newcomers join as {connection.default_role}")
        self.stdout.write(self.style.SUCCESS(f"Single sign-on of {slug}: {state}."))
