"""A workspace that requires two-factor sign-in sends its owners and admins to enrol (or to enter
their code) before any of its pages: billing.tenancy.membership_for raises TwoFactorRequired, and
this turns it into that redirect, back to the page afterwards."""

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from billing.tenancy import TwoFactorRequired


class TwoFactorEnrolmentRedirect:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, TwoFactorRequired):
            return None
        messages.info(request, f"{exception.workspace.name} requires two-factor authentication for owners and "
                               f"admins. Set up an authenticator app to continue.")
        next_url = request.get_full_path() if request.method == "GET" else reverse("home")
        return redirect(reverse("accounts:two_factor") + "?" + urlencode({"next": next_url}))
