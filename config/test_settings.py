"""Test settings: the real PostgreSQL and Redis when reachable. Under CI=true a missing service is
an error at start, never a skip. Tests differ from production only where they must: eager Celery
(tasks run in the test's process), a fast password hasher, in-memory e-mail."""

import os
import socket
from urllib.parse import urlparse


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


CI = os.environ.get("CI", "").lower() == "true"
# TEST_DATABASE=sqlite: the second pass of `make test` (scripts/test.sh) runs the suite on the
# embedded SQLite default on purpose, so that the charge path's fixed SQL (billing/sql.py) is held
# to the same tests on both databases. The PostgreSQL-only tests are left out of that pass by marker.
EMBEDDED_DATABASE = os.environ.get("TEST_DATABASE", "") == "sqlite"
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lenserfight")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
HAS_POSTGRES = not EMBEDDED_DATABASE and _reachable(os.environ["DATABASE_URL"], 5432)
HAS_REDIS = _reachable(os.environ["REDIS_URL"], 6379)
if CI and not ((HAS_POSTGRES or EMBEDDED_DATABASE) and HAS_REDIS):
    missing = [name for name, ok in (("PostgreSQL", HAS_POSTGRES), ("Redis", HAS_REDIS)) if not ok]
    raise RuntimeError(f"CI=true but {', '.join(missing)} is not reachable (DATABASE_URL / REDIS_URL).")
if not HAS_POSTGRES:
    os.environ["DATABASE_URL"] = ""  # SQLite; tests marked needs_postgres are skipped
if not HAS_REDIS:
    os.environ["REDIS_URL"] = ""

from .settings import *  # noqa: E402,F401,F403

CELERY_TASK_ALWAYS_EAGER = True
BILLING_TEST_CHECKOUT = True
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
