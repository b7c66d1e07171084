"""URL patterns of one kind of object, declared as data:

    urlpatterns = object_urls(
        "providers", "provider",
        list=views.ProviderListView, add=views.ProviderCreateView,
        detail=views.ProviderDetailView, edit=views.ProviderEditView,
        delete=views.ProviderDeleteView, test=views.ProviderTestView,
    )

gives `providers/` (provider-list), `providers/add/` (provider-add), `providers/<uuid:pk>/`
(provider-detail) and `providers/<uuid:pk>/<action>/` (provider-<action>) for every other
view, an underscore in the action's name becoming a hyphen in the path and the name.
"""

from __future__ import annotations

from django.urls import URLPattern, path
from django.views import View


def object_urls(
    prefix: str,
    name: str,
    *,
    converter: str = "uuid",
    list: type[View] | None = None,  # noqa: A002  (the page's name in every URL name)
    add: type[View] | None = None,
    detail: type[View] | None = None,
    **actions: type[View],
) -> list[URLPattern]:
    one = f"{prefix}/<{converter}:pk>/"
    patterns = []
    if list is not None:
        patterns.append(path(f"{prefix}/", list.as_view(), name=f"{name}-list"))
    if add is not None:
        patterns.append(path(f"{prefix}/add/", add.as_view(), name=f"{name}-add"))
    if detail is not None:
        patterns.append(path(one, detail.as_view(), name=f"{name}-detail"))
    for action, view in actions.items():
        slug = action.replace("_", "-")
        patterns.append(path(f"{one}{slug}/", view.as_view(), name=f"{name}-{slug}"))
    return patterns
