"""The claims the test provider puts in ID tokens: the user's e-mail address, whether it is
verified (not for users whose last name is "unverified"), and their name."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class EmailClaims(OAuth2Validator):
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "email": "email", "email_verified": "email",
                        "name": "profile"}

    def get_additional_claims(self, request):
        user = request.user
        return {"email": user.email, "email_verified": user.last_name != "unverified", "name": user.first_name}
