from django.core.management.base import BaseCommand, CommandError

from billing.models import Membership
from usage.tokens import token_create


class Command(BaseCommand):
    help = "Create a developer token for a member of a workspace; prints the token alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--name", default="API token")

    def handle(self, *args, slug, email, name, **options):
        membership = (Membership.objects.select_related("workspace", "user")
                      .filter(workspace__slug=slug, user__email__iexact=email.strip()).first())
        if membership is None:
            raise CommandError(f"{email} is not a member of workspace {slug!r}.")
        new = token_create(membership=membership, name=name)
        self.stdout.write(f"Token {new.token.name!r} for {membership.user.email} in {slug} (shown once, store it now):")
        self.stdout.write(new.raw)
