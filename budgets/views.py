"""Budget pages: Alerts (workspace budget, levels, webhook), agent budgets, members.

Every member may look; only the owner and admins may change anything (a member's POST is 403, an
outsider gets 404 for everything: billing.tenancy.membership_for)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from billing.models import Membership
from billing.members import (MemberLimitReached, MembershipError, invitation_create, invitations_pending,
                             member_role_set)
from billing.tenancy import membership_for
from .models import Agent

from .counters import MEMBER
from .forms import AgentBudgetForm, BudgetForm, MemberAddForm, MemberBudgetForm, MemberRoleForm
from .models import BudgetAlert, WorkspaceBudget, budget_level, levels_reached
from .selectors import day_used, period_spend, period_used
from .services import (BudgetInvalid, agent_budget_set, budget_set, member_budget_refusal, member_budget_set,
                       webhook_secret_rotate, webhook_test_last, webhook_test_send)


def _meter(used: int, limit: int | None) -> dict:
    """What a usage bar needs: used, limit, percent (uncapped, for the text) and width (capped)."""
    percent = used * 100 // limit if limit else 0
    level = budget_level(used=used, limit=limit)
    level = "" if level in ("ok", "none") else level  # the bar's CSS class
    return {"used": used, "limit": limit, "percent": percent, "width": min(percent, 100), "level": level}


def _apply_service_error(form, error: BudgetInvalid):
    form.add_error(error.field if error.field in form.fields else None, error.message)


@login_required
def alerts(request, slug):
    membership = membership_for(request, slug, manage=request.method == "POST")
    workspace = membership.workspace
    budget: WorkspaceBudget = workspace.budget
    form = BudgetForm(initial={
        "monthly_limit": budget.monthly_limit, "warning_enabled": budget.warning_enabled,
        "critical_enabled": budget.critical_enabled, "hard_limit_enabled": budget.hard_limit_enabled,
        "webhook_url": budget.webhook_url})
    if request.method == "POST":
        if request.POST.get("action") == "test_webhook":
            messages.info(request, webhook_test_send(workspace=workspace, actor=request.user))
            return redirect("budgets:alerts", slug=slug)
        if request.POST.get("action") == "rotate_secret":
            webhook_secret_rotate(workspace=workspace, actor=request.user)
            messages.success(request, "A new webhook signing secret is in use. Update your receiver.")
            return redirect("budgets:alerts", slug=slug)
        form = BudgetForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                budget_set(workspace=workspace, monthly_limit=data["monthly_limit"], warning=data["warning_enabled"],
                           critical=data["critical_enabled"], hard_limit=data["hard_limit_enabled"],
                           webhook_url=data["webhook_url"], actor=request.user)
            except BudgetInvalid as error:
                _apply_service_error(form, error)
            else:
                messages.success(request, "Budget and alerts saved.")
                return redirect("budgets:alerts", slug=slug)
    spend = period_spend(workspace=workspace)
    used, limit = spend.used, budget.monthly_limit
    levels = []
    reached = levels_reached(used=used, limit=limit)
    for level, label in WorkspaceBudget.LEVELS:
        threshold = WorkspaceBudget.THRESHOLDS[level]
        levels.append({
            "level": level, "label": label, "threshold": threshold, "enabled": budget.level_enabled(level),
            "at": limit * threshold // 100 if limit else None,
            "reached": level in reached,
        })
    history = BudgetAlert.objects.filter(workspace=workspace).order_by("-fired_at")[:20]
    return render(request, "budgets/alerts.html", {
        "form": form, "budget": budget, "meter": _meter(used, limit), "spend": spend, "levels": levels, "history": history,
        "can_manage": membership.can_manage_billing, "webhook_test": webhook_test_last(workspace=workspace),
    })


def _agent_rows(workspace):
    today = timezone.now().date()
    period = period_used(workspace=workspace)
    daily = day_used(workspace=workspace, day=today)
    rows = []
    for agent in Agent.objects.filter(workspace=workspace):
        rows.append({"agent": agent, "day": _meter(daily.get(agent.pk, 0), agent.max_per_day),
                     "period": _meter(period.get(("agent", agent.pk), 0), agent.max_per_month)})
    return rows


@require_safe
@login_required
def agents(request, slug):
    membership = membership_for(request, slug)
    return render(request, "budgets/agents.html", {"rows": _agent_rows(membership.workspace),
                                                   "can_manage": membership.can_manage_billing})


@login_required
def agent_budget(request, slug, agent_id):
    membership = membership_for(request, slug)
    workspace = membership.workspace
    agent = get_object_or_404(Agent, pk=agent_id, workspace=workspace)  # another workspace's agent: 404
    if request.method == "POST":
        membership_for(request, slug, manage=True)
    form = AgentBudgetForm(initial={"max_per_run": agent.max_per_run, "max_per_day": agent.max_per_day,
                                    "max_per_month": agent.max_per_month})
    if request.method == "POST":
        form = AgentBudgetForm(request.POST)
        if form.is_valid():
            try:
                agent_budget_set(agent=agent, actor=request.user, **form.cleaned_data)
            except BudgetInvalid as error:
                _apply_service_error(form, error)
            else:
                messages.success(request, f"Budgets of {agent.name} saved.")
                return redirect("budgets:agent_budget", slug=slug, agent_id=agent.pk)
    today = timezone.now().date()
    return render(request, "budgets/agent_budget.html", {
        "agent": agent, "form": form, "can_manage": membership.can_manage_billing,
        "day": _meter(day_used(workspace=workspace, day=today).get(agent.pk, 0), agent.max_per_day),
        "period": _meter(period_used(workspace=workspace).get(("agent", agent.pk), 0), agent.max_per_month),
        "today": today,
    })


@login_required
def members(request, slug):
    membership = membership_for(request, slug, manage=request.method == "POST")
    workspace = membership.workspace
    add_form = MemberAddForm()
    errors: dict[int, str] = {}
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "add":
            add_form = MemberAddForm(request.POST)
            if add_form.is_valid():
                try:
                    invitation = invitation_create(workspace=workspace, actor=request.user, **add_form.cleaned_data)
                except (MembershipError, MemberLimitReached) as error:
                    add_form.add_error("email", str(error))
                else:
                    messages.success(request, f"Invitation sent to {invitation.email} "
                                              f"({invitation.get_role_display().lower()}); the link works for 7 days.")
                    return redirect("budgets:members", slug=slug)
        elif action in ("role", "budget"):
            form = (MemberRoleForm if action == "role" else MemberBudgetForm)(request.POST)
            target_id = request.POST.get("membership")
            if form.is_valid():
                target = get_object_or_404(Membership.objects.select_related("user"), pk=form.cleaned_data["membership"],
                                           workspace=workspace)
                try:
                    if action == "role":
                        member_role_set(membership=target, role=form.cleaned_data["role"], actor=request.user)
                        messages.success(request, f"{target.user.email} is now {target.get_role_display().lower()}.")
                    else:
                        member_budget_set(membership=target, monthly_budget=form.cleaned_data["monthly_budget"],
                                          actor=request.user)
                        messages.success(request, f"Member budget of {target.user.email} saved.")
                    return redirect("budgets:members", slug=slug)
                except BudgetInvalid as error:
                    errors[int(target.pk)] = error.message
                except MembershipError as error:
                    errors[int(target.pk)] = str(error)
            else:
                try:
                    errors[int(target_id)] = "; ".join(e for errs in form.errors.values() for e in errs)
                except (TypeError, ValueError):
                    messages.error(request, "That member was not found.")
    used = period_used(workspace=workspace)
    rows = []
    for m in workspace.memberships.select_related("user").order_by("created_at"):
        is_self = m.pk == membership.pk
        # The owner manages everyone else; an admin manages members (not other admins, not the owner).
        manages = membership.can_manage_billing and not is_self and m.role != Membership.OWNER and (
            membership.role == Membership.OWNER or m.role == Membership.MEMBER)
        budgets = membership.can_manage_billing and not member_budget_refusal(target=m, actor=membership)
        rows.append({"membership": m, "meter": _meter(used.get((MEMBER, m.pk), 0), m.monthly_budget),
                     "error": errors.get(m.pk), "is_self": is_self, "manages": manages, "budgets": budgets})
    return render(request, "budgets/members.html", {
        "rows": rows, "add_form": add_form, "can_manage": membership.can_manage_billing, "me": membership,
        "invitations": invitations_pending(workspace=workspace) if membership.can_manage_billing else [],
        "now": timezone.now(),
        "roles": [(Membership.MEMBER, "Member"), (Membership.ADMIN, "Admin")],
    })
