"""Removing a member, leaving, changing a role and transferring ownership: who may do what, the
tokens of a removed member stop at once, their open runs still finish, every change is an audit
event with its actor, and the workspace keeps exactly one owner."""

import pytest
from django.core import mail
from django.urls import reverse

from billing.members import invitation_create
from billing.models import AuditEvent, Membership
from tests.factories import PASSWORD
from tests.usage.conftest import TWO_NODES, Api, authorize
from usage.models import DeveloperToken, Run
from usage.tokens import token_create

pytestmark = pytest.mark.django_db


def _login(client, user):
    password = "pw-outsider-1" if user.email == "outsider@example.com" else PASSWORD
    assert client.login(email=user.email, password=password)


def _remove_url(membership):
    return reverse("accounts:member_remove", kwargs={"slug": membership.workspace.slug, "membership_id": membership.pk})


def test_removing_a_member_stops_their_token_at_once_and_lets_their_open_run_finish(client, team):
    member = team.membership(team.member)
    api = Api(token_create(membership=member, name="laptop").raw)
    engine = Api(token_create(membership=team.membership(team.owner), name="engine").raw)
    assert api.get("/v1/billing/balance").status_code == 200
    assert authorize(api, run_id="open-1").status_code in (200, 201)
    _login(client, team.owner)
    response = client.post(_remove_url(member))
    assert response.status_code == 302
    assert api.get("/v1/billing/balance").status_code == 401
    assert authorize(api, run_id="open-2").status_code == 401
    assert DeveloperToken.objects.get(membership=member).revoked_at is not None
    # The run they started is not cancelled: the engine completes it and the workspace is charged.
    assert engine.post("/v1/runs/open-1/complete", TWO_NODES).status_code == 200
    run = Run.objects.get(public_id="open-1")
    assert run.status == "succeeded" and run.credits > 0 and run.member_id == member.pk
    team.workspace.wallet.refresh_from_db()
    assert team.workspace.wallet.reserved == 0
    event = AuditEvent.objects.get(action="member.remove")
    assert event.actor == team.owner and event.detail["email"] == team.member.email
    members_page = client.get(reverse("budgets:members", kwargs={"slug": "acme"})).content.decode()
    assert f'data-member="{team.member.email}"' not in members_page and "was removed" in members_page


def test_a_removed_member_loses_every_page_of_the_workspace(client, team):
    member = team.membership(team.member)
    _login(client, team.admin)
    assert client.post(_remove_url(member)).status_code == 302
    _login(client, team.member)
    for name in ("billing:overview", "usage:usage", "budgets:members", "usage:tokens"):
        assert client.get(reverse(name, kwargs={"slug": "acme"})).status_code == 404, name
    assert "No workspace yet" in client.get("/", follow=True).content.decode()


def test_who_may_remove_whom(client, team, outsider):
    admin, member, owner = (team.membership(u) for u in (team.admin, team.member, team.owner))
    _login(client, team.member)
    assert client.post(_remove_url(admin)).status_code == 403
    _login(client, outsider)
    assert client.post(_remove_url(member)).status_code == 404
    _login(client, team.admin)
    client.post(_remove_url(owner))
    client.post(_remove_url(admin))  # themselves: that is "leave", not remove
    assert Membership.objects.filter(workspace=team.workspace).count() == 3
    other_admin = Membership.objects.create(workspace=team.workspace, user=outsider, role="admin")
    response = client.post(_remove_url(other_admin), follow=True)
    assert "Only the owner can remove an admin" in response.content.decode()
    _login(client, team.owner)
    assert client.post(_remove_url(other_admin)).status_code == 302
    assert not Membership.objects.filter(pk=other_admin.pk).exists()


def test_a_member_can_leave_but_the_owner_cannot(client, team):
    token = token_create(membership=team.membership(team.member))
    _login(client, team.member)
    leave = reverse("accounts:member_leave", kwargs={"slug": "acme"})
    assert client.post(leave).status_code == 302
    assert not Membership.objects.filter(workspace=team.workspace, user=team.member).exists()
    assert Api(token.raw).get("/v1/billing/balance").status_code == 401
    assert AuditEvent.objects.filter(action="member.leave", actor=team.member).exists()
    _login(client, team.owner)
    response = client.post(leave, follow=True)
    assert "transfer ownership" in response.content.decode()
    assert team.workspace.owner == team.owner


def test_a_former_member_invited_again_comes_back_on_the_same_row_with_old_tokens_still_dead(
        client, team, django_capture_on_commit_callbacks):
    member = team.membership(team.member)
    old = token_create(membership=member)
    _login(client, team.owner)
    client.post(_remove_url(member))
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(workspace=team.workspace, email=team.member.email, role="admin", actor=team.owner)
    link = mail.outbox[-1].body.split("/invitations/")[1].split("/")[0]
    _login(client, team.member)
    assert client.post(reverse("accounts:invitation", kwargs={"token": link})).status_code == 302
    back = Membership.objects.get(workspace=team.workspace, user=team.member)
    assert back.pk == member.pk and back.role == "admin"
    assert Api(old.raw).get("/v1/billing/balance").status_code == 401


