"""Backups in tests: each test writes its archives into a directory of its own."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _backups_of_this_test(settings, tmp_path):
    settings.ATP_BACKUP_DIR = tmp_path / "backups"
    settings.ATP_BACKUP_ENCRYPTION_KEY = ""
