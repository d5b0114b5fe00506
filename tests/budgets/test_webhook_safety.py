"""Alert webhooks cannot reach inside (SSRF): internal addresses are refused when the URL is saved
and when it is sent, redirects are not followed, and slow or huge answers are cut off. Deliveries
go through the real HTTP client to a real receiver on loopback."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing.models import AuditEvent
from budgets.models import WorkspaceBudget
from budgets.webhooks import WebhookFailed, WebhookRefused, webhook_post

from tests.factories import PASSWORD

INTERNAL_URLS = [
    "http://127.0.0.1:6379/", "http://localhost/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/", "http://192.168.1.1/", "http://172.16.0.1/", "http://0.0.0.0/", "http://224.0.0.1/",
    "http://240.0.0.1/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://[::]/",
    "http://2130706433/", "http://127.0.0.1:5432/",
]


class Receiver:
    """A loopback HTTP server recording each POST; `behaviour` decides the answer."""

    def __init__(self, behaviour="ok"):
        self.requests = []
        self.behaviour = behaviour
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((self.path, dict(self.headers), body))
                if receiver.behaviour == "redirect" and self.path == "/hook":
                    self.send_response(302)
                    self.send_header("Location", "/internal")
                    self.end_headers()
                elif receiver.behaviour == "slow":
                    time.sleep(3)
                    self.send_response(200)
                    self.end_headers()
                elif receiver.behaviour == "huge":
                    self.send_response(200)
                    self.end_headers()
                    try:
                        for _ in range(2000):  # 100 MB unless the client stops reading
                            self.wfile.write(b"x" * 50_000)
                    except OSError:
                        pass
                else:
                    self.send_response(204)
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    created = []

    def make(behaviour="ok"):
        created.append(Receiver(behaviour))
        return created[-1]

    yield make
    for server in created:
        server.close()


def _set_url(team, url):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(webhook_url=url)


@pytest.mark.django_db
@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_it_refuses_an_internal_webhook_url_on_the_alerts_form(client, team, url):
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.post("/w/acme/settings/billing/alerts/", {"webhook_url": url})
    assert response.status_code == 200
    page = response.content.decode()
    # Django's URL validator already refuses some (a bare number); the rest name the reason.
    assert "internal address" in page or "Enter a valid URL" in page
    assert WorkspaceBudget.objects.get(workspace=team.workspace).webhook_url == ""


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:18299\\@example.com/", "https://user:secret@hooks.example.com/x",
                                 "https://hooks.example.com@127.0.0.1/"])
def test_it_refuses_a_webhook_url_with_user_info_on_the_alerts_form(client, team, url):
    """urllib.parse reads the first as the host example.com; the HTTP library connects to 127.0.0.1.
    User info is refused altogether, with a message that says so."""
    client.login(email=team.owner.email, password=PASSWORD)
    response = client.post("/w/acme/settings/billing/alerts/", {"webhook_url": url})
    page = response.content.decode()
    assert "may not contain a user name" in page or "Enter a valid URL" in page
    assert WorkspaceBudget.objects.get(workspace=team.workspace).webhook_url == ""
    with pytest.raises(WebhookRefused, match="user name"):
        webhook_post(url=url, secret="s", body=b"{}")


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_it_refuses_to_send_to_an_internal_address(url):
    with pytest.raises(WebhookRefused):
        webhook_post(url=url, secret="s", body=b"{}")


@pytest.mark.django_db
def test_it_does_not_post_to_a_loopback_receiver_saved_before_the_check(receiver):
    server = receiver()
    with pytest.raises(WebhookRefused):
        webhook_post(url=server.url, secret="s", body=b"{}")
    assert server.requests == []


def test_it_connects_to_the_address_it_checked_so_dns_rebinding_cannot_swap_it(monkeypatch):
    """A name that resolves to loopback is refused at send time, whatever it resolved to at save."""
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        return real("127.0.0.1" if host == "hooks.rebind.test" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(WebhookRefused):
        webhook_post(url="https://hooks.rebind.test/x", secret="s", body=b"{}")


def test_it_delivers_to_loopback_when_the_self_hoster_opts_in(receiver, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    server = receiver()
    assert webhook_post(url=server.url, secret="s", body=b'{"a":1}') == 204
    path, headers, body = server.requests[0]
    assert body == b'{"a":1}' and headers["X-LF-Signature"].startswith("sha256=")


def test_it_does_not_follow_redirects(receiver, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    server = receiver("redirect")
    assert webhook_post(url=server.url, secret="s", body=b"{}") == 302
    assert [path for path, _, _ in server.requests] == ["/hook"]


def test_it_times_out_a_slow_receiver(receiver, settings, monkeypatch):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    monkeypatch.setattr("budgets.webhooks.READ_TIMEOUT_SECONDS", 0.5)
    server = receiver("slow")
    started = time.monotonic()
    with pytest.raises(WebhookFailed):
        webhook_post(url=server.url, secret="s", body=b"{}")
    assert time.monotonic() - started < 2.5


def test_it_reads_a_bounded_amount_of_a_huge_answer(receiver, settings, monkeypatch):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    server = receiver("huge")
    started = time.monotonic()
    assert webhook_post(url=server.url, secret="s", body=b"{}") == 200
    assert time.monotonic() - started < 3


@pytest.mark.django_db
def test_send_test_event_shows_the_receivers_status(client, team, receiver, settings,
                                                    django_capture_on_commit_callbacks):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    server = receiver()
    _set_url(team, server.url)
    client.login(email=team.admin.email, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):  # the worker delivers after the request commits
        response = client.post("/w/acme/settings/billing/alerts/", {"action": "test_webhook"})
    assert response.status_code == 302
    response = client.get(response.url)
    assert "the receiver answered HTTP 204" in response.content.decode()
    assert b'"event":"budget.test"' in server.requests[0][2]
    assert AuditEvent.objects.filter(action="budget.webhook_test").count() == 1


@pytest.mark.django_db
def test_send_test_event_shows_why_a_url_is_refused(client, team, receiver, django_capture_on_commit_callbacks):
    server = receiver()
    _set_url(team, server.url)  # saved before the check existed
    client.login(email=team.owner.email, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/w/acme/settings/billing/alerts/", {"action": "test_webhook"})
    response = client.get("/w/acme/settings/billing/alerts/")
    assert "Not sent:" in response.content.decode() and "internal address" in response.content.decode()
    assert server.requests == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.needs_redis
def test_send_test_event_is_delivered_by_the_worker_not_in_the_page_request(client, team, receiver, settings):
    """A slow receiver held the page request (and a web worker) for the whole timeout (issue 25)."""
    from budgets.tasks import send_webhook_test
    from config.celery import app

    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    server = receiver()
    _set_url(team, server.url)
    client.login(email=team.admin.email, password=PASSWORD)
    eager, app.conf.task_always_eager = app.conf.task_always_eager, False
    try:
        response = client.post("/w/acme/settings/billing/alerts/", {"action": "test_webhook"}, follow=True)
    finally:
        app.conf.task_always_eager = eager
    page = response.content.decode()
    assert "Test event queued" in page and "queued, not delivered yet" in page
    assert server.requests == []
    request = AuditEvent.objects.get(action="budget.webhook_test")
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        assert any(b"send_webhook_test" in raw for raw in broker.lrange("alerts", 0, -1))
    finally:
        broker.delete("alerts")
    send_webhook_test(request.pk)  # what the worker runs
    assert len(server.requests) == 1
    assert "the receiver answered HTTP 204" in client.get("/w/acme/settings/billing/alerts/").content.decode()


@pytest.mark.django_db
def test_a_member_cannot_send_a_test_event(client, team, receiver, settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    server = receiver()
    _set_url(team, server.url)
    client.login(email=team.member.email, password=PASSWORD)
    assert client.post("/w/acme/settings/billing/alerts/", {"action": "test_webhook"}).status_code == 403
    assert server.requests == []


@pytest.mark.django_db
def test_the_signing_secret_is_shown_to_owners_and_admins_only(client, team):
    secret = WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret
    for user, sees in ((team.owner, True), (team.admin, True), (team.member, False)):
        client.login(email=user.email, password=PASSWORD)
        page = client.get("/w/acme/settings/billing/alerts/").content.decode()
        assert (secret in page) is sees, user.email
        assert ("Rotate secret" in page) is sees
    client.login(email=team.member.email, password=PASSWORD)
    assert client.post("/w/acme/settings/billing/alerts/", {"action": "rotate_secret"}).status_code == 403
    assert WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret == secret
