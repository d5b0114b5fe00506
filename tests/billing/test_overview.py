import pytest
from django.urls import reverse

from billing.ledger import credits_adjust
from billing.models import credits
from tests.factories import PASSWORD


def _url(team):
    return reverse("billing:overview", kwargs={"slug": team.workspace.slug})


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["owner", "admin", "member"])
def test_it_shows_the_figures_to_every_member(client, team, persona):
    credits_adjust(workspace=team.workspace, amount=credits("123.45"), reason="Goodwill <b>credit</b>")
    client.login(email=getattr(team, persona).email, password=PASSWORD)
    response = client.get(_url(team))
    assert response.status_code == 200
    body = response.content.decode()
    assert "5,123.45" in body  # available: 5,000 monthly + 123.45 purchased
    # Headline cards keep the short form; the ledger table shows two decimals, exact in the tooltip.
    assert 'data-testid="monthly">5,000<' in body and 'data-testid="purchased">123.45<' in body
    assert '<span class="amount" title="123.45 credits">+123.45</span>' in body
    assert "Team plan" in body
    assert "Goodwill &lt;b&gt;credit&lt;/b&gt;" in body  # user text is escaped
    assert team.workspace.period_end.strftime("%b") in body


@pytest.mark.django_db
def test_it_is_404_for_an_outsider(client, team, outsider):
    client.login(email=outsider.email, password="pw-outsider-1")
    assert client.get(_url(team)).status_code == 404


@pytest.mark.django_db
def test_it_is_404_for_a_workspace_that_does_not_exist(client, team):
    client.login(email=team.owner.email, password=PASSWORD)
    assert client.get(reverse("billing:overview", kwargs={"slug": "nope"})).status_code == 404


@pytest.mark.django_db
def test_it_sends_anonymous_visitors_to_the_login_page(client, team):
    response = client.get(_url(team))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
