"""A workspace's single sign-on connection (issue 32, docs/security.md): its OpenID Connect
identity provider and the e-mail domains whose people sign in through it. Changed only through
accounts.sso.sso_settings_set (the Security page, the admin and `manage.py set_sso`)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from billing.models import Membership, Workspace


class SsoConnection(models.Model):
    SSO_ROLES = [(Membership.MEMBER, "Member"), (Membership.ADMIN, "Admin")]

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="sso")
    # Off keeps the settings (and the domains' claim) but signs no one in and refuses no password.
    enabled = models.BooleanField(default=True)
    # The provider's issuer identifier, exactly as its discovery document and ID tokens state it.
    issuer = models.URLField(max_length=300)
    client_id = models.CharField(max_length=255)
    # Fernet token (accounts.secret_box); the plain secret is never stored nor shown again.
    client_secret_encrypted = models.TextField()
    # People of the domains who belong to the workspace sign in through SSO only (the owner keeps a
    # password as a way in when the provider is down: audited as sso.break_glass_login).
    required = models.BooleanField(default=False)
    # The role of someone who arrives through SSO without being a member yet.
    default_role = models.CharField(max_length=16, choices=SSO_ROLES, default=Membership.MEMBER)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        verbose_name = "SSO connection"

    def __str__(self):
        return f"SSO of {self.workspace} ({self.issuer})"

    @property
    def domain_names(self) -> list[str]:
        return sorted(domain.domain for domain in self.domains.all())


class SsoDomain(models.Model):
    """An e-mail domain (lower case, ASCII) that signs in through one workspace's provider. Unique:
    a domain belongs to one workspace only, so an address finds at most one provider."""

    connection = models.ForeignKey(SsoConnection, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)

    class Meta:
        verbose_name = "SSO domain"
        ordering = ["domain"]

    def __str__(self):
        return self.domain
