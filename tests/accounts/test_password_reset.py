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
