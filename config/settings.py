"""One settings module, driven by environment variables (SPEC section 9) through config.env."""

from datetime import timedelta
from pathlib import Path

from kombu import Queue

from .embedded_db import embedded_url
from .env import (database_from_url, env_bool, env_choice, env_country, env_int, env_list, env_str, env_tax_rates,
                  redis_url)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded PostgreSQL, embedded broker queue and beat schedule live here

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("Environment variable SECRET_KEY is required when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (no CDN)
    "import_export",
    "djstripe",
    "axes",
    "csp",
    "django_countries",
    # Two-factor sign-in (issue 32): TOTP authenticators and recovery codes (accounts/two_factor.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "billing",
    "usage",
    "budgets",
    "invoices",
    "buying",
    "operations",
    "accounts",
]
# dj-stripe's migrations with one squashed migration for fresh databases (config/djstripe_migrations).
MIGRATION_MODULES = {"djstripe": "config.djstripe_migrations"}

MIDDLEWARE = [
    "config.middleware.drop_stripe_secret_override",
    "config.middleware.ApiErrors",
    "config.middleware.reject_nul_bytes",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside the session middleware: the WAL position it records includes the session's save.
    "billing.replica.WalPositionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "billing.audit.audit_origin",  # the IP address and site of the audit rows a request writes
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): this session passed its second factor
    "accounts.middleware.TwoFactorEnrolmentRedirect",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the "too many attempts" page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "billing.context_processors.billing",
                "budgets.context_processors.alert_banner",
            ],
            "builtins": ["billing.templatetags.credits"],
        },
    }
]

