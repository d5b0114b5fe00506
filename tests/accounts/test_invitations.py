"""Invitations: the e-mailed link (text and HTML, absolute, from SITE_URL) lets a new person set a
password or an existing user accept; expired, reused, tampered and superseded links are refused;
pending invitations count against the plan's member cap; an invitation opens one workspace only."""

import re
from urllib.parse import urlparse
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.urls import reverse
from django.utils import timezone

from billing.members import (MemberLimitReached, invitation_create, invitation_token,
                             seats_taken)
from billing.models import AuditEvent, Invitation, Membership, User
from billing.services import member_add, user_get_or_create
from tests.factories import PASSWORD, make_workspace

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-long-new-passphrase-7"


def _invite(team, capture, email="newcomer@example.com", role="member", actor=None):
    with capture(execute=True):
        return invitation_create(workspace=team.workspace, email=email, role=role, actor=actor or team.owner)


def _link_from(message) -> str:
    return re.search(r"https?://\S+/invitations/\S+/", message.body).group(0)


def _path(url: str) -> str:
    return urlparse(url).path


def test_it_emails_a_link_with_text_and_html_parts_built_from_site_url(team, settings,
                                                                      django_capture_on_commit_callbacks):
    settings.SITE_URL = "https://billing.example.com"
    _invite(team, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newcomer@example.com"]
    assert "Acme Inc" in message.subject
    link = _link_from(message)
    assert link.startswith("https://billing.example.com/invitations/")
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and link in html.replace("&amp;", "&")


def test_a_new_person_sets_a_password_and_lands_in_the_workspace_as_a_member(client, team,
                                                                            django_capture_on_commit_callbacks):
    _invite(team, django_capture_on_commit_callbacks)
    path = _path(_link_from(mail.outbox[0]))
    page = client.get(path)
    assert page.status_code == 200 and "Set password and join" in page.content.decode()
    response = client.post(path, {"name": "Nina New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("billing:overview", kwargs={"slug": "acme"})
    user = User.objects.get(email="newcomer@example.com")
    assert user.check_password(NEW_PASSWORD) and user.first_name == "Nina"
    assert Membership.objects.get(workspace=team.workspace, user=user).role == "member"
    assert client.get(response.url).status_code == 200  # signed in
    assert AuditEvent.objects.filter(workspace=team.workspace, action="invitation.accept", actor=user).exists()


def test_a_weak_or_mismatched_password_is_a_form_error_and_changes_nothing(client, team,
                                                                          django_capture_on_commit_callbacks):
    _invite(team, django_capture_on_commit_callbacks)
    path = _path(_link_from(mail.outbox[0]))
    response = client.post(path, {"password1": "short", "password2": "short"})
    assert response.status_code == 200 and "too short" in response.content.decode()
    response = client.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD + "x"})
    assert response.status_code == 200 and "differ" in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()
    assert Invitation.objects.get().accepted_at is None


def test_an_existing_user_accepts_while_signed_in(client, team, outsider, django_capture_on_commit_callbacks):
    _invite(team, django_capture_on_commit_callbacks, email=outsider.email, role="admin")
    path = _path(_link_from(mail.outbox[0]))
    assert "Sign in to accept" in client.get(path).content.decode()  # not signed in: asked to sign in
    assert client.post(path).status_code == 200 and not Membership.objects.filter(user=outsider,
                                                                                  workspace=team.workspace).exists()
    client.login(email=outsider.email, password="pw-outsider-1")
    assert "Accept and join" in client.get(path).content.decode()
    response = client.post(path)
    assert response.status_code == 302
    assert Membership.objects.get(workspace=team.workspace, user=outsider).role == "admin"


def test_a_signed_in_user_with_another_address_cannot_use_it(client, team, outsider,
                                                           django_capture_on_commit_callbacks):
    _invite(team, django_capture_on_commit_callbacks)
    path = _path(_link_from(mail.outbox[0]))
    client.login(email=outsider.email, password="pw-outsider-1")
    assert "you are signed in as" in client.get(path).content.decode()
    assert client.post(path).status_code == 403
    assert not Membership.objects.filter(workspace=team.workspace, user=outsider).exists()
    assert Invitation.objects.get().accepted_at is None


def _accept_new(client, path):
    return client.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


def test_a_used_link_is_refused(client, team, django_capture_on_commit_callbacks):
    _invite(team, django_capture_on_commit_callbacks)
    path = _path(_link_from(mail.outbox[0]))
    assert _accept_new(client, path).status_code == 302
    client.logout()
    response = client.get(path)
    assert response.status_code == 410 and "already used" in response.content.decode()
    assert _accept_new(client, path).status_code == 410
    assert Membership.objects.filter(workspace=team.workspace, user__email="newcomer@example.com").count() == 1


def test_an_expired_link_is_refused(client, team, django_capture_on_commit_callbacks):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    path = _path(_link_from(mail.outbox[0]))
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(path)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert _accept_new(client, path).status_code == 410
    assert not User.objects.filter(email="newcomer@example.com").exists()


def test_a_link_signed_more_than_seven_days_ago_is_refused_even_if_the_row_says_otherwise(
        client, team, django_capture_on_commit_callbacks, monkeypatch):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    eight_days_ago = timezone.now().timestamp() - 8 * 86400
    monkeypatch.setattr(signing.time, "time", lambda: eight_days_ago)
    old_token = invitation_token(invitation=invitation)
    monkeypatch.undo()
    response = client.get(reverse("accounts:invitation", kwargs={"token": old_token}))
    assert response.status_code == 410 and "expired" in response.content.decode()


def test_a_tampered_link_is_refused(client, team, django_capture_on_commit_callbacks):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    other = make_workspace(slug="globex")
    other_invitation = _invite(other, django_capture_on_commit_callbacks, email="x@example.com")
    token = invitation_token(invitation=invitation)
    forged = signing.dumps({"i": other_invitation.pk, "n": invitation.nonce}, salt="wrong-salt")
    payload, rest = token.split(":", 1)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged,
                signing.b64_encode(b'{"i":%d,"n":"%s"}' % (other_invitation.pk, invitation.nonce.encode())).decode()
                + ":" + rest, "not-a-token"):
        response = client.get(reverse("accounts:invitation", kwargs={"token": bad}))
        assert response.status_code == 404, bad
        assert _accept_new(client, reverse("accounts:invitation", kwargs={"token": bad})).status_code == 404
    assert not User.objects.filter(email__in=["newcomer@example.com", "x@example.com"]).exists()


