"""Password reset with Django's views and the portal's templates: the link in the sent e-mail (text
and HTML, absolute from SITE_URL) sets a new password once; an unknown address gets exactly the
same answer as a known one. Password change for a signed-in user."""

import re
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.urls import reverse

from billing.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
NEW = "brand-new-passphrase-99"


def _request_reset(client, email):
    return client.post(reverse("password_reset"), {"email": email})


def test_the_reset_flow_works_from_the_sent_email(client, team, settings):
    settings.SITE_URL = "https://billing.example.com"
    response = _request_reset(client, team.member.email.upper())
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [team.member.email]
    link = re.search(r"https://billing\.example\.com/accounts/reset/\S+/", message.body).group(0)
    assert link in message.alternatives[0][0]
    page = client.get(urlparse(link).path, follow=True)
    assert page.status_code == 200 and "Choose a new password" in page.content.decode()
    set_url = page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response.url == reverse("password_reset_complete")
    assert client.login(email=team.member.email, password=NEW)
    assert not client.login(email=team.member.email, password=PASSWORD)
    client.logout()
    again = client.get(urlparse(link).path, follow=True)  # used once
    assert "cannot be used" in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_as_a_known_one(client, team):
    known = _request_reset(client, team.member.email)
    unknown = _request_reset(client, "nobody@example.com")
    assert (known.status_code, known.url) == (unknown.status_code, unknown.url)
    assert client.get(known.url).content == client.get(unknown.url).content
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [team.member.email]


def test_someone_added_without_a_password_can_set_one_through_the_reset(client, team):
    from billing.services import member_add, user_get_or_create

    scripted = user_get_or_create(email="scripted@acme.test")  # add_member without --password
    member_add(workspace=team.workspace, user=scripted)
    assert not scripted.has_usable_password()
    _request_reset(client, scripted.email)
    assert len(mail.outbox) == 1


def test_a_signed_in_user_changes_their_password(client, team):
    client.login(email=team.admin.email, password=PASSWORD)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and "Change password" in page.content.decode()
    response = client.post(reverse("password_change"), {"old_password": "wrong", "new_password1": NEW,
                                                        "new_password2": NEW})
    assert response.status_code == 200
    response = client.post(reverse("password_change"), {"old_password": PASSWORD, "new_password1": NEW,
                                                        "new_password2": NEW})
    assert response.status_code == 302
    assert User.objects.get(pk=team.admin.pk).check_password(NEW)
    assert client.get(reverse("billing:overview", kwargs={"slug": "acme"})).status_code == 200  # still signed in


def test_the_pages_need_no_login_except_change(client):
    for name in ("password_reset", "password_reset_done", "password_reset_complete"):
        assert client.get(reverse(name)).status_code == 200
    assert client.get(reverse("password_change")).status_code == 302


def test_a_reset_for_a_look_alike_address_mails_nobody(client, team):
    """PostgreSQL's UPPER() maps the dotless "admın" to "ADMIN": a case-insensitive match alone would
    mail admin@ a link asked for by whoever typed the look-alike."""
    response = _request_reset(client, team.admin.email.replace("i", "ı"))
    assert response.status_code == 302
    assert mail.outbox == []


def test_one_address_gets_at_most_three_reset_emails_an_hour_and_the_same_answer(client, team):
    answers = {(r.status_code, r.url) for r in (_request_reset(client, team.member.email) for _ in range(12))}
    assert answers == {(302, reverse("password_reset_done"))}
    assert len(mail.outbox) == 3


def test_one_network_is_throttled_after_its_hourly_resets(client, team, settings):
    settings.PASSWORD_RESETS_PER_IP_PER_HOUR = 5
    for n in range(5):
        assert _request_reset(client, f"someone-{n}@example.com").status_code == 302
    refused = _request_reset(client, team.member.email)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many reset requests" in refused.content.decode()
    assert mail.outbox == []


@pytest.mark.needs_redis
def test_the_answer_is_the_same_for_a_known_and_an_unknown_address_with_the_mail_server_down(client, team, settings):
    """The e-mail leaves through the queue: the request never talks to the mail server, so an SMTP
    failure cannot tell a known address (it was a 500) from an unknown one (a 302)."""
    import json
    import socket

    import redis

    from config.celery import app

    with socket.socket() as probe:  # a port with nothing listening: the mail server is down
        probe.bind(("127.0.0.1", 0))
        settings.EMAIL_PORT = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    eager, app.conf.task_always_eager = app.conf.task_always_eager, False
    try:
        known = _request_reset(client, team.member.email)
        unknown = _request_reset(client, "nobody@example.com")
    finally:
        app.conf.task_always_eager = eager
    try:
        assert (known.status_code, known.url) == (unknown.status_code, unknown.url) == (302, reverse("password_reset_done"))
        queued = [json.loads(raw) for raw in broker.lrange("mail", 0, -1)]
        resets = [m for m in queued if m["headers"]["task"] == "accounts.tasks.send_password_reset"]
        assert sorted(json.loads(m["body"] if m["body"].startswith("[") else __import__("base64").b64decode(m["body"]))[0][0]
                      for m in resets) == ["member@acme.test", "nobody@example.com"]
    finally:
        broker.delete("mail")
