"""Models of apps.audit; see ARCHITECTURE.md for what this app owns."""
