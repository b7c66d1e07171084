"""Rows of the console's tenant, API key and settings pages (apps/tenants/urls.py).

Pages answer as the frame's rules say: a signed-out GET is a 302 to the sign-in page, any
other signed-out request a 401; a viewer who may not do the page's action on any object of
its model gets 403; an object outside the viewer's tenants (globex, for acme's tenant roles),
another user's admin token or a user the viewer may not see is a 404. Settings forms change
roles only through apps.tenants.roles, whose own checks these rows also exercise.
"""

from __future__ import annotations

from tests.permission_matrix.rows import Row, outsider_token, own_token, pk, row, user_pk

C = "tenants:"

NEW_TENANT = {"name": "New", "slug": "matrix-new", "cost_mode": "balanced"}
ACME = {"name": "Acme", "slug": "acme", "cost_mode": "balanced", "is_active": "on"}
GLOBEX = {"name": "Globex", "slug": "globex", "cost_mode": "balanced", "is_active": "on"}
MEMBER = {"tenant": "acme", "username": "m-outsider", "role": "tenant-member"}
MEMBER_GLOBEX = {"tenant": "globex", "username": "m-outsider", "role": "tenant-member"}
PROJECT_ACME = {"tenant": "acme", "slug": "matrix-new"}
PROJECT_GLOBEX = {"tenant": "globex", "slug": "matrix-new"}
PROJECT_EDIT = {"slug": "web", "name": "Web shop"}
KEY_ACME = {"tenant": "acme", "name": "matrix-new"}
KEY_GLOBEX = {"tenant": "globex", "name": "matrix-new"}
PROMOTE = {"tenant": "acme", "role": "tenant-admin"}
DEDICATED = {"permission": "tenants.add_admintoken_for_others", "granted": "true"}

