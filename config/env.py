"""Typed access to environment variables.

Every reader fails at start with an ``ImproperlyConfigured`` that names the variable, so a
typo in a deployment is caught before the first request rather than in the middle of a charge.
"""

import os
import re
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured
from django_countries.data import COUNTRIES  # plain data: importable before settings are configured


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is invalid: expected {expected}.")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise _bad(name, raw, "one of true/false/1/0/yes/no/on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _bad(name, raw, "a whole number") from None
    if minimum is not None and value < minimum:
        raise _bad(name, raw, f"a whole number >= {minimum}")
    if maximum is not None and value > maximum:
        raise _bad(name, raw, f"a whole number <= {maximum:,}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(choices))
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(name: str, default: str) -> dict:
    """DATABASE_URL as a Django DATABASES entry: postgres://user:pw@host:port/db, or a Unix socket as
    libpq writes it, postgres://user@/db?host=/socket/dir. `default` (a URL) when it is unset."""
    raw = env_str(name) or default
    url = urlparse(raw)
    if url.scheme not in ("postgres", "postgresql", "pgsql"):
        raise _bad(name, raw, "a postgres:// URL")
    if not url.path.strip("/"):
        raise _bad(name, raw, "a database name in postgres://user@host:port/NAME")
    try:
        port = url.port
    except ValueError:
        raise _bad(name, raw, "a numeric port") from None
    options = {key: values[-1] for key, values in parse_qs(url.query).items()}
    return {
        "ENGINE": "config.postgresql",  # Django's, with a cheaper health check (config/postgresql/base.py)
        "NAME": unquote(url.path.lstrip("/")),
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": url.hostname or options.pop("host", ""),
        "PORT": str(port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
    }


def redis_url(name: str) -> str:
    raw = env_str(name)
    if raw and urlparse(raw).scheme not in ("redis", "rediss", "unix"):
        raise _bad(name, raw, "a redis://host:port/db URL")
    return raw


def env_country(name: str, default: str) -> str:
    """An ISO 3166-1 alpha-2 country code (checked against django-countries' list)."""
    value = env_str(name, default).upper()
    if value not in COUNTRIES:
        raise _bad(name, value, "an ISO 3166-1 alpha-2 country code such as US, DE or GB")
    return value


def env_tax_rates(name: str) -> dict[str, str]:
    """Country tax rates in percent, `DE=19,FR=20,GB=20`: {"DE": "19", ...} (decimal strings, so
    nothing on the money path is ever a float). At most 2 decimals, between 0 and 100."""
    raw = os.environ.get(name, "")
    rates: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        country, _, rate = (piece.strip() for piece in item.partition("="))
        country = country.upper()
        if country not in COUNTRIES or not re.fullmatch(r"(100|\d{1,2})(\.\d{1,2})?", rate) or \
                (rate.startswith("100") and rate.strip("0.") != "1"):
            raise _bad(name, raw, "comma-separated COUNTRY=PERCENT pairs such as DE=19,FR=20,GB=20 "
                                  "(ISO country codes, rates from 0 to 100 with at most 2 decimals)")
        if country in rates:
            raise _bad(name, raw, f"each country once ({country} is given twice)")
        rates[country] = rate
    return rates
