"""The Usage page's runs table pages both ways: "Older runs" and "Newer runs" (issue 10 section 2)."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import PASSWORD

from .test_export import make_run

URL = "/w/acme/settings/billing/usage/"


def _page(client, query=""):
    body = client.get(URL + query).content.decode()
    ids = re.findall(r'href="/w/acme/runs/([^/]+)/"', body)
    links = {name: html.unescape(href) for name, href in
             re.findall(r'data-testid="(next-page|newer-page)" href="([^"]+)"', body)}
    return ids, links


@pytest.mark.django_db
def test_it_pages_to_older_runs_and_back_to_newer_ones(client, team):
    start = max(team.workspace.period_start, timezone.now() - timedelta(hours=2))
    for n in range(55):
        make_run(team, f"r{n:02d}", when=start + timedelta(seconds=n))
    assert client.login(email=team.owner.email, password=PASSWORD)
    first, links = _page(client)
    assert first[0] == "r54" and len(first) == 25 and "newer-page" not in links
    second, links2 = _page(client, links["next-page"])
    assert second[0] == "r29" and "newer-page" in links2
    third, links3 = _page(client, links2["next-page"])
    assert third == [f"r{n:02d}" for n in range(4, -1, -1)] and "next-page" not in links3
    back, back_links = _page(client, links3["newer-page"])
    assert back == second
    top, top_links = _page(client, back_links["newer-page"])
    assert top == first and "newer-page" not in top_links
