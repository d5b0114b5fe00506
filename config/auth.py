"""Login throttling with django-axes (settings: "Login throttling" in config/settings.py)."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render


def login_username(request, credentials) -> str | None:
    """The account a login attempt names, as axes counts it: e-mail addresses are case-insensitive,
    so "Owner@X" and "owner@x" share one failure count."""
    username = (credentials or {}).get("username") or (request.POST.get("username") if request else None)
    return username.strip().lower() if username else None


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' lockout check for every login through a page (the login views pass the request).
    authenticate() without a request (Django's test client login(), a shell) has no client IP to
    count against: it goes on to ModelBackend unchecked instead of raising."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(request, original_response, credentials):
    """AXES_LOCKOUT_CALLABLE: the "too many attempts" page (429) with the cooling-off in minutes."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html",
                  {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}, status=429)
