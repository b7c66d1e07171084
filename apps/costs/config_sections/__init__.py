"""Configuration-file sections of apps.costs, one module each; importing the package
registers every section in it (atp_site.lib.config_file.sections imports it)."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