# Without DATABASE_URL: the embedded PostgreSQL that `make run` starts in var/postgres (config/embedded_db.py).
DATABASES = {"default": database_from_url("DATABASE_URL", embedded_url(VAR_DIR / "postgres"))}
# The charge path's calls (billing/sql.py) and the period-grants job's statements are prepared once
# per connection; Django's own queries never are (its cursors bind on the client). Turn it off behind a
# connection pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21,
# or without max_prepared_statements).
DATABASE_PREPARE = env_bool("DATABASE_PREPARE", True)
if DATABASE_PREPARE:
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5  # psycopg's default; Django sets None
# A streaming replica for read-only pages and exports (billing/replica.py, docs/scale.md).
if env_str("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = database_from_url("DATABASE_REPLICA_URL", "")
    DATABASES["replica"]["OPTIONS"].setdefault("connect_timeout", 2)  # a dead replica costs 2 s, then a retry pause
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["billing.replica.ReplicaRouter"]
REPLICA_MAX_LAG_SECONDS = env_int("REPLICA_MAX_LAG_SECONDS", 10, minimum=0)
REPLICA_CHECK_SECONDS = env_int("REPLICA_CHECK_SECONDS", 1, minimum=0)
REPLICA_RETRY_SECONDS = env_int("REPLICA_RETRY_SECONDS", 15, minimum=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "billing.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["config.auth.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]

# --- Login throttling (django-axes), for /accounts/login/, /admin/login/ and every login form:
# after LOGIN_FAILURE_LIMIT failures in a row an account is locked, and separately the client IP,
# for LOGIN_COOLOFF_MINUTES; a success resets the count. Behind a reverse proxy set
# TRUSTED_PROXY_COUNT so the client IP is read from X-Forwarded-For (else all clients share one IP).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "config.auth.login_username"
AXES_RESET_ON_SUCCESS = True
# No "AXES: BEGIN" line at each start; its INFO lines for every login are silenced in LOGGING below.
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"

# The API refuses bodies over 1 MB with 413 (SPEC section 7).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- Redis: cache, rate limits, Celery broker. Without it everything still runs on one machine.
REDIS_URL = redis_url("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Embedded broker: messages are files under var/celery, shared by web, worker and beat.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The worker's stdout stays its stdout. Celery's default routes it into its WARNING log, which a worker
# started with --loglevel=error (make run) drops: the console e-mail backend's receipts vanished.
CELERY_WORKER_REDIRECT_STDOUTS = False
# One queue per job type (docs/scale.md): a slow job (a PDF, a retention drop) never waits in front
# of a payment or an alert. A worker started without -Q consumes them all (`make run`, the Procfile);
# at scale each queue gets its own pool (`celery -A config worker -Q documents`).
JOB_QUEUES = {
    "payments": ("buying.tasks.*",),
    "mail": ("accounts.tasks.*",),
    "alerts": ("budgets.tasks.check_alerts", "budgets.tasks.check_due_alerts", "budgets.tasks.send_alert_email",
               "budgets.tasks.deliver_alert_webhook", "budgets.tasks.send_webhook_test"),
    "documents": ("invoices.tasks.*",),
    "sweeps": ("usage.tasks.release_expired_reservations", "billing.tasks.run_period_grants",
               "budgets.tasks.sweep_alerts"),
    "maintenance": ("usage.tasks.create_run_partitions", "usage.tasks.retire_old_run_detail"),
}
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in ("celery", *JOB_QUEUES)]
CELERY_TASK_ROUTES = {pattern: {"queue": queue} for queue, patterns in JOB_QUEUES.items() for pattern in patterns}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "release-expired-reservations": {"task": "usage.tasks.release_expired_reservations", "schedule": 60.0},
    "period-grants": {"task": "billing.tasks.run_period_grants", "schedule": 300.0},
    "alert-sweep": {"task": "budgets.tasks.sweep_alerts", "schedule": 300.0},
    "auto-recharge-retries": {"task": "buying.tasks.auto_recharge_retry", "schedule": 60.0},
    "expire-pending-purchases": {"task": "buying.tasks.expire_pending_purchases", "schedule": 3600.0},
    "run-partitions-ahead": {"task": "usage.tasks.create_run_partitions", "schedule": 6 * 3600.0},
    "run-detail-retention": {"task": "usage.tasks.retire_old_run_detail", "schedule": 24 * 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Billing
BILLING_EDITION = env_choice("BILLING_EDITION", "cloud", ("cloud", "community"))
RESERVATION_TTL_SECONDS = env_int("RESERVATION_TTL_SECONDS", 3600, minimum=1)
# The most one run may cost (credits). A completion above it is refused with 400 and charges nothing:
# a bound on the debt a run can leave beyond its reservation, far below what a bigint holds. The
# maximum keeps even a run at the cap plus a full balance inside a bigint of nanocredits.
RUN_MAX_CREDITS = env_int("RUN_MAX_CREDITS", 100_000, minimum=1, maximum=1_000_000_000)
# A checkout not paid within this many hours shows as cancelled (Stripe's sessions last 24 hours).
PURCHASE_PENDING_HOURS = env_int("PURCHASE_PENDING_HOURS", 25, minimum=1, maximum=24 * 30)
# The most a workspace can owe: many runs over their reservations at once could together go further,
# and what a charge would take below -OVERDRAFT_MAX_CREDITS is written off (docs/usage-and-api.md).
OVERDRAFT_MAX_CREDITS = env_int("OVERDRAFT_MAX_CREDITS", 1_000, minimum=0, maximum=1_000_000_000)
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)
# Runs and nodes older than this many months (before this month) are dropped, a month at a time,
# once complete; rollups, the ledger and invoices are kept forever. docs/scale.md.
RUN_DETAIL_RETENTION_MONTHS = env_int("RUN_DETAIL_RETENTION_MONTHS", 13, minimum=1)
RUN_PARTITIONS_AHEAD_MONTHS = env_int("RUN_PARTITIONS_AHEAD_MONTHS", 3, minimum=1)
SELLER = {
    "name": env_str("SELLER_NAME", "LenserFight Inc."),
    "address": env_str("SELLER_ADDRESS", "1 Market Street\nSan Francisco, CA 94105\nUnited States"),
    "email": env_str("SELLER_EMAIL", "billing@lenserfight.com"),
    "tax_id": env_str("SELLER_TAX_ID", ""),
    "country": env_country("SELLER_COUNTRY", "US"),
}
# Tax on the built-in test checkout and payments recorded outside Stripe (docs/tax.md): country
# rates in percent, e.g. DE=19,FR=20,GB=20; a country not listed pays none. Stripe Tax computes
# the tax of Stripe payments.
BILLING_TAX_RATES = env_tax_rates("BILLING_TAX_RATES")
# Alert webhooks go to public addresses only; self-hosters who send to their own network opt in.
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)
SALES_EMAIL = env_str("SALES_EMAIL", "sales@lenserfight.com")

