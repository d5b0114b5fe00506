"""Every e-mail the portal sends: a subject/text/html triplet under templates/emails/, absolute links
built from SITE_URL, sent through the configured backend (console in `make run`, SMTP in
production). Callers send after commit (transaction.on_commit), never inside a money transaction."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def email_render(*, template: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of templates/emails/<template>_subject.txt, .txt and .html."""
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    return (subject, render_to_string(f"emails/{template}.txt", context),
            render_to_string(f"emails/{template}.html", context))


def email_send(*, template: str, context: dict, to: list[str],
               attachments: list[tuple[str, bytes, str]] = ()) -> int:
    subject, text, html = email_render(template=template, context=context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to)
    message.attach_alternative(html, "text/html")
    for name, content, mimetype in attachments:
        message.attach(name, content, mimetype)
    return message.send()
