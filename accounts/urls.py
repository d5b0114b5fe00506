"""Routes of the accounts app (every one is listed in docs/teams.md)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import security_views, sign_in, views

app_name = "accounts"

public = [
    path("accounts/signup/", views.signup, name="signup"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("accounts/sso/", sign_in.sso_start, name="sso"),
    path("accounts/sso/callback/", sign_in.sso_callback, name="sso_callback"),
    path("accounts/two-factor/verify/", sign_in.two_factor_verify_view, name="two_factor_verify"),
    path("accounts/two-factor/", security_views.two_factor_view, name="two_factor"),
]

workspace = [
    path("settings/members/invitations/<int:invitation_id>/resend/", views.invitation_resend_view,
         name="invitation_resend"),
    path("settings/members/invitations/<int:invitation_id>/revoke/", views.invitation_revoke_view,
         name="invitation_revoke"),
    path("settings/members/<int:membership_id>/remove/", views.member_remove_view, name="member_remove"),
    path("settings/members/<int:membership_id>/transfer/", views.ownership_transfer_view, name="ownership_transfer"),
    path("settings/members/leave/", views.member_leave_view, name="member_leave"),
    path("settings/audit/", views.audit_log_page, name="audit_log"),
    path("settings/audit/export.csv", views.audit_log_csv, name="audit_log_csv"),
    path("settings/security/", security_views.security_view, name="security"),
    path("settings/security/two-factor/", security_views.security_two_factor_view, name="security_two_factor"),
]

auth = [
    path("accounts/login/", sign_in.LoginView.as_view(), name="login"),
    path("accounts/password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

# Namespace "accounts": the public routes and the workspace ones. Django's password views keep their
# global names (their defaults reverse them), so config.urls includes `auth` without a namespace.
urlpatterns = [*public, path("w/<slug:slug>/", include(workspace))]