# --- Accounts (docs/teams.md)
# Self-service sign-up (a user and a personal Free workspace); off unless switched on (`make run` does).
SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", False)
# Sign-up attempts per client IP per hour (a Redis counter shared by every process).
SIGNUP_ATTEMPTS_PER_HOUR = env_int("SIGNUP_ATTEMPTS_PER_HOUR", 10, minimum=1)
# Password reset e-mails: per address (silently: the answer never says whether an account exists)
# and per client IP (a 429 page).
PASSWORD_RESETS_PER_ADDRESS_PER_HOUR = env_int("PASSWORD_RESETS_PER_ADDRESS_PER_HOUR", 3, minimum=1)
PASSWORD_RESETS_PER_IP_PER_HOUR = env_int("PASSWORD_RESETS_PER_IP_PER_HOUR", 20, minimum=1)
# Single sign-on (OpenID Connect, docs/security.md). The client secrets are stored encrypted with a
# key derived from SSO_SECRET_KEY, else from SECRET_KEY (SECRET_KEY_FALLBACKS still decrypt older
# ones). The identity provider is reached over https only, never at an internal address; plain http
# to a loopback address is allowed in development (DEBUG) and the tests, for a provider on this machine.
SSO_SECRET_KEY = env_str("SSO_SECRET_KEY")
SSO_ALLOW_LOOPBACK = DEBUG
SSO_CONNECT_TIMEOUT_SECONDS = 5
SSO_READ_TIMEOUT_SECONDS = 10
# Two-factor sign-in: the name authenticator apps show beside the account.
OTP_TOTP_ISSUER = "LenserFight"
# Attach the invoice PDF to purchase and plan receipts (the link to the invoice is always there).
RECEIPT_ATTACH_PDF = env_bool("RECEIPT_ATTACH_PDF", False)

# --- Stripe. Without keys, payments are off unless BILLING_TEST_CHECKOUT=true turns on the built-in
# test checkout (anyone who can buy then "pays" without a card: `make run` and the tests only).
BILLING_TEST_CHECKOUT = env_bool("BILLING_TEST_CHECKOUT", False)
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", False)
# Where Stripe's API is reached (empty: Stripe's own). Only a local double of Stripe (the soak,
# bench/stripe_double.py) or stripe-mock is ever pointed to with it.
STRIPE_API_BASE = env_str("STRIPE_API_BASE").rstrip("/")
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
# dj-stripe 2.11 verifies webhooks at /stripe/webhook/<uuid>/ against a WebhookEndpoint row, which
# `manage.py stripe_webhook_endpoint` creates from these two values (no network).
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_WEBHOOK_UUID = env_str("STRIPE_WEBHOOK_UUID")
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300, minimum=1)
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# Our handlers work from the verified payload; dj-stripe's default processing would call Stripe's API.
DJSTRIPE_WEBHOOK_EVENT_CALLBACK = "buying.stripe_webhooks.handle_verified_event"

# --- E-mail (console in development)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "LenserFight Billing <billing@lenserfight.com>")

# --- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["usage.api.auth.DeveloperTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["usage.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "usage.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LenserFight Billing API",
    "DESCRIPTION": "Authorize and complete runs, read balances, usage and rates. "
    "Authenticate with `Authorization: Bearer lf_...`: create a token on the [Developer tokens](/settings/tokens/) "
    "page of your workspace (Settings -> Developer tokens).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"RunStatusEnum": "usage.models.Run.STATUSES",
                            "FinalStatusEnum": "usage.models.Run.FINAL_STATUSES"},
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "usage.api.schema.document_errors",
                           "usage.api.schema.strict_request_bodies"],
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayRequestDuration": True, "tryItOutEnabled": True},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_traceback_below_500": {"()": "config.logging.NoTracebackBelow500"},
        "no_harfbuzz_fallback": {"()": "config.logging.NoHarfBuzzFallback"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    # WeasyPrint and fontTools narrate every render at INFO; kombu warns "No hostname was supplied"
    # on every publish to the embedded file broker, which has no host by design. django-axes logs
    # four INFO lines per login; its lockouts (WARNING) still show.
    "loggers": {"weasyprint": {"level": "WARNING", "filters": ["no_harfbuzz_fallback"]},
                "fontTools": {"level": "WARNING"},
                "axes": {"level": "WARNING"},
                "kombu.connection": {"level": "ERROR"},
                "django.request": {"filters": ["no_traceback_below_500"]}},
}

# --- HTTPS in production (README "Deploy"): `check --deploy` is clean with these set.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", False) else None

# --- Content-Security-Policy (django-csp): scripts and styles only from our own static files
# (Swagger UI and the admin included). Inline style attributes stay allowed: templates use them
# for bar widths, and styles cannot run code. Checkout forms redirect to Stripe.
from csp.constants import NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF, UNSAFE_INLINE],
    "img-src": [SELF, "data:"],
    "font-src": [SELF, "data:"],
    "connect-src": [SELF],
    "object-src": [NONE],
    "base-uri": [SELF],
    "frame-ancestors": [NONE],
    "form-action": [SELF, "https://checkout.stripe.com", "https://billing.stripe.com"],
}}
