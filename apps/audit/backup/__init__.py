"""Backups of the database with the audit chain's signed heads, and their restore.

services (backup_create, backup_restore), archive (the file and its checks), cipher
(passphrase encryption), database (pg_dump / SQLite backup API), rotation (what to keep).
"""
