"""A bad environment value fails at start with a message that names the variable (SPEC 9)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env

ROOT = Path(__file__).resolve().parent.parent
SOCKET_URL = "postgres://postgres@/lenserfight?host=/srv/var/postgres"  # a Unix socket, as libpq writes it


@pytest.mark.parametrize("reader, name, value", [
    (lambda: env.env_bool("DEBUG", False), "DEBUG", "maybe"),
    (lambda: env.env_int("RESERVATION_TTL_SECONDS", 3600, minimum=1), "RESERVATION_TTL_SECONDS", "an hour"),
    (lambda: env.env_int("RESERVATION_TTL_SECONDS", 3600, minimum=1), "RESERVATION_TTL_SECONDS", "0"),
    (lambda: env.env_choice("BILLING_EDITION", "cloud", ("cloud", "community")), "BILLING_EDITION", "enterprise"),
    (lambda: env.database_from_url("DATABASE_URL", SOCKET_URL), "DATABASE_URL", "mysql://db/x"),
    (lambda: env.database_from_url("DATABASE_URL", SOCKET_URL), "DATABASE_URL", "sqlite:///var/db.sqlite3"),
    (lambda: env.database_from_url("DATABASE_URL", SOCKET_URL), "DATABASE_URL", "postgres://host:port/db"),
    (lambda: env.database_from_url("DATABASE_URL", SOCKET_URL), "DATABASE_URL", "postgres://host:5432/"),
    (lambda: env.redis_url("REDIS_URL"), "REDIS_URL", "http://localhost:6379"),
    (lambda: env.env_tax_rates("BILLING_TAX_RATES"), "BILLING_TAX_RATES", "DE:19"),
    (lambda: env.env_tax_rates("BILLING_TAX_RATES"), "BILLING_TAX_RATES", "XX=19"),
    (lambda: env.env_tax_rates("BILLING_TAX_RATES"), "BILLING_TAX_RATES", "DE=100.5"),
    (lambda: env.env_tax_rates("BILLING_TAX_RATES"), "BILLING_TAX_RATES", "DE=19.125"),
    (lambda: env.env_tax_rates("BILLING_TAX_RATES"), "BILLING_TAX_RATES", "DE=19,de=7"),
    (lambda: env.env_country("SELLER_COUNTRY", "US"), "SELLER_COUNTRY", "USA"),
])
def test_it_names_the_variable_with_a_bad_value(monkeypatch, reader, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        reader()


def test_it_refuses_a_run_cost_cap_that_would_bring_the_bigint_overflow_back():
    result = _start(RUN_MAX_CREDITS="10000000000")
    assert result.returncode != 0
    assert "RUN_MAX_CREDITS" in result.stderr and "1,000,000,000" in result.stderr


def test_it_reads_good_values(monkeypatch):
    monkeypatch.setenv("DEBUG", "yes")
    monkeypatch.setenv("RESERVATION_TTL_SECONDS", "90")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p%40ss@db.example:6543/billing")
    assert env.env_bool("DEBUG", False) is True
    assert env.env_int("RESERVATION_TTL_SECONDS", 3600, minimum=1) == 90
    database = env.database_from_url("DATABASE_URL", SOCKET_URL)
    assert (database["NAME"], database["USER"], database["PASSWORD"], database["HOST"], database["PORT"]) == (
        "billing", "u", "p@ss", "db.example", "6543")
    monkeypatch.delenv("DATABASE_URL")
    database = env.database_from_url("DATABASE_URL", SOCKET_URL)
    assert (database["ENGINE"], database["NAME"], database["HOST"], database["OPTIONS"]) == (
        "config.postgresql", "lenserfight", "/srv/var/postgres", {})


def _environment(**overrides) -> dict:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "VAR_DIR")}
    environment.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x", **overrides})
    return environment


def _start(**overrides):
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                          env=_environment(**overrides), capture_output=True, text=True, timeout=120)


def test_the_settings_refuse_to_start_with_a_bad_value():
    result = _start(RESERVATION_TTL_SECONDS="soon")
    assert result.returncode != 0
    assert "RESERVATION_TTL_SECONDS" in result.stderr and "soon" in result.stderr


def test_the_settings_default_to_the_embedded_postgresql_under_var(tmp_path):
    """Without DATABASE_URL: the socket of the server `make run` starts in VAR_DIR/postgres."""
    result = subprocess.run(
        [sys.executable, "-c", "from config import settings; db = settings.DATABASES['default']; "
                               "print(db['ENGINE'], db['NAME'], db['HOST'])"],
        cwd=ROOT, env={**_environment(), "VAR_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.postgresql", "lenserfight", str(tmp_path / "postgres")]


def test_the_settings_require_a_secret_key_in_production():
    result = _start(SECRET_KEY="", DEBUG="false")
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_the_tax_table_reads_country_rates_as_exact_decimal_strings(monkeypatch):
    monkeypatch.setenv("BILLING_TAX_RATES", " de=19, FR=20 ,GB=20,CH=8.1,AE=0")
    assert env.env_tax_rates("BILLING_TAX_RATES") == {"DE": "19", "FR": "20", "GB": "20", "CH": "8.1", "AE": "0"}
    monkeypatch.delenv("BILLING_TAX_RATES")
    assert env.env_tax_rates("BILLING_TAX_RATES") == {}
