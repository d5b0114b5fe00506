"""manage.py create_workspace SLUG --name N --owner EMAIL [--password P] [--plan free/pro/team/enterprise]"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email, validate_slug

from billing.models import Plan, Workspace
from billing.money import nanos_display
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create


class Command(BaseCommand):
    help = "Creates a workspace and its owner (created if new); the first period starts now with its credits."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, help="The owner's e-mail address (created if new).")
        parser.add_argument("--password", help="Sets the owner's password (required for a new owner to sign in).")
        parser.add_argument("--plan", default="free", help="free, pro, team or enterprise (default free).")
        parser.add_argument("--personal", action="store_true", help="A personal workspace (one member).")

    def handle(self, *args, slug, name, owner, password, plan, personal, **options):
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"{slug!r} is not a valid slug: use letters, numbers, hyphens and underscores.") from None
        try:
            validate_email(owner)
        except ValidationError:
            raise CommandError(f"{owner!r} is not a valid e-mail address.") from None
        if not name.strip():
            raise CommandError("--name must not be empty.")
        if not Plan.objects.filter(pk=plan).exists():
            choices = ", ".join(Plan.objects.values_list("id", flat=True))
            raise CommandError(f"Unknown plan {plan!r}; choose one of: {choices}.")
        if Workspace.objects.filter(slug=slug).exists():
            raise CommandError(f"A workspace with slug {slug!r} already exists.")
        user = user_get_or_create(email=owner, password=password)
        workspace = workspace_create(slug=slug, name=name.strip(), owner=user, plan_id=plan,
                                     kind=Workspace.PERSONAL if personal else Workspace.TEAM)
        workspace.wallet.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(
            f"Created workspace {workspace.slug} ({workspace.plan.name} plan) owned by {user.email}; "
            f"{nanos_display(workspace.wallet.monthly)} credits granted for the period ending "
            f"{workspace.period_end:%Y-%m-%d}."))
        if not user.has_usable_password():
            self.stdout.write(f"{user.email} has no password yet: run `manage.py changepassword {user.email}` "
                              "or pass --password.")
