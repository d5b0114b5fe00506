"""Logging filters (LOGGING in config/settings.py): what an operator needs, without the noise."""

import logging


class NoTracebackBelow500(logging.Filter):
    """Django logs a 403 (a member opening Buy credits) or a 400 with the whole traceback of the
    PermissionDenied or SuspiciousOperation behind it. That is an answer, not an error: keep the one
    line ("Forbidden (Permission denied): /w/acme/...") and drop the traceback. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class NoHarfBuzzFallback(logging.Filter):
    """WeasyPrint warns at every PDF that it subsets fonts with fontTools because the system has no
    HarfBuzz-Subset library (Debian's libharfbuzz-subset0; scripts/system-deps.sh installs it). The
    PDF is the same either way; other WeasyPrint warnings still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "instead of HarfBuzz-Subset" not in record.getMessage()
