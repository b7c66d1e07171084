"""The `atpctl` entry point."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("atpctl: not yet available")
