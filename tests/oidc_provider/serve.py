"""Start the test OpenID provider: `python -m tests.oidc_provider.serve` with OIDC_TEST_DIR (holding
signing-key.pem) and OIDC_TEST_PORT set. Migrates its SQLite database, creates the client and the
users in USERS, and serves on 127.0.0.1 until stopped."""

import os
import sys

CLIENT_ID = "lenserfight-portal"
CLIENT_SECRET = "provider-client-secret-42"
PASSWORD = "provider-pass-1"
# (e-mail, name, verified)
USERS = [
    ("owner@acme.test", "Olivia Owner", True),
    ("admin@acme.test", "Adam Admin", True),
    ("member@acme.test", "Mia Member", True),
    ("new@acme.test", "Nora New", True),
    ("late@acme.test", "Leo Late", True),
    ("unverified@acme.test", "Una Unverified", False),
    ("owner@outsider.test", "Oscar Outsider", True),
]
REDIRECT_URIS = ["http://127.0.0.1/accounts/sso/callback/", "http://localhost/accounts/sso/callback/",
                 "http://testserver/accounts/sso/callback/"]


def main():
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0, interactive=False)
    for email, name, verified in USERS:
        if not User.objects.filter(username=email).exists():
            User.objects.create_user(username=email, email=email, password=PASSWORD, first_name=name,
                                     last_name="" if verified else "unverified")
    if not Application.objects.filter(client_id=CLIENT_ID).exists():
        Application.objects.create(name="LenserFight Billing", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                   client_type=Application.CLIENT_CONFIDENTIAL,
                                   authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                                   redirect_uris=" ".join(REDIRECT_URIS), skip_authorization=True,
                                   algorithm=Application.RS256_ALGORITHM)
    print("ready", flush=True)
    run("127.0.0.1", int(os.environ["OIDC_TEST_PORT"]), get_wsgi_application(), threading=True)


if __name__ == "__main__":
    sys.exit(main())
