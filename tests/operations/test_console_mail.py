"""`make run` prints every e-mail in its terminal (issue 30): a receipt sent by the Celery worker,
started exactly as scripts/run.sh starts it (--loglevel=error), shows on the worker's stdout. Celery
used to redirect stdout into its WARNING log, which --loglevel=error then swallowed."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from buying.purchases import purchase_record_manual
from config.celery import app
from invoices.models import Invoice
from invoices.tasks import send_receipt
from tests.factories import make_workspace

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_receipt_sent_by_the_worker_shows_on_the_console():
    team = make_workspace()
    purchase_record_manual(workspace=team.workspace, pack_id="starter", reference="R-1", actor=team.owner)
    invoice = Invoice.objects.get(workspace=team.workspace)
    database = settings.DATABASES["default"]
    env = {**os.environ, "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend", "DEBUG": "false",
           "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1",
           "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--quiet", "-A", "config", "worker", "--loglevel=error", "--pool=solo",
         "--concurrency=1", "-Q", "documents"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        send_receipt.delay(invoice.pk)
    finally:
        app.conf.task_always_eager = eager
    try:
        output = b""
        deadline = time.monotonic() + 60
        os.set_blocking(worker.stdout.fileno(), False)
        while time.monotonic() < deadline and invoice.number.encode() not in output:
            try:
                output += os.read(worker.stdout.fileno(), 65536)
            except BlockingIOError:
                time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker.stdout.close()
    output = output.decode()
    assert f"To: {invoice.buyer_email}" in output, output
    assert invoice.number in output
