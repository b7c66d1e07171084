"""A real OpenID provider for the tests: django-oauth-toolkit with OIDC, in its own process."""
