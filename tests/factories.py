"""Test data builders."""

from dataclasses import dataclass

from billing.models import Membership, User, Workspace, credits
from billing.services import member_add, user_get_or_create
from budgets.workspaces import workspace_create

PASSWORD = "correct-horse-9"


@dataclass
class Team:
    workspace: Workspace
    owner: User
    admin: User
    member: User

    def membership(self, user: User) -> Membership:
        return Membership.objects.select_related("workspace__plan", "workspace__budget").get(
            workspace=self.workspace, user=user)


def make_workspace(*, slug: str = "acme", plan: str = "team", now=None) -> Team:
    owner = user_get_or_create(email=f"owner@{slug}.test", password=PASSWORD, name="Olivia Owner")
    workspace = workspace_create(slug=slug, name=slug.title() + " Inc", owner=owner, plan_id=plan, now=now)
    admin = user_get_or_create(email=f"admin@{slug}.test", password=PASSWORD, name="Adam Admin")
    member = user_get_or_create(email=f"member@{slug}.test", password=PASSWORD, name="Mia Member")
    member_add(workspace=workspace, user=admin, role=Membership.ADMIN)
    member_add(workspace=workspace, user=member, role=Membership.MEMBER)
    return Team(workspace, owner, admin, member)


__all__ = ["credits"]
