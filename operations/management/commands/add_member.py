"""manage.py add_member SLUG EMAIL --role admin/member [--password P]"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from billing.models import Membership, Workspace
from billing.services import MemberLimitReached, member_add, user_get_or_create


class Command(BaseCommand):
    help = "Adds a member (admin or member) to a workspace; the user is created if new."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=[Membership.ADMIN, Membership.MEMBER])
        parser.add_argument("--password", help="Sets the user's password.")

    def handle(self, *args, slug, email, role, password, **options):
        workspace = Workspace.objects.select_related("plan").filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not a valid e-mail address.") from None
        existing = workspace.memberships.filter(user__email=email.strip().lower()).first()
        if existing:
            raise CommandError(f"{existing.user.email} is already {existing.role} of {slug}.")
        user = user_get_or_create(email=email, password=password)
        try:
            membership = member_add(workspace=workspace, user=user, role=role)
        except MemberLimitReached as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Added {user.email} to {slug} as {membership.role}."))
        if not user.has_usable_password():
            self.stdout.write(f"{user.email} has no password yet: pass --password or run "
                              f"`manage.py changepassword {user.email}`.")
