"""A stand-in site for the matrix runner's own tests: console pages as the console serves them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views import View


class Page(View):
    """Signed out: a GET goes to sign-in, htmx gets 401 with HX-Redirect; signed in: who and how."""

    def get(self, request, pk):
        if not request.user.is_authenticated:
            if request.headers.get("HX-Request") == "true":
                response = HttpResponse(status=401)
                response["HX-Redirect"] = settings.LOGIN_URL
                return response
            return redirect_to_login(request.get_full_path())
        return JsonResponse(
            {
                "user": request.user.get_username(),
                "htmx": request.headers.get("HX-Request") == "true",
                "session": "_auth_user_id" in request.session,
            }
        )

    def post(self, request, pk):
        if not request.user.is_authenticated:
            return HttpResponse(status=401)
        return JsonResponse({"fields": dict(request.POST.items())})


class Elsewhere(View):
    def get(self, request):
        return HttpResponse(status=302, headers={"Location": "/somewhere/"})


def login(request):
    return HttpResponse("sign in")


sample = (
    [
        path("page/<int:pk>/", Page.as_view(), name="page"),
        path("elsewhere/", Elsewhere.as_view(), name="elsewhere"),
    ],
    "sample",
)

urlpatterns = [
    path("", include(sample)),
    path("login/", login, name="login"),
    path("healthz", login, name="healthz"),
    path("admin/anything/", login, name="admin-anything"),
]
