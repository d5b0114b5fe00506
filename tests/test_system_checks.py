"""Django's system checks pass: a misplaced admin option (a field name the inline's model does not
have) or a model field without its migration fails here, not on a staff member's screen."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_system_checks_pass_and_every_model_change_has_its_migration():
    call_command("check", fail_level="WARNING")
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
