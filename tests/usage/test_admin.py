import pytest

from billing.models import User
from usage.admin import RunResource
from usage.models import DeveloperToken
from usage.services import NodeInput
from usage.tokens import token_create

from .test_export import make_run


@pytest.fixture
def staff_client(client, db):
    User.objects.create_superuser(email="staff@lenserfight.test", password="pw-staff-12")
    client.login(email="staff@lenserfight.test", password="pw-staff-12")
    return client


@pytest.mark.django_db
def test_it_exports_runs_with_exact_credits_and_safe_text(team):
    from datetime import datetime, timezone as dt_timezone

    make_run(team, "x", when=datetime.now(dt_timezone.utc), workflow="=cmd()",
             nodes=[NodeInput("n", "gpt-4o", 1, 1)])
    dataset = RunResource().export()
    row = dict(zip(dataset.headers, dataset[0]))
    assert row["workflow"] == "'=cmd()" and row["credits"] == "0.00002" and row["id"] == "x"


@pytest.mark.django_db
def test_the_admin_pages_open(staff_client, team):
    from datetime import datetime, timezone as dt_timezone

    run = make_run(team, "x", when=datetime.now(dt_timezone.utc))
    token = token_create(membership=team.membership(team.member)).token
    for url in ("/admin/usage/run/", f"/admin/usage/run/{run.pk}/change/", "/admin/budgets/agent/",
                "/admin/usage/workflow/", "/admin/usage/developertoken/", f"/admin/usage/developertoken/{token.pk}/change/",
                "/admin/usage/dailyusage/", "/admin/usage/run/export/"):
        assert staff_client.get(url).status_code == 200, url
    response = staff_client.post("/admin/usage/developertoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    assert DeveloperToken.objects.get(pk=token.pk).revoked_at is not None
