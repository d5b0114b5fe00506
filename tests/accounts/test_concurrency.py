"""Concurrency claims of invitations, against PostgreSQL with threads: a link used from several tabs
at once makes one membership; invitations sent at once never together pass the plan's member cap;
sign-ups at once with one address make one user and one workspace."""

import pytest

from accounts.services import EmailTaken, account_signup
from billing.members import InvitationInvalid, MemberLimitReached, invitation_accept, invitation_create, invitation_token
from billing.models import Invitation, Membership, Plan, User, Workspace
from tests.concurrency import run_at_once
from tests.factories import make_workspace

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_link_used_from_eight_tabs_at_once_makes_one_membership():
    team = make_workspace()
    invitation = invitation_create(workspace=team.workspace, email="tabs@example.com", role="member", actor=team.owner)
    token = invitation_token(invitation=invitation)
    results, errors = run_at_once(lambda i: invitation_accept(token=token, password="a-long-passphrase-1"), 8)
    assert len(results) == 1
    assert len(errors) == 7 and all(isinstance(e, InvitationInvalid) for e in errors), errors
    assert User.objects.filter(email="tabs@example.com").count() == 1
    assert Membership.objects.filter(workspace=team.workspace, user__email="tabs@example.com").count() == 1


def test_invitations_sent_at_once_never_pass_the_member_cap():
    team = make_workspace()
    Plan.objects.filter(pk="team").update(max_members=5)  # 3 members: 2 seats left
    results, errors = run_at_once(lambda i: invitation_create(workspace=team.workspace, email=f"p{i}@example.com",
                                                              role="member", actor=team.owner), 6)
    assert len(results) == 2
    assert len(errors) == 4 and all(isinstance(e, MemberLimitReached) for e in errors), errors
    assert Invitation.objects.filter(workspace=team.workspace).count() == 2


def test_sign_ups_at_once_with_one_address_make_one_user_and_one_workspace():
    results, errors = run_at_once(lambda i: account_signup(email="race@example.com", password="a-long-passphrase-1"), 6)
    assert len(results) == 1
    assert all(isinstance(e, EmailTaken) for e in errors), errors
    assert User.objects.filter(email="race@example.com").count() == 1
    assert Workspace.objects.filter(memberships__user__email="race@example.com").count() == 1
