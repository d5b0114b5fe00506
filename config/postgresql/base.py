"""Django's PostgreSQL backend, with a health check that costs no round trip when the connection is
quiet.

With CONN_HEALTH_CHECKS, Django checks a reused connection before the first query of every request
with a `SELECT 1`: on the charge path, one statement of every eight, each costing the web process
and PostgreSQL about 0.1 ms of CPU (docs/performance.md). A connection that the server has closed
since (a restart, `pg_terminate_backend`, an idle timeout) has data waiting on its socket (the
server's goodbye, or the end of the stream) although nothing was asked; an open, idle connection
has none. So the check first looks at the socket, without waiting: nothing to read, and psycopg
has not marked the connection closed or broken and it is not inside a transaction, means usable.
Anything else (data waiting, which may also be a notice) falls back to Django's `SELECT 1`. The
check after an error in a request (`close_if_unusable_or_obsolete`) keeps Django's `SELECT 1`."""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and not self.pool and self._quiet()):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet(self) -> bool:
        connection = self.connection
        if connection.closed or connection.broken or connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable
