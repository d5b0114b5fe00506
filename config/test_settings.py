"""Test settings: the real PostgreSQL and Redis when reachable. Without a PostgreSQL server at
DATABASE_URL the tests run on the embedded one (config/embedded_db.py, data in var/test-postgres,
stopped when the test run ends). Under CI=true a missing service is an error at start, never a
fallback or a skip. Tests differ from production only where they must: eager Celery (tasks run in
the test's process), a fast password hasher, in-memory e-mail."""

import os
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from .embedded_db import embedded_start


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname or parse_qs(parsed.query).get("host", ["127.0.0.1"])[-1]
    port = parsed.port or default_port
    try:
        if host.startswith("/"):  # a Unix socket directory, as libpq names it
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(1)
                probe.connect(f"{host}/.s.PGSQL.{port}")
            return True
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


CI = os.environ.get("CI", "").lower() == "true"
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lenserfight")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
HAS_POSTGRES_SERVER = _reachable(os.environ["DATABASE_URL"], 5432)
HAS_REDIS = _reachable(os.environ["REDIS_URL"], 6379)
if CI and not (HAS_POSTGRES_SERVER and HAS_REDIS):
    missing = [name for name, ok in (("PostgreSQL", HAS_POSTGRES_SERVER), ("Redis", HAS_REDIS)) if not ok]
    raise RuntimeError(f"CI=true but {', '.join(missing)} is not reachable (DATABASE_URL / REDIS_URL).")
if not HAS_POSTGRES_SERVER:
    var_dir = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    os.environ["DATABASE_URL"] = embedded_start(data_dir=var_dir / "test-postgres", stop_at_exit=True)
if not HAS_REDIS:
    os.environ["REDIS_URL"] = ""

from .settings import *  # noqa: E402,F401,F403

CELERY_TASK_ALWAYS_EAGER = True
BILLING_TEST_CHECKOUT = True
BILLING_TAX_RATES = {"DE": "19", "FR": "20", "GB": "20"}  # the table docs/tax.md uses as its example
CELERY_TASK_EAGER_PROPAGATES = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
STRIPE_WEBHOOK_UUID = "6f1e2a4c-3b5d-4e7f-8a9b-0c1d2e3f4a5b"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405  (Django's test client)
SSO_ALLOW_LOOPBACK = True  # the tests start a real OpenID provider on 127.0.0.1 (tests/oidc_provider/)
# The tests serve static files from the apps (no collectstatic); WhiteNoise still looks at STATIC_ROOT
# once per server and warns "No directory at ..." when it is missing (pytest.ini turns that into an error).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
