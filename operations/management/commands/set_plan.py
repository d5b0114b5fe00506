from django.core.management.base import BaseCommand, CommandError

from billing.models import Workspace
from billing.money import InvalidAmount, credits_to_nanos
from buying.plans import PlanError, plan_change


class Command(BaseCommand):
    help = "Change a workspace's plan now; the options set the Enterprise (per-workspace) values."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("plan", help="free, pro, team or enterprise")
        parser.add_argument("--requests-per-minute", type=int)
        parser.add_argument("--concurrent-runs", type=int)
        parser.add_argument("--monthly-credits", help="Credits per period, e.g. 20000")

    def handle(self, *args, slug, plan, requests_per_minute=None, concurrent_runs=None, monthly_credits=None, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace {slug!r}.")
        try:
            monthly = credits_to_nanos(monthly_credits) if monthly_credits is not None else None
            workspace = plan_change(workspace=workspace, plan_id=plan, actor=None, at_period_end=False,
                                    requests_per_minute=requests_per_minute, concurrent_runs=concurrent_runs,
                                    monthly_credits=monthly)
        except (PlanError, InvalidAmount) as error:
            raise CommandError(str(error))
        self.stdout.write(
            f"{workspace.slug} is on {workspace.plan.name}: {workspace.requests_per_minute} requests/minute, "
            f"{workspace.concurrent_runs} concurrent runs, {workspace.monthly_credits // 10**9:,} credits per period.")
