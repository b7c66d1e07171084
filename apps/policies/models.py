"""Models of apps.policies; see ARCHITECTURE.md for what this app owns."""
