"""Signing in to the console: local accounts (throttled, optional TOTP) and OpenID Connect."""
