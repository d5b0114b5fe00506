from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.models import Membership
from billing.money import InvalidAmount, credits_to_nanos
from usage.tokens import TokenLimits, TokenLimitsInvalid, token_create


def _credits(option: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        nanos = credits_to_nanos(value)
    except InvalidAmount as error:
        raise CommandError(f"{option}: {error}") from None
    if nanos <= 0:
        raise CommandError(f"{option}: enter more than 0 credits.")
    return nanos


class Command(BaseCommand):
    help = ("Create a developer token for a member of a workspace, with optional limits (set as an owner or "
            "admin sets them: the member may lower them, not raise them); prints the token alone on the last line.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--name", default="API token")
        parser.add_argument("--max-per-run", metavar="C", help="Credits a run authorized with it may hold at most.")
        parser.add_argument("--max-per-day", metavar="C", help="Credits charged plus held per UTC day.")
        parser.add_argument("--max-per-month", metavar="C", help="Credits charged plus held per billing period.")
        parser.add_argument("--models", metavar="m1,m2", help="The only models it may use (model ids, comma-separated).")
        parser.add_argument("--expires-in-days", type=int, metavar="N", help="It stops working after N days.")

    def handle(self, *args, slug, email, name, max_per_run, max_per_day, max_per_month, models, expires_in_days,
               **options):
        membership = (Membership.objects.select_related("workspace", "user")
                      .filter(workspace__slug=slug, user__email__iexact=email.strip(), removed_at__isnull=True).first())
        if membership is None:
            raise CommandError(f"{email} is not a member of workspace {slug!r}.")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise CommandError("--expires-in-days: enter a number of days from 1 to 3650.")
        limits = TokenLimits(
            max_credits_per_run=_credits("--max-per-run", max_per_run),
            max_credits_per_day=_credits("--max-per-day", max_per_day),
            max_credits_per_month=_credits("--max-per-month", max_per_month),
            allowed_models=tuple(dict.fromkeys(m.strip() for m in (models or "").split(",") if m.strip())),
            expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None)
        try:
            new = token_create(membership=membership, name=name, limits=limits, actor=None, admin_set=True)
        except TokenLimitsInvalid as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Token {new.token.name!r} for {membership.user.email} in {slug} (shown once, store it now):")
        if limits.any:
            self.stdout.write("Limits: " + "; ".join(limits.describe()))
        self.stdout.write(new.raw)