# fmt: off
ROWS: list[Row] = [
    #    id                                  URL name                 method  an  st  ro  tm  ta  au  co  se  pl  mg  sa  su
    # --- tenants -------------------------------------------------------------------------------------------------------------------------
    row("console tenants",                   C + "tenant-list",       "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console tenants htmx",              C + "tenant-list",       "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"q": "ac"}),
    row("console tenant add form",           C + "tenant-add",        "get",  "302 403 403 403 403 403 403 200 403 200 200 200"),
    row("console tenant add",                C + "tenant-add",        "post", "401 403 403 403 403 403 403 303 403 303 303 303", data=NEW_TENANT),
    row("console own tenant",                C + "tenant-detail",     "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=pk("acme")),
    row("console other tenant",              C + "tenant-detail",     "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=pk("globex")),
    row("console own tenant edit form",      C + "tenant-edit",       "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("acme")),
    row("console other tenant edit form",    C + "tenant-edit",       "get",  "302 403 403 403 404 403 403 200 403 200 200 200", target=pk("globex")),
    row("console own tenant edit",           C + "tenant-edit",       "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("acme"), data=ACME),
    row("console other tenant edit",         C + "tenant-edit",       "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=pk("globex"), data=GLOBEX),
    row("console own tenant members form",   C + "tenant-members",    "get",  "302 403 403 403 200 403 403 403 403 403 200 200", target=pk("acme")),
    row("console other tenant members form", C + "tenant-members",    "get",  "302 403 403 403 404 403 403 403 403 403 200 200", target=pk("globex")),
    row("console own tenant member add",     C + "tenant-members",    "post", "401 403 403 403 303 403 403 403 403 403 303 303", target=pk("acme"), data=MEMBER),
    row("console other tenant member add",   C + "tenant-members",    "post", "401 403 403 403 404 403 403 403 403 403 303 303", target=pk("globex"), data=MEMBER_GLOBEX),
    # --- projects (a tenant-admin organises its tenant's through change_tenant) ----------------------------------------------------------
    row("console projects",                  C + "project-list",      "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console project add form",          C + "project-add",       "get",  "302 403 403 403 200 403 403 200 403 200 200 200"),
    row("console own tenant project add",    C + "project-add",       "post", "401 403 403 403 303 403 403 303 403 303 303 303", data=PROJECT_ACME),
    # Another tenant is not among the choices: the form comes back with the error on its field.
    row("console other tenant project add",  C + "project-add",       "post", "401 403 403 403 200 403 403 303 403 303 303 303", data=PROJECT_GLOBEX),
    row("console own project",               C + "project-detail",    "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=pk("project_a")),
    row("console other project",             C + "project-detail",    "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=pk("project_b")),
    row("console own project edit form",     C + "project-edit",      "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("project_a")),
    row("console own project edit",          C + "project-edit",      "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("project_a"), data=PROJECT_EDIT),
    row("console other project edit",        C + "project-edit",      "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=pk("project_b"), data=PROJECT_EDIT),
    row("console own project delete confirm", C + "project-delete",   "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("project_a")),
    row("console own project delete",        C + "project-delete",    "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("project_a")),
    row("console other project delete",      C + "project-delete",    "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=pk("project_b")),
    # --- API keys ------------------------------------------------------------------------------------------------------------------------
    row("console keys",                      C + "apikey-list",       "get",  "302 403 200 200 200 403 200 200 200 200 200 200"),
    row("console keys htmx",                 C + "apikey-list",       "get",  "401 403 200 200 200 403 200 200 200 200 200 200", htmx=True, query={"status": "active"}),
    row("console key add form",              C + "apikey-add",        "get",  "302 403 403 403 200 403 403 200 403 200 200 200"),
    row("console own tenant key add",        C + "apikey-add",        "post", "401 403 403 403 201 403 403 201 403 201 201 201", data=KEY_ACME),
    # Another tenant is not among the choices: the form comes back with the error on its field.
    row("console other tenant key add",      C + "apikey-add",        "post", "401 403 403 403 200 403 403 201 403 201 201 201", data=KEY_GLOBEX),
    row("console own key",                   C + "apikey-detail",     "get",  "302 403 200 200 200 403 200 200 200 200 200 200", target=pk("key_a")),
    row("console other key",                 C + "apikey-detail",     "get",  "302 403 200 404 404 403 200 200 200 200 200 200", target=pk("key_b")),
    row("console own key edit form",         C + "apikey-edit",       "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a")),
    row("console own key edit",              C + "apikey-edit",       "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("key_a"), data={"name": "key-a", "allowed_models": "matrix-model"}),
    row("console other key edit",            C + "apikey-edit",       "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=pk("key_b"), data={"name": "key-b"}),
    row("console own key rotate confirm",    C + "apikey-rotate",     "get",  "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a"), htmx=True),
    row("console own key rotate",            C + "apikey-rotate",     "post", "401 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a")),
    row("console other key rotate",          C + "apikey-rotate",     "post", "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("key_b")),
    row("console own key revoke confirm",    C + "apikey-revoke",     "get",  "302 403 403 403 200 403 403 200 403 200 200 200", target=pk("key_a")),
    row("console other key revoke confirm",  C + "apikey-revoke",     "get",  "401 403 403 403 404 403 403 200 403 200 200 200", target=pk("key_b"), htmx=True),
    row("console own key revoke",            C + "apikey-revoke",     "post", "401 403 403 403 303 403 403 303 403 303 303 303", target=pk("key_a")),
    row("console other key revoke",          C + "apikey-revoke",     "post", "401 403 403 403 404 403 403 303 403 303 303 303", target=pk("key_b")),
    # --- admin tokens: every signed-in user sees their own; minting and revoking as on the API ---------------------------------------
    row("console own tokens",                C + "admintoken-list",   "get",  "302 200 200 200 200 200 200 200 200 200 200 200"),
    row("console token add form",            C + "admintoken-add",    "get",  "302 403 403 403 403 403 403 403 403 200 200 200"),
    row("console token add",                 C + "admintoken-add",    "post", "401 403 403 403 403 403 403 403 403 201 201 201", data={"name": "matrix-token"}),
    row("console token for another",         C + "admintoken-add",    "post", "401 403 403 403 403 403 403 403 403 201 201 201", data={"name": "matrix-token", "user": "m-outsider"}),
    row("console own token revoke confirm",  C + "admintoken-revoke", "get",  "302 403 403 403 403 403 403 200 403 200 200 200", target=own_token),
    row("console own token revoke",          C + "admintoken-revoke", "post", "401 403 403 403 403 403 403 303 403 303 303 303", target=own_token),
    row("console other's token revoke",      C + "admintoken-revoke", "post", "401 403 403 403 403 403 403 404 403 404 404 404", target=outsider_token),
    # --- users, roles, memberships, dedicated permissions --------------------------------------------------------------------------------
    row("console users",                     C + "user-list",         "get",  "302 403 200 403 200 403 403 403 403 403 200 200"),
    row("console user outside my tenants",   C + "user-detail",       "get",  "302 403 200 403 404 403 403 403 403 403 200 200", target=user_pk("outsider")),
    row("console member of my tenant",       C + "user-detail",       "get",  "302 403 200 403 200 403 403 403 403 403 200 200", target=user_pk("tenant_member")),
    row("console user roles form",           C + "user-roles",        "get",  "302 403 403 403 403 403 403 403 403 403 200 200", target=user_pk("outsider")),
    row("console user roles",                C + "user-roles",        "post", "401 403 403 403 403 403 403 403 403 403 303 303", target=user_pk("outsider"), data={"roles": ["auditor"]}),
    row("console user tenant role form",     C + "user-memberships",  "get",  "302 403 403 403 404 403 403 403 403 403 200 200", target=user_pk("outsider")),
    row("console member promoted",           C + "user-memberships",  "post", "401 403 403 403 303 403 403 403 403 403 303 303", target=user_pk("tenant_member"), data=PROMOTE),
    row("console outsider given a role",     C + "user-memberships",  "post", "401 403 403 403 404 403 403 403 403 403 303 303", target=user_pk("outsider"), data=PROMOTE),
    row("console dedicated form",            C + "user-permissions",  "get",  "302 403 403 403 403 403 403 403 403 403 403 200", target=user_pk("outsider")),
    row("console dedicated grant",           C + "user-permissions",  "post", "401 403 403 403 403 403 403 403 403 403 403 303", target=user_pk("outsider"), data=DEDICATED),
]
# fmt: on
