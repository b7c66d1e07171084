from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "atp_site.auth"
    # "auth" is django.contrib.auth's label.
    label = "atp_auth"
    verbose_name = "Sign-in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from atp_site.auth import signals

        signals.connect()
