"""Auto-recharge tries started by the code before issue 25's fix resume under the sweep.

That code started a try by committing `tries + 1` with `next_try_at` cleared (status `pending` for
the first try, `retrying` for a later one) and recorded nothing more until Stripe answered. A try
in flight when it was deployed away would never be picked up: today's sweep resumes a started try
(`pending`, tries > 0) once its lease in `next_try_at` has run out, and a null lease never runs out.
Such a try becomes `pending` with its lease over now, so the sweep resumes it with the same try
number, hence the same idempotency key: it is never paid as a new try. If the old call did reach
Stripe, Stripe refuses the resumed call (same key, other parameters) and nothing is charged twice;
the original PaymentIntent's own webhook (its metadata names the attempt and the try) records
what became of it."""

from django.db import migrations
from django.utils import timezone


def started_tries_resume(apps, schema_editor):
    attempts = apps.get_model("billing", "AutoRechargeAttempt")
    attempts.objects.filter(status__in=("pending", "retrying"), tries__gt=0, next_try_at__isnull=True).update(
        status="pending", next_try_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_token_classes")]
    operations = [migrations.RunPython(started_tries_resume, migrations.RunPython.noop)]
