"""config/postgresql: the per-request health check of a reused connection asks PostgreSQL nothing
while the connection is quiet, and still replaces a connection the server has closed."""

import time
from unittest import mock

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def persistent_connection():
    """Connections kept between requests, with health checks, as config/env.py configures them."""
    saved = {key: connection.settings_dict[key] for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.close()
    connection.settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    yield
    connection.close()
    connection.settings_dict.update(saved)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _next_request():
    """What Django does between two requests on one thread: the next first query is health-checked."""
    connection.close_if_unusable_or_obsolete()


def test_a_quiet_connection_is_reused_without_a_select_1():
    pid = _backend_pid()
    _next_request()
    with mock.patch.object(DjangoWrapper, "is_usable", autospec=True, side_effect=DjangoWrapper.is_usable) as select_1:
        assert _backend_pid() == pid
    assert select_1.call_count == 0


def test_a_connection_the_server_closed_is_replaced_before_the_request_uses_it():
    pid = _backend_pid()
    _next_request()
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"],
                         autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    time.sleep(0.2)  # the server's goodbye reaches the socket
    new_pid = _backend_pid()  # no error: the check found the socket readable, asked, and reconnected
    assert new_pid != pid
