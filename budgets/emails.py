"""Alert e-mails to the workspace's owner and admins: subject/text/html templates under templates/emails/."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from billing.models import Membership

from .models import BudgetAlert
from .selectors import alert_text, scope_labels


def alert_recipients(*, workspace) -> list[str]:
    return list(Membership.objects.filter(workspace=workspace, role__in=[Membership.OWNER, Membership.ADMIN])
                .order_by("created_at").values_list("user__email", flat=True))


def alert_email_send(*, alert_id: int, state: str, used: int, limit: int) -> int:
    alert = BudgetAlert.objects.select_related("workspace").filter(pk=alert_id).first()
    if alert is None:
        return 0
    workspace = alert.workspace
    recipients = alert_recipients(workspace=workspace)
    if not recipients:
        return 0
    label = scope_labels(workspace=workspace, alerts=[alert]).get((alert.scope, alert.scope_id), "")
    context = {
        "alert": alert, "state": state, "resolved": state == "resolved", "used": used, "limit": limit,
        "label": label, "workspace": workspace, "text": alert_text(alert=alert, label=label),
        "percent": used * 100 // limit if limit else 0,
        "alerts_url": settings.SITE_URL + reverse("budgets:alerts", kwargs={"slug": workspace.slug}),
    }
    subject = " ".join(render_to_string("emails/budget_alert_subject.txt", context).split())
    message = EmailMultiAlternatives(subject, render_to_string("emails/budget_alert.txt", context),
                                     settings.DEFAULT_FROM_EMAIL, recipients)
    message.attach_alternative(render_to_string("emails/budget_alert.html", context), "text/html")
    return message.send()
