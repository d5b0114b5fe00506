"""One Celery queue per job type (docs/scale.md): every task of the project is routed to its queue,
a worker started without -Q consumes every one, and a task sent through the real Redis broker lands
in its queue's list."""

import json

import pytest
import redis
from django.conf import settings
from django.utils.module_loading import autodiscover_modules

from config.celery import app

PROJECT_APPS = ("billing.", "budgets.", "usage.", "invoices.", "buying.", "accounts.", "operations.")


def _project_tasks() -> list[str]:
    autodiscover_modules("tasks")
    return sorted(name for name in app.tasks if name.startswith(PROJECT_APPS))


def _queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_every_project_task_has_a_queue_of_its_type_that_a_plain_worker_consumes():
    tasks = _project_tasks()
    assert len(tasks) >= 12
    consumed = {queue.name for queue in app.conf.task_queues}
    for name in tasks:
        queue = _queue_of(name)
        assert queue in settings.JOB_QUEUES, f"{name} has no job queue; add it to JOB_QUEUES"
        assert queue in consumed
    assert _queue_of("invoices.tasks.render_invoice_pdf") == "documents"
    assert _queue_of("buying.tasks.auto_recharge_pay") == "payments"
    assert _queue_of("budgets.tasks.deliver_alert_webhook") == "alerts"
    assert _queue_of("usage.tasks.retire_old_run_detail") == "maintenance"
    assert _queue_of("usage.tasks.release_expired_reservations") == "sweeps"


@pytest.mark.needs_redis
def test_a_task_sent_through_redis_waits_in_its_own_queue():
    from invoices.tasks import render_invoice_pdf

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        sent = render_invoice_pdf.delay(0)
    finally:
        app.conf.task_always_eager = eager
    queues = [queue.name for queue in app.conf.task_queues]
    try:
        holding = {name: [json.loads(raw) for raw in client.lrange(name, 0, -1)] for name in queues}
        ours = {name: [m for m in messages if m["headers"]["id"] == sent.id] for name, messages in holding.items()}
        assert {name for name, found in ours.items() if found} == {"documents"}  # once, and in no other queue
        assert len(ours["documents"]) == 1
        assert ours["documents"][0]["headers"]["task"] == "invoices.tasks.render_invoice_pdf"
    finally:
        for name in queues:
            for raw in client.lrange(name, 0, -1):
                if json.loads(raw)["headers"]["id"] == sent.id:
                    client.lrem(name, 1, raw)
