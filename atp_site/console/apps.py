from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "atp_site.console"
    label = "console"
    verbose_name = "Console"
