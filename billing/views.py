from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from .selectors import recent_ledger
from .services import memberships_for
from .tenancy import membership_for


@login_required
def home(request):
    """Straight to the first workspace's billing overview; a user with none sees an explanation."""
    membership = memberships_for(request.user).first()
    if membership is None:
        return render(request, "billing/no_workspace.html")
    return redirect("billing:overview", slug=membership.workspace.slug)


@login_required
def overview(request, slug):
    membership = membership_for(request, slug)
    workspace = membership.workspace
    return render(request, "billing/overview.html", {
        "wallet": workspace.wallet,
        "ledger": recent_ledger(workspace=workspace),
    })
