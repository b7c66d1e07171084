"""Console URLs of tenants, API keys and the settings pages (admin tokens, users, roles).

The management API is in api/urls.py."""

from django.urls import path

from apps.tenants import views

app_name = "tenants"

urlpatterns = [
    path("tenants/", views.TenantListView.as_view(), name="tenant-list"),
    path("tenants/add/", views.TenantCreateView.as_view(), name="tenant-add"),
    path("tenants/<uuid:pk>/", views.TenantDetailView.as_view(), name="tenant-detail"),
    path("tenants/<uuid:pk>/edit/", views.TenantEditView.as_view(), name="tenant-edit"),
    path("tenants/<uuid:pk>/members/", views.TenantMemberView.as_view(), name="tenant-members"),
    path("keys/", views.ApiKeyListView.as_view(), name="apikey-list"),
    path("keys/add/", views.ApiKeyCreateView.as_view(), name="apikey-add"),
    path("keys/<uuid:pk>/", views.ApiKeyDetailView.as_view(), name="apikey-detail"),
    path("keys/<uuid:pk>/edit/", views.ApiKeyEditView.as_view(), name="apikey-edit"),
    path("keys/<uuid:pk>/rotate/", views.ApiKeyRotateView.as_view(), name="apikey-rotate"),
    path("keys/<uuid:pk>/revoke/", views.ApiKeyRevokeView.as_view(), name="apikey-revoke"),
    path("settings/tokens/", views.AdminTokenListView.as_view(), name="admintoken-list"),
    path("settings/tokens/add/", views.AdminTokenCreateView.as_view(), name="admintoken-add"),
    path(
        "settings/tokens/<uuid:pk>/revoke/",
        views.AdminTokenRevokeView.as_view(),
        name="admintoken-revoke",
    ),
    path("settings/users/", views.UserListView.as_view(), name="user-list"),
    path("settings/users/<int:pk>/", views.UserDetailView.as_view(), name="user-detail"),
    path("settings/users/<int:pk>/roles/", views.UserRolesView.as_view(), name="user-roles"),
    path(
        "settings/users/<int:pk>/memberships/",
        views.UserMembershipView.as_view(),
        name="user-memberships",
    ),
    path(
        "settings/users/<int:pk>/permissions/",
        views.UserDedicatedPermissionView.as_view(),
        name="user-permissions",
    ),
]
