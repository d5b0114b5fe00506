from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Running the business: the management commands, reconcile and the demo seed. The top layer."""

    name = "operations"
