"""The real OpenID provider process of the SSO tests (tests/oidc_provider/, django-oauth-toolkit
on its own port and SQLite database), started once per test run, and helpers that sign in at it
the way a browser would."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.oidc_provider.serve import CLIENT_ID, CLIENT_SECRET, PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Provider:
    url: str
    issuer: str
    client_id: str
    client_secret: str
    data_dir: Path

    def misbehave(self, mode: str) -> None:
        """Make the token endpoint change its ID token (tests/oidc_provider/misbehave.py); "" stops."""
        (self.data_dir / "mode").write_text(mode)

    def sign_in(self, authorize_url: str, email: str, password: str = PASSWORD) -> str:
        """Sign in at the provider as `email` and follow the authorization URL: the redirect back to
        the portal (its callback URL with code and state)."""
        assert authorize_url.startswith(self.issuer + "/authorize/"), authorize_url
        browser = requests.Session()
        browser.get(self.url + "/login/", timeout=10)
        response = browser.post(self.url + "/login/", timeout=10, allow_redirects=False, data={
            "username": email, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        assert response.status_code == 302, f"the provider refused {email}'s password"
        response = browser.get(authorize_url, timeout=10, allow_redirects=False)
        assert response.status_code == 302, response.text[:500]
        return response.headers["Location"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("oidc-provider")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (data_dir / "signing-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    port = _free_port()
    env = {**os.environ, "OIDC_TEST_DIR": str(data_dir), "OIDC_TEST_PORT": str(port), "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(data_dir / "provider.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "tests.oidc_provider.serve"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/o/.well-known/openid-configuration", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("The test OpenID provider did not start:\n" +
                               (data_dir / "provider.log").read_text()[-3000:])
        time.sleep(0.2)
    try:
        yield Provider(url=url, issuer=url + "/o", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                       data_dir=data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def provider(oidc_provider):
    """The provider, behaving (each test starts with a well-behaved one)."""
    oidc_provider.misbehave("")
    yield oidc_provider
    oidc_provider.misbehave("")


def local_path(url: str) -> str:
    """A portal URL as the Django test client requests it (path and query)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
