"""The project's settings for the soak (bench/soak.py) alone: the broker hands a task whose worker was
killed (acks late: the message stays unacknowledged) to another worker after 30 s instead of
kombu's default hour, so a soak of minutes sees the redelivery. Everything else is production's."""

from config.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 30}
