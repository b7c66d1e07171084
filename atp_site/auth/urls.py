"""Sign-in URLs, mounted at the site's root (namespace `auth`; sign-out is `logout`)."""

from django.conf import settings
from django.urls import path

from atp_site.auth import views

app_name = "auth"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code_view, name="login-code"),
    path("account/", views.account_view, name="account"),
]

if settings.ATP_OIDC is not None:
    from atp_site.auth import oidc

    urlpatterns += [
        path("login/oidc/", oidc.OidcStartView.as_view(), name="oidc-start"),
        path("login/oidc/callback/", oidc.OidcCallbackView.as_view(), name="oidc-callback"),
    ]
