"""Invitations in the admin: staff see them and may revoke one (through the same service as the
Members page); they are created only by owners and admins, never here."""

from django.contrib import admin, messages

from billing.admin import ReadOnlyAdmin
from billing.members import invitation_revoke
from billing.models import Invitation


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
