"""Encryption of the SSO client secrets at rest (Fernet from `cryptography`: AES-128-CBC with an
HMAC-SHA256, so a changed ciphertext fails instead of decrypting to garbage).

The key is derived with HKDF from SSO_SECRET_KEY when set, else from SECRET_KEY; the keys in
SECRET_KEY_FALLBACKS still decrypt, so rotating SECRET_KEY the Django way keeps the secrets
readable until they are saved again."""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"lenserfight-billing sso client secret v1"


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key this deployment no longer has."""


def _fernet(key_material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key_material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _box() -> MultiFernet:
    if settings.SSO_SECRET_KEY:
        return MultiFernet([_fernet(settings.SSO_SECRET_KEY)])
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(key) for key in keys])


def secret_encrypt(plain: str) -> str:
    return _box().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _box().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("The stored client secret cannot be decrypted (the key changed): "
                               "enter the client secret again on the Security page.") from None