def test_resend_sends_a_new_link_and_the_old_one_stops_working(client, team, django_capture_on_commit_callbacks):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    first = _path(_link_from(mail.outbox[0]))
    client.login(email=team.owner.email, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:invitation_resend", kwargs={"slug": "acme",
                                                                            "invitation_id": invitation.pk}))
    assert response.status_code == 302 and len(mail.outbox) == 2
    second = _path(_link_from(mail.outbox[1]))
    assert first != second
    client.logout()
    assert client.get(first).status_code == 410
    assert _accept_new(client, second).status_code == 302


def test_revoke_makes_the_link_useless_and_frees_the_seat(client, team, django_capture_on_commit_callbacks):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    path = _path(_link_from(mail.outbox[0]))
    before = seats_taken(workspace=team.workspace)
    client.login(email=team.admin.email, password=PASSWORD)
    response = client.post(reverse("accounts:invitation_revoke", kwargs={"slug": "acme", "invitation_id": invitation.pk}))
    assert response.status_code == 302
    assert seats_taken(workspace=team.workspace) == before - 1
    client.logout()
    assert client.get(path).status_code == 410
    assert AuditEvent.objects.filter(action="invitation.revoke", actor=team.admin).exists()


def test_the_members_page_lists_pending_invitations_for_managers_only(client, team, django_capture_on_commit_callbacks):
    _invite(team, django_capture_on_commit_callbacks)
    url = reverse("budgets:members", kwargs={"slug": "acme"})
    client.login(email=team.owner.email, password=PASSWORD)
    page = client.get(url).content.decode()
    assert "Pending invitations" in page and "newcomer@example.com" in page and "Resend" in page
    client.login(email=team.member.email, password=PASSWORD)
    assert "newcomer@example.com" not in client.get(url).content.decode()


