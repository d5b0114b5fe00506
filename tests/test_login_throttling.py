"""Logins resist guessing (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords an account is
locked, and separately the client IP, with a clear message, until the cooling-off period ends."""

from datetime import timedelta

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD


def _login(client, path, email, password, ip="203.0.113.7"):
    return client.post(path, {"username": email, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(team, path, settings):
    from billing.models import User

    User.objects.filter(pk=team.owner.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, path, team.owner.email, "wrong-password").status_code == 200
    assert _login(client, path, team.owner.email, "wrong-password").status_code == 429  # the limit-th failure
    response = _login(client, path, team.owner.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_the_lock_follows_the_account_across_ips_and_letter_case(team, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "/accounts/login/", team.owner.email.upper(), "wrong", ip=f"198.51.100.{attempt}")
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD, ip="192.0.2.99").status_code == 429
    # Another account from a fresh address is unaffected.
    assert _login(Client(), "/accounts/login/", team.admin.email, PASSWORD, ip="192.0.2.100").status_code == 302


@pytest.mark.django_db
def test_the_lock_follows_an_ip_across_accounts(team, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "/accounts/login/", f"guess{attempt}@example.com", "wrong", ip="203.0.113.50")
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD, ip="203.0.113.50").status_code == 429
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD, ip="203.0.113.51").status_code == 302


@pytest.mark.django_db
def test_the_lock_lifts_after_the_cooling_off_period(team, settings):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "/accounts/login/", team.owner.email, "wrong")
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_a_success_resets_the_count(team, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(Client(), "/accounts/login/", team.owner.email, "wrong")
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(Client(), "/accounts/login/", team.owner.email, "wrong")
    assert _login(Client(), "/accounts/login/", team.owner.email, PASSWORD).status_code == 302


@pytest.mark.parametrize("password", ["short1", "password123", "12345678901", "owner@acme.test"])
def test_djangos_standard_password_validators_apply(password):
    from billing.models import User

    with pytest.raises(ValidationError):
        validate_password(password, user=User(email="owner@acme.test"))


def test_a_good_password_passes_the_validators():
    validate_password("correct-horse-battery-9")
