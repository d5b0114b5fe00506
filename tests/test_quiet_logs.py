"""A terminal that says what matters (issue 30): an ordinary 403 is one line without a traceback, a
login writes no django-axes lines, and WeasyPrint's HarfBuzz fallback notice is dropped while its
other warnings stay."""

import logging

import pytest

from tests.factories import PASSWORD


@pytest.mark.django_db
def test_a_403_is_one_line_without_a_traceback(client, team, caplog):
    assert client.login(email=team.member.email, password=PASSWORD)
    with caplog.at_level(logging.INFO):
        response = client.get("/w/acme/settings/billing/buy/")
    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /w/acme/settings/billing/buy/"
    assert record.exc_info is None and "Traceback" not in caplog.text


@pytest.mark.django_db
def test_a_login_writes_no_axes_lines(client, team, caplog):
    with caplog.at_level(logging.INFO):
        response = client.post("/accounts/login/", {"username": team.owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert not [r for r in caplog.records if r.name.startswith("axes")]


def test_weasyprint_keeps_its_warnings_but_not_the_harfbuzz_fallback(caplog):
    weasyprint = logging.getLogger("weasyprint")
    with caplog.at_level(logging.INFO):
        weasyprint.warning('Using fontTools instead of HarfBuzz-Subset for font "DejaVu Sans". This will be '
                           "unsupported in future versions of WeasyPrint.")
        weasyprint.warning("Ignored `foo: bar` at 1:1, unknown property.")
    assert [r.getMessage() for r in caplog.records] == ["Ignored `foo: bar` at 1:1, unknown property."]