def test_pending_invitations_count_against_the_member_cap(team, django_capture_on_commit_callbacks):
    from billing.models import Plan

    Plan.objects.filter(pk="team").update(max_members=4)  # owner, admin, member: one seat left
    _invite(team, django_capture_on_commit_callbacks, email="first@example.com")
    with pytest.raises(MemberLimitReached):
        _invite(team, django_capture_on_commit_callbacks, email="second@example.com")
    with pytest.raises(MemberLimitReached):  # add_member (scripts) counts the invitation too
        member_add(workspace=team.workspace, user=user_get_or_create(email="third@example.com"))
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1
    # Inviting the same address again is a resend, not a second seat.
    _invite(team, django_capture_on_commit_callbacks, email="first@example.com", role="admin")
    assert Invitation.objects.get().role == "admin" and len(mail.outbox) == 2


def test_an_invitation_for_one_workspace_gives_no_access_to_another(client, team, django_capture_on_commit_callbacks):
    other = make_workspace(slug="globex")
    _invite(team, django_capture_on_commit_callbacks)
    _accept_new(client, _path(_link_from(mail.outbox[0])))
    assert client.get(reverse("billing:overview", kwargs={"slug": "acme"})).status_code == 200
    for name in ("billing:overview", "budgets:members", "usage:usage", "usage:tokens"):
        assert client.get(reverse(name, kwargs={"slug": other.workspace.slug})).status_code == 404, name
    other_invite = Invitation.objects.create(workspace=other.workspace, email="someone@example.com", role="member",
                                             nonce="n" * 32, invited_by=other.owner)
    for name in ("accounts:invitation_resend", "accounts:invitation_revoke"):
        url = reverse(name, kwargs={"slug": other.workspace.slug, "invitation_id": other_invite.pk})
        assert client.post(url).status_code == 404
        # Through their own workspace's URL, another workspace's invitation is not found either.
        assert client.post(reverse(name, kwargs={"slug": "acme", "invitation_id": other_invite.pk})).status_code in (403, 404)
    other_invite.refresh_from_db()
    assert other_invite.revoked_at is None


def test_only_owner_and_admins_manage_invitations(client, team, outsider, django_capture_on_commit_callbacks):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    url = reverse("accounts:invitation_revoke", kwargs={"slug": "acme", "invitation_id": invitation.pk})
    client.login(email=team.member.email, password=PASSWORD)
    assert client.post(url).status_code == 403
    client.login(email=outsider.email, password="pw-outsider-1")
    assert client.post(url).status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_staff_see_and_revoke_invitations_in_the_admin(client, team, django_capture_on_commit_callbacks):
    invitation = _invite(team, django_capture_on_commit_callbacks)
    staff = User.objects.create_superuser(email="staff@example.com", password=PASSWORD)
    client.login(email=staff.email, password=PASSWORD)
    changelist = reverse("admin:billing_invitation_changelist")
    assert "newcomer@example.com" in client.get(changelist).content.decode()
    response = client.post(changelist, {"action": "revoke", "_selected_action": [invitation.pk]})
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEvent.objects.filter(action="invitation.revoke", actor=staff).exists()


def test_a_downgrade_counts_pending_invitations(team, django_capture_on_commit_callbacks):
    from buying.plans import MemberCapExceeded, plan_change

    for n in range(8):  # 3 members + 8 invitations = 11 seats; Pro allows 10
        _invite(team, django_capture_on_commit_callbacks, email=f"p{n}@example.com")
    with pytest.raises(MemberCapExceeded, match="pending invitations count"):
        plan_change(workspace=team.workspace, plan_id="pro", actor=team.owner)
    Invitation.objects.filter(email="p0@example.com").update(revoked_at=timezone.now())
    assert plan_change(workspace=team.workspace, plan_id="pro", actor=team.owner).plan_id == "pro"
