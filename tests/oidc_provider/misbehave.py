"""How the test provider misbehaves on purpose: the test writes a mode to DATA_DIR/mode, and the
token endpoint's ID token is then changed before it leaves (jwcrypto, the provider's own JOSE
library; the portal verifies with authlib/joserfc):

- forged: the claims signed again with an attacker's key that claims the provider's key id;
- tampered: the e-mail in the payload changed, the provider's signature kept;
- wrong_aud: signed by the provider's key, for another client;
- expired: signed by the provider's key, expired an hour ago;
- bad_nonce: signed by the provider's key, with another nonce;
- foreign_email: signed by the provider's key, for an address outside the workspace's domains."""

import base64
import json
import time
from pathlib import Path

from django.conf import settings
from jwcrypto import jwk, jwt


def _mode() -> str:
    path = Path(settings.DATA_DIR) / "mode"
    return path.read_text().strip() if path.exists() else ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _sign(claims: dict, key: jwk.JWK, kid: str) -> str:
    token = jwt.JWT(header={"alg": "RS256", "typ": "JWT", "kid": kid}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def _rewrite(id_token: str, mode: str) -> str:
    real = jwk.JWK.from_pem(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"].encode())
    kid = real.thumbprint()
    claims = _claims(id_token)
    now = int(time.time())
    if mode == "forged":
        return _sign(claims, jwk.JWK.generate(kty="RSA", size=2048), kid)
    if mode == "tampered":
        header, _, signature = id_token.split(".")
        claims["email"] = "ceo@acme.test"
        return ".".join((header, _b64(json.dumps(claims).encode()), signature))
    if mode == "wrong_aud":
        claims["aud"] = "another-application"
    elif mode == "expired":
        claims["iat"], claims["exp"] = now - 7200, now - 3600
        claims["auth_time"] = now - 7200
    elif mode == "bad_nonce":
        claims["nonce"] = "not-the-nonce-of-this-sign-in"
    elif mode == "foreign_email":
        claims["email"] = "someone@elsewhere.test"
    return _sign(claims, real, kid)


def misbehave(get_response):
    def middleware(request):
        response = get_response(request)
        mode = _mode()
        if mode and request.path == "/o/token/" and response.status_code == 200:
            body = json.loads(response.content)
            if "id_token" in body:
                body["id_token"] = _rewrite(body["id_token"], mode)
                response.content = json.dumps(body).encode()
                response["Content-Length"] = str(len(response.content))
        return response

    return middleware
