import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import AIModel, LedgerEntry, ModelRate, ToolRate, User, credits
from usage.services import NodeInput, run_authorize, run_complete


@pytest.fixture
def staff(db):
    return User.objects.create_user(email="staff@example.com", password="pw-staff-123", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.mark.django_db
def test_a_rate_change_adds_a_version_and_the_old_one_still_prices_earlier_runs(staff_client, team):
    membership = team.membership(team.member)
    before = run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="early")
    response = staff_client.post(reverse("admin:billing_aimodel_change", args=["gpt-4o"]), {
        "name": "GPT-4o", "sort_order": "0", "input_rate": "7.5", "output_rate": "20",
        "rates-TOTAL_FORMS": "0", "rates-INITIAL_FORMS": "0", "rates-MIN_NUM_FORMS": "0", "rates-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    versions = list(ModelRate.objects.filter(model_id="gpt-4o").order_by("effective_from"))
    assert len(versions) == 2
    assert (versions[0].input_nanos_per_token, versions[0].output_nanos_per_token) == (5000, 15000)
    assert (versions[1].input_nanos_per_token, versions[1].output_nanos_per_token) == (7500, 20000)
    assert versions[1].created_by.email == "staff@example.com"

    nodes = [NodeInput("n", "gpt-4o", 1_000_000, 1_000_000)]
    early = run_complete(workspace=team.workspace, public_id="early", status="succeeded", nodes=nodes)
    assert early.credits == credits(5 + 15)  # authorized before the change: the old version
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="late")
    late = run_complete(workspace=team.workspace, public_id="late", status="succeeded", nodes=nodes)
    assert late.credits == credits("7.5") + credits(20)
    assert before.run.pk == early.pk


@pytest.mark.django_db
def test_a_rate_with_more_than_three_decimals_is_refused(staff_client):
    response = staff_client.post(reverse("admin:billing_aimodel_change", args=["gpt-4o"]), {
        "name": "GPT-4o", "sort_order": "0", "input_rate": "0.0001", "output_rate": "20",
        "rates-TOTAL_FORMS": "0", "rates-INITIAL_FORMS": "0", "rates-MIN_NUM_FORMS": "0", "rates-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 200
    assert "at most 3 decimal places" in response.content.decode()
    assert ModelRate.objects.filter(model_id="gpt-4o").count() == 1


@pytest.mark.django_db
def test_saving_the_same_rates_adds_no_version(staff_client):
    staff_client.post(reverse("admin:billing_aimodel_change", args=["gpt-4o"]), {
        "name": "GPT-4o (renamed)", "sort_order": "0", "input_rate": "5", "output_rate": "15",
        # The token-class rates as the form shows them (issue 28): gpt-4o's seeded cached rate.
        "cached_input_nanos_per_token": "2.5", "cache_write_nanos_per_token": "", "reasoning_nanos_per_token": "",
        "rates-TOTAL_FORMS": "0", "rates-INITIAL_FORMS": "0", "rates-MIN_NUM_FORMS": "0", "rates-MAX_NUM_FORMS": "1000",
    })
    assert AIModel.objects.get(pk="gpt-4o").name == "GPT-4o (renamed)"
    assert ModelRate.objects.filter(model_id="gpt-4o").count() == 1


@pytest.mark.django_db
def test_a_tool_rate_change_is_saved_as_a_new_version(staff_client):
    old = ToolRate.objects.get(tool="web_search")
    response = staff_client.post(reverse("admin:billing_toolrate_change", args=[old.pk]),
                                 {"tool": "web_search", "nanos_per_call": "0.02"})
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.nanos_per_call == credits("0.01")
    newest = ToolRate.objects.filter(tool="web_search").order_by("-effective_from").first()
    assert newest.pk != old.pk and newest.nanos_per_call == credits("0.02")


@pytest.mark.django_db
def test_the_adjust_action_writes_a_ledger_entry_with_the_reason_and_the_staff_user(staff_client, staff, team):
    changelist = reverse("admin:billing_workspace_changelist")
    response = staff_client.post(changelist, {"action": "adjust_credits", "_selected_action": [team.workspace.pk]})
    url = reverse("admin:billing_workspace_adjust_credits", args=[team.workspace.pk])
    assert response.status_code == 302 and response["Location"] == url
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"amount": "42.5", "reason": "Outage compensation"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get(workspace=team.workspace, kind="adjustment")
    assert entry.amount == credits("42.5") and entry.reason == "Outage compensation" and entry.actor == staff
    assert entry.bucket == "purchased"


@pytest.mark.django_db
def test_the_adjust_form_requires_a_reason_and_a_valid_amount(staff_client, team):
    url = reverse("admin:billing_workspace_adjust_credits", args=[team.workspace.pk])
    assert staff_client.post(url, {"amount": "5", "reason": " "}).status_code == 200
    assert staff_client.post(url, {"amount": "1.5e400", "reason": "x"}).status_code == 200
    assert staff_client.post(url, {"amount": "-1", "reason": "too much"}).status_code == 200  # purchased is 0
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()


@pytest.mark.django_db
def test_the_ledger_is_read_only_and_searchable(staff_client, team):
    entry = LedgerEntry.objects.filter(workspace=team.workspace).first()
    assert staff_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    page = staff_client.get(reverse("admin:billing_ledgerentry_change", args=[entry.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert staff_client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    listing = staff_client.get(reverse("admin:billing_ledgerentry_changelist"), {"q": "plan credits", "kind__exact": "grant"})
    assert listing.status_code == 200 and "5,000" in listing.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["user", "workspace", "plan", "creditpack", "aimodel", "modelrate", "toolrate",
                                  "ledgerentry", "purchase", "auditevent", "membership", "wallet"])
def test_every_admin_page_renders(staff_client, team, name):
    assert staff_client.get(reverse(f"admin:billing_{name}_changelist")).status_code == 200


@pytest.mark.django_db
def test_the_workspace_page_shows_the_wallet_in_credits(staff_client, team):
    page = staff_client.get(reverse("admin:billing_workspace_change", args=[team.workspace.pk])).content.decode()
    assert "5,000" in page and "Adjust credits" in page


@pytest.mark.django_db
def test_plans_export_credits_as_decimals(staff_client):
    response = staff_client.post(reverse("admin:billing_plan_export"), {"format": "0", "resource": "0",
                                                                        "planresource_id": "on", "planresource_monthly_credits": "on"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "monthly_credits" in text and "5000" in text and "5000000000000" not in text


@pytest.mark.django_db
def test_a_rate_import_only_adds_versions(staff):
    from tablib import Dataset

    from billing.admin import ModelRateResource, ToolRateResource

    data = Dataset(headers=["model", "input_rate_per_million", "output_rate_per_million", "effective_from"])
    data.append(["gpt-4o", "5", "15", ""])  # unchanged: skipped
    data.append(["claude-opus-4", "25.125", "140", "2020-01-01 00:00:00"])  # effective now, not in the past
    result = ModelRateResource().import_data(data, dry_run=False, user=staff)
    assert not result.has_errors() and not result.has_validation_errors()
    assert ModelRate.objects.filter(model_id="gpt-4o").count() == 1
    newest = ModelRate.objects.filter(model_id="claude-opus-4").order_by("-effective_from").first()
    assert newest.input_nanos_per_token == 25125 and newest.effective_from > timezone.now().replace(year=2025)
    assert ModelRate.objects.filter(model_id="claude-opus-4").count() == 2

    bad = Dataset(headers=["model", "input_rate_per_million", "output_rate_per_million"])
    bad.append(["gpt-4o", "0.0001", "1"])
    assert ModelRateResource().import_data(bad, dry_run=False, user=staff).has_errors() or \
        ModelRateResource().import_data(bad, dry_run=True).has_validation_errors()

    tools = Dataset(headers=["tool", "credits_per_call"])
    tools.append(["web_search", "0.015"])
    assert not ToolRateResource().import_data(tools, dry_run=False, user=staff).has_errors()
    assert ToolRate.objects.filter(tool="web_search").count() == 2


@pytest.mark.django_db
def test_adding_back_a_removed_member_is_a_form_error_that_says_how(staff_client, team):
    from billing.members import member_remove
    from billing.models import Membership

    member_remove(membership=team.membership(team.member), actor=team.membership(team.owner))
    now = timezone.now()
    response = staff_client.post(reverse("admin:billing_membership_add"), {
        "workspace": team.workspace.pk, "user": team.member.pk, "role": "member", "monthly_budget": "",
        "created_at_0": now.strftime("%Y-%m-%d"), "created_at_1": now.strftime("%H:%M:%S"),
    })
    assert response.status_code == 200  # the form again, not a server error
    page = response.content.decode()
    assert "member@acme.test was removed from this workspace on" in page
    assert "invite them again from Settings -&gt; Members" in page
    rows = Membership.all_objects.filter(workspace=team.workspace, user=team.member)
    assert [(row.removed_at is not None) for row in rows] == [True]  # nothing added, nothing restored


@pytest.mark.django_db
def test_a_membership_added_or_changed_by_staff_is_audited(staff_client, staff, team, outsider):
    """Memberships saved in the admin wrote no audit event (issue 25): staff changes are as visible
    as an owner's."""
    from billing.models import AuditEvent, Membership

    now = timezone.now()
    response = staff_client.post(reverse("admin:billing_membership_add"), {
        "workspace": team.workspace.pk, "user": outsider.pk, "role": "member", "monthly_budget": "12",
        "created_at_0": now.strftime("%Y-%m-%d"), "created_at_1": now.strftime("%H:%M:%S"),
    })
    assert response.status_code == 302
    added = Membership.objects.get(workspace=team.workspace, user=outsider)
    assert AuditEvent.objects.filter(workspace=team.workspace, action="member.add", actor=staff,
                                     detail__email=outsider.email).count() == 1
    response = staff_client.post(reverse("admin:billing_membership_change", args=[added.pk]), {
        "workspace": team.workspace.pk, "user": outsider.pk, "role": "admin", "monthly_budget": "12",
        "created_at_0": now.strftime("%Y-%m-%d"), "created_at_1": now.strftime("%H:%M:%S"),
    })
    assert response.status_code == 302
    change = AuditEvent.objects.filter(workspace=team.workspace, action="member.staff_change", actor=staff).first()
    assert change.before == {"role": "member"} and change.detail == {"email": outsider.email, "role": "admin"}
    assert change.actor_kind == "staff"  # the workspace's audit log says "staff", not who
    assert Membership.objects.get(pk=added.pk).role == "admin"


@pytest.mark.django_db
def test_the_model_form_edits_the_class_rates_as_a_new_version(staff_client):
    page = staff_client.get(reverse("admin:billing_aimodel_change", args=["claude-sonnet-4"])).content.decode()
    assert 'name="cached_input_nanos_per_token"' in page and 'value="0.6"' in page and 'value="7.5"' in page
    response = staff_client.post(reverse("admin:billing_aimodel_change", args=["claude-sonnet-4"]), {
        "name": "Claude Sonnet 4", "sort_order": "2", "input_rate": "6", "output_rate": "30",
        "cached_input_nanos_per_token": "0.5", "cache_write_nanos_per_token": "7.5", "reasoning_nanos_per_token": "",
        "rates-TOTAL_FORMS": "0", "rates-INITIAL_FORMS": "0", "rates-MIN_NUM_FORMS": "0", "rates-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    newest = ModelRate.objects.filter(model_id="claude-sonnet-4").order_by("-effective_from").first()
    assert (newest.cached_input_nanos_per_token, newest.cache_write_nanos_per_token,
            newest.reasoning_nanos_per_token) == (500, 7500, None)
    assert ModelRate.objects.filter(model_id="claude-sonnet-4").count() == 2


@pytest.mark.django_db
def test_a_rate_import_sets_class_rates_and_a_file_without_them_keeps_them(staff):
    from tablib import Dataset

    from billing.admin import ModelRateResource

    data = Dataset(headers=["model", "input_rate_per_million", "output_rate_per_million",
                            "cached_input_rate_per_million", "cache_write_rate_per_million",
                            "reasoning_rate_per_million"])
    data.append(["claude-sonnet-4", "6", "30", "0.6", "7.5", ""])  # as seeded: skipped
    data.append(["gpt-4o", "5", "15", "2", "", "20"])
    result = ModelRateResource().import_data(data, dry_run=False, user=staff)
    assert not result.has_errors() and not result.has_validation_errors()
    assert ModelRate.objects.filter(model_id="claude-sonnet-4").count() == 1
    newest = ModelRate.objects.filter(model_id="gpt-4o").order_by("-effective_from").first()
    assert (newest.cached_input_nanos_per_token, newest.cache_write_nanos_per_token,
            newest.reasoning_nanos_per_token) == (2000, None, 20000)

    old_file = Dataset(headers=["model", "input_rate_per_million", "output_rate_per_million"])
    old_file.append(["claude-sonnet-4", "6", "31"])
    assert not ModelRateResource().import_data(old_file, dry_run=False, user=staff).has_errors()
    newest = ModelRate.objects.filter(model_id="claude-sonnet-4").order_by("-effective_from").first()
    assert (newest.output_nanos_per_token, newest.cached_input_nanos_per_token, newest.cache_write_nanos_per_token) == (
        31000, 600, 7500)
