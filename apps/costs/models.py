"""Models of apps.costs; see ARCHITECTURE.md for what this app owns."""
