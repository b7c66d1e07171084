"""Console URLs of tenants, API keys and the settings pages (admin tokens, users, roles).

The management API is in api/urls.py."""

from apps.tenants import views
from atp_site.console.routes import object_urls

app_name = "tenants"

urlpatterns = [
    *object_urls(
        "tenants",
        "tenant",
        list=views.TenantListView,
        add=views.TenantCreateView,
        detail=views.TenantDetailView,
        edit=views.TenantEditView,
        members=views.TenantMemberView,
    ),
    *object_urls(
        "projects",
        "project",
        list=views.ProjectListView,
        add=views.ProjectCreateView,
        detail=views.ProjectDetailView,
        edit=views.ProjectEditView,
        delete=views.ProjectDeleteView,
    ),
    *object_urls(
        "keys",
        "apikey",
        list=views.ApiKeyListView,
        add=views.ApiKeyCreateView,
        detail=views.ApiKeyDetailView,
        edit=views.ApiKeyEditView,
        rotate=views.ApiKeyRotateView,
        revoke=views.ApiKeyRevokeView,
    ),
    *object_urls(
        "settings/tokens",
        "admintoken",
        list=views.AdminTokenListView,
        add=views.AdminTokenCreateView,
        revoke=views.AdminTokenRevokeView,
    ),
    *object_urls(
        "settings/users",
        "user",
        converter="int",
        list=views.UserListView,
        detail=views.UserDetailView,
        roles=views.UserRolesView,
        memberships=views.UserMembershipView,
        permissions=views.UserDedicatedPermissionView,
    ),
]
