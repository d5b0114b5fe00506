"""The audit log owners and admins read (issue 32): each row gains who acted (a user, staff in the
admin, or the system), the request's IP address and the fields before the change (`detail` holds
them after). Rows written before this were all made by a person or by the system, as `actor` says.
The table becomes append-only in the database: a trigger refuses every UPDATE and DELETE, except
ON DELETE SET NULL clearing the actor of a deleted account, and changes nothing else."""

from django.db import migrations, models

APPEND_ONLY = """
CREATE FUNCTION billing_auditevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
            AND to_jsonb(NEW) - 'actor_id' = to_jsonb(OLD) - 'actor_id' THEN
        RETURN NEW;  -- the actor's account was deleted
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % of audit event % refused', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER billing_auditevent_append_only BEFORE UPDATE OR DELETE ON billing_auditevent
    FOR EACH ROW EXECUTE FUNCTION billing_auditevent_append_only();
"""
APPEND_ONLY_DROP = """
DROP TRIGGER billing_auditevent_append_only ON billing_auditevent;
DROP FUNCTION billing_auditevent_append_only();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0010_auto_recharge_started_tries_resume'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='actor_kind',
            field=models.CharField(choices=[('user', 'User'), ('staff', 'Staff'), ('system', 'System')], default='system', max_length=8),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='before',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='ip',
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['workspace', '-created_at'], name='audit_workspace_recent'),
        ),
        migrations.RunSQL("UPDATE billing_auditevent SET actor_kind = 'user' WHERE actor_id IS NOT NULL",
                          migrations.RunSQL.noop),
        migrations.RunSQL(APPEND_ONLY, APPEND_ONLY_DROP),
    ]