def test_role_changes_are_audited_and_only_the_owner_changes_an_admin(client, team):
    url = reverse("budgets:members", kwargs={"slug": "acme"})
    admin = team.membership(team.admin)
    member = team.membership(team.member)
    _login(client, team.admin)
    response = client.post(url, {"action": "role", "membership": admin.pk, "role": "member"})
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert client.post(url, {"action": "role", "membership": member.pk, "role": "admin"}).status_code == 302
    member.refresh_from_db()
    assert member.role == "admin"
    _login(client, team.owner)
    assert client.post(url, {"action": "role", "membership": admin.pk, "role": "member"}).status_code == 302
    admin.refresh_from_db()
    assert admin.role == "member"
    actors = set(AuditEvent.objects.filter(action="member.role_set").values_list("actor__email", flat=True))
    assert actors == {team.admin.email, team.owner.email}
    assert response.status_code == 200 and "Only the owner" in response.content.decode()


def test_ownership_transfer_needs_the_owner_and_a_confirmation(client, team):
    target = team.membership(team.member)
    url = reverse("accounts:ownership_transfer", kwargs={"slug": "acme", "membership_id": target.pk})
    _login(client, team.admin)
    client.post(url, {"confirm": "on"})
    assert team.workspace.owner == team.owner
    _login(client, team.owner)
    page = client.get(url)
    assert page.status_code == 200 and "becomes the owner" in page.content.decode()
    assert client.post(url, {}).status_code == 400  # no confirmation: nothing changes
    assert team.workspace.owner == team.owner
    assert client.post(url, {"confirm": "on"}).status_code == 302
    assert team.workspace.owner == team.member
    assert Membership.objects.get(workspace=team.workspace, user=team.owner).role == "admin"
    assert Membership.objects.filter(workspace=team.workspace, role="owner").count() == 1
    event = AuditEvent.objects.get(action="workspace.ownership_transfer")
    assert event.actor == team.owner
    assert event.before == {"owner": team.owner.email, "new_owner_role": "member"}
    assert event.detail == {"owner": team.member.email, "previous_owner_role": "admin"}
    # The former owner is now an admin: a second transfer by them is refused.
    client.post(reverse("accounts:ownership_transfer", kwargs={"slug": "acme",
                                                               "membership_id": team.membership(team.admin).pk}),
                {"confirm": "on"})
    assert team.workspace.owner == team.member


def test_an_outsider_gets_404_for_every_membership_route(client, team, outsider):
    _login(client, outsider)
    member = team.membership(team.member)
    for url in (_remove_url(member), reverse("accounts:member_leave", kwargs={"slug": "acme"}),
                reverse("accounts:ownership_transfer", kwargs={"slug": "acme", "membership_id": member.pk})):
        assert client.post(url, {"confirm": "on"}).status_code == 404, url
    assert Membership.objects.filter(workspace=team.workspace).count() == 3


def test_remove_reads_both_roles_under_the_workspace_lock(team):
    """The roles were checked on rows loaded before the lock: an admin demoted meanwhile could still
    remove a member, and a member promoted meanwhile could be removed by an admin (issue 25)."""
    from billing.members import MembershipError, member_role_set
    from accounts.services import member_remove

    admin_as_loaded, member_as_loaded = team.membership(team.admin), team.membership(team.member)
    member_role_set(membership=team.membership(team.admin), role="member", actor=team.owner)  # demoted meanwhile
    with pytest.raises(MembershipError, match="Only the owner and admins"):
        member_remove(membership=member_as_loaded, actor=admin_as_loaded)
    member_role_set(membership=team.membership(team.admin), role="admin", actor=team.owner)
    member_role_set(membership=team.membership(team.member), role="admin", actor=team.owner)  # promoted meanwhile
    with pytest.raises(MembershipError, match="Only the owner can remove an admin"):
        member_remove(membership=member_as_loaded, actor=team.membership(team.admin))
    assert Membership.objects.filter(workspace=team.workspace).count() == 3


def test_a_role_change_reads_the_actors_role_under_the_workspace_lock(team):
    from billing.members import MembershipError, member_role_set

    member_role_set(membership=team.membership(team.admin), role="member", actor=team.owner)  # demoted meanwhile
    with pytest.raises(MembershipError, match="Only the owner and admins"):
        member_role_set(membership=team.membership(team.member), role="admin", actor=team.admin)
    assert team.membership(team.member).role == "member"
