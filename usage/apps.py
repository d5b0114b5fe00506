from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"

    def ready(self):
        from .api.token_cache import connect_signals

        connect_signals()
