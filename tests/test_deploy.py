"""`manage.py check --deploy` reports nothing with the production environment the README documents,
and the pages, Swagger UI and the admin carry the Content-Security-Policy."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def readme_production_env() -> dict:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"# production environment\n(.*?)```", readme, re.S).group(1)
    env = {}
    for line in block.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def _check_deploy(extra: dict) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "DATABASE_URL", "REDIS_URL")}
    env.update(readme_production_env())
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env.update(extra)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_readme_documents_the_https_settings():
    env = readme_production_env()
    for key in ("SESSION_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER"):
        assert key in env


def test_check_deploy_is_clean_with_the_documented_production_environment():
    result = _check_deploy({})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_a_missing_https_setting():
    result = _check_deploy({"SECURE_HSTS_SECONDS": "0", "BILLING_TEST_CHECKOUT": "true", "STRIPE_SECRET_KEY": ""})
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "buying.W001" in result.stderr


@pytest.mark.django_db
def test_pages_docs_and_admin_carry_the_content_security_policy(client, team):
    from billing.models import User

    User.objects.filter(pk=team.owner.pk).update(is_staff=True, is_superuser=True)
    client.login(email=team.owner.email, password=PASSWORD)
    for path in ("/accounts/login/", "/w/acme/settings/billing/", "/v1/docs/", "/admin/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_make_run_serves_loopback_only_unless_host_says_otherwise():
    """The demo has public passwords and a staff superuser: `make run` on 0.0.0.0 let anyone on the
    network open the admin by sending `Host: 127.0.0.1` (issue 25). The port check binds the same
    address as the server."""
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert 'HOST="${HOST:-127.0.0.1}"' in script
    assert re.search(r'runserver "\$HOST:\$PORT"', script)
    assert 'probe.bind((host, port))' in script
    assert "0.0.0.0:" not in script
