"""Invitations in the admin: staff see them and may revoke one (through the same service as the
Members page); they are created only by owners and admins, never here. SSO connections: staff set
them through the same service as the owner's Security page."""

from django import forms
from django.contrib import admin, messages

from billing.admin import ReadOnlyAdmin
from billing.members import invitation_revoke
from billing.models import Invitation

from .models import SsoConnection
from .sso import SsoError, domains_parse, sso_settings_set


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("email", "workspace", "role", "invited_by", "sent_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("role",)
    search_fields = ("email", "workspace__slug")
    list_select_related = ("workspace", "invited_by")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected invitations")
    def revoke(self, request, queryset):
        for invitation in queryset:
            invitation_revoke(invitation=invitation, actor=request.user)
        messages.success(request, "Revoked; their links no longer work.")


class SsoConnectionForm(forms.ModelForm):
    """Staff set a workspace's single sign-on here with the same rules as its owner on the Security
    page: the change goes through accounts.sso.sso_settings_set (audited with the staff user)."""

    client_secret = forms.CharField(required=False, max_length=1000, widget=forms.PasswordInput,
                                    help_text="Stored encrypted and never shown. Leave empty to keep the stored one.")
    domains_text = forms.CharField(label="E-mail domains", max_length=2000, help_text="Comma-separated.")

    class Meta:
        model = SsoConnection
        fields = ("workspace", "enabled", "issuer", "client_id", "required", "default_role")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["domains_text"].initial = ", ".join(self.instance.domain_names)

    def clean(self):
        # The service call is the save: it decides (Enterprise only, one workspace per domain) and
        # its refusal belongs on this form, which save_model could no longer show.
        data = super().clean()
        if self.errors:
            return data
        workspace = data.get("workspace") or self.instance.workspace
        try:
            connection = sso_settings_set(
                workspace=workspace, actor=self.request_user, issuer=data["issuer"], client_id=data["client_id"],
                client_secret=data.get("client_secret") or None, domains=domains_parse(data["domains_text"]),
                required=data["required"], default_role=data["default_role"], enabled=data["enabled"])
        except SsoError as error:
            raise forms.ValidationError(str(error)) from None
        self.instance = connection
        return data


@admin.register(SsoConnection)
class SsoConnectionAdmin(admin.ModelAdmin):
    form = SsoConnectionForm
    list_display = ("workspace", "issuer", "enabled", "required", "default_role", "domains", "updated_at", "updated_by")
    list_select_related = ("workspace", "updated_by")
    search_fields = ("workspace__slug", "domains__domain", "issuer")
    fields = ("workspace", "enabled", "issuer", "client_id", "client_secret", "domains_text", "required",
              "default_role")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user
        return form

    def get_readonly_fields(self, request, obj=None):
        return ("workspace",) if obj else ()

    @admin.display(description="Domains")
    def domains(self, obj):
        return ", ".join(obj.domain_names)

    def save_model(self, request, obj, form, change):
        pass  # saved by SsoConnectionForm.clean through sso_settings_set

    def has_delete_permission(self, request, obj=None):
        return False  # turned off (audited), never deleted
