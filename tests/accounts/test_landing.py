"""Where people land after login: the workspace they used last, staff without a workspace in the
admin, anyone else on a page that says how to get a workspace."""

import pytest
from django.urls import reverse

from billing.services import user_get_or_create
from budgets.workspaces import workspace_create
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client, email, password=PASSWORD):
    return client.post(reverse("login"), {"username": email, "password": password}, follow=True)


def test_it_lands_on_the_last_workspace_used(client, team):
    workspace_create(slug="zeta", name="Zeta", owner=team.member, plan_id="free", kind="personal")
    response = _login(client, team.member.email)
    assert response.redirect_chain[-1][0] == reverse("billing:overview", kwargs={"slug": "acme"})  # first by name
    client.get(reverse("usage:usage", kwargs={"slug": "zeta"}))
    client.logout()
    response = _login(client, team.member.email)
    assert response.redirect_chain[-1][0] == reverse("billing:overview", kwargs={"slug": "zeta"})


def test_a_workspace_they_left_is_not_where_they_land(client, team):
    workspace_create(slug="zeta", name="Zeta", owner=team.member, plan_id="free", kind="personal")
    client.login(email=team.member.email, password=PASSWORD)
    client.get(reverse("billing:overview", kwargs={"slug": "acme"}))
    client.post(reverse("accounts:member_leave", kwargs={"slug": "acme"}))
    client.logout()
    response = _login(client, team.member.email)
    assert response.redirect_chain[-1][0] == reverse("billing:overview", kwargs={"slug": "zeta"})


def test_staff_without_a_workspace_land_in_the_admin(client, db):
    staff = user_get_or_create(email="staff@example.com", password=PASSWORD)
    staff.is_staff = staff.is_superuser = True
    staff.save()
    response = _login(client, staff.email)
    assert response.redirect_chain[-1][0] == reverse("admin:index")


def test_someone_without_a_workspace_is_told_how_to_get_one(client, db, settings):
    settings.SIGNUP_ENABLED = False
    user_get_or_create(email="lonely@example.com", password=PASSWORD)
    page = _login(client, "lonely@example.com").content.decode()
    assert "No workspace yet" in page and "invite" in page
