from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People's side of the portal: sign-up, invitations, password reset and change, and the
    membership changes that span billing (memberships) and usage (developer tokens), single sign-on
    (its one model: a workspace's SSO connection) and two-factor sign-in (django-otp's devices).
    Memberships and invitations live with the workspace in billing."""

    name = "accounts"
