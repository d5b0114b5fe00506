"""manage.py set_budget SLUG [--monthly C] [--alert-webhook URL] [--agent NAME --per-run C --per-day C
--per-month C] [--member EMAIL --member-monthly C]: the settings of the budget pages, through the same
services."""

from django.core.management.base import BaseCommand, CommandError

from billing.models import Membership, Workspace
from billing.money import InvalidAmount, credits_to_nanos, nanos_display
from budgets.services import BudgetInvalid, agent_budget_set, agent_for_budget, budget_set, member_budget_set

NONE_WORDS = ("none", "off", "")


def _credits(option: str, value: str, *, allow_none: bool = False) -> int | None:
    if allow_none and value.strip().lower() in NONE_WORDS:
        return None
    try:
        return credits_to_nanos(value)
    except InvalidAmount as error:
        raise CommandError(f"{option}: {error}") from None


class Command(BaseCommand):
    help = "Sets a workspace's monthly budget and alert webhook, an agent's budgets, or a member's monthly budget."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--monthly", help="Workspace monthly budget in credits ('none' removes it).")
        parser.add_argument("--alert-webhook", help="Alert webhook URL ('' removes it).")
        parser.add_argument("--agent", help="Agent name (created if new).")
        parser.add_argument("--per-run", help="Agent max credits per run.")
        parser.add_argument("--per-day", help="Agent max credits per UTC day.")
        parser.add_argument("--per-month", help="Agent max credits per billing period.")
        parser.add_argument("--member", help="Member e-mail address.")
        parser.add_argument("--member-monthly", help="Member monthly budget in credits ('none' removes it).")

    def handle(self, *args, slug, **options):
        workspace = Workspace.objects.select_related("budget", "plan").filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r}.")
        agent_options = [options[k] for k in ("per_run", "per_day", "per_month")]
        if any(v is not None for v in agent_options) and not options["agent"]:
            raise CommandError("--per-run/--per-day/--per-month need --agent NAME.")
        if options["member_monthly"] is not None and not options["member"]:
            raise CommandError("--member-monthly needs --member EMAIL.")
        if not any(options[k] is not None for k in ("monthly", "alert_webhook", "agent", "member")):
            raise CommandError("Nothing to set: give --monthly, --alert-webhook, --agent or --member.")
        try:
            if options["monthly"] is not None or options["alert_webhook"] is not None:
                self._workspace_budget(workspace, options)
            if options["agent"]:
                self._agent_budget(workspace, options)
            if options["member"]:
                self._member_budget(workspace, options)
        except BudgetInvalid as error:
            raise CommandError(f"{error.field}: {error.message}") from None

    def _workspace_budget(self, workspace, options):
        budget = workspace.budget
        limit = budget.monthly_limit
        if options["monthly"] is not None:
            limit = _credits("--monthly", options["monthly"], allow_none=True)
        url = budget.webhook_url if options["alert_webhook"] is None else options["alert_webhook"]
        budget = budget_set(workspace=workspace, monthly_limit=limit, warning=budget.warning_enabled,
                            critical=budget.critical_enabled, hard_limit=budget.hard_limit_enabled, webhook_url=url,
                            actor=None)
        shown = "none" if budget.monthly_limit is None else nanos_display(budget.monthly_limit) + " credits"
        self.stdout.write(self.style.SUCCESS(
            f"{workspace.slug}: monthly budget {shown}; alert webhook {budget.webhook_url or 'not set'}."))

    def _agent_budget(self, workspace, options):
        agent = agent_for_budget(workspace=workspace, name=options["agent"])
        values = {
            "max_per_run": agent.max_per_run if options["per_run"] is None else _credits("--per-run", options["per_run"]),
            "max_per_day": agent.max_per_day if options["per_day"] is None else _credits("--per-day", options["per_day"]),
            "max_per_month": (agent.max_per_month if options["per_month"] is None
                              else _credits("--per-month", options["per_month"])),
        }
        agent = agent_budget_set(agent=agent, actor=None, **values)
        self.stdout.write(self.style.SUCCESS(
            f"{workspace.slug}: agent {agent.name}: {nanos_display(agent.max_per_run)} per run, "
            f"{nanos_display(agent.max_per_day)} per day, {nanos_display(agent.max_per_month)} per period."))

    def _member_budget(self, workspace, options):
        email = options["member"].strip().lower()
        membership = Membership.objects.select_related("user").filter(workspace=workspace, user__email=email).first()
        if membership is None:
            raise CommandError(f"{email} is not a member of {workspace.slug}.")
        if options["member_monthly"] is None:
            raise CommandError("--member needs --member-monthly C (or 'none').")
        budget = _credits("--member-monthly", options["member_monthly"], allow_none=True)
        membership = member_budget_set(membership=membership, monthly_budget=budget, actor=None)
        shown = "none" if budget is None else nanos_display(budget) + " credits"
        self.stdout.write(self.style.SUCCESS(f"{workspace.slug}: member {email}: monthly budget {shown}."))
