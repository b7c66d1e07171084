"""The permission matrix: who gets which status from every endpoint (data in rows.py)."""
