from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "atp_site.console"
    label = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        # The overview's figures count settled requests in the write-behind flush.
        from atp_site.console.live import publisher

        publisher.install()
