"""Contexts: named servers with their admin tokens, kept in one YAML file.

    current-context: prod
    contexts:
      prod:
        server: https://atp.example.com
        token: atpadm_...
        ca-file: /etc/ssl/certs/internal-ca.pem   # optional
        insecure-skip-tls-verify: false            # optional

The file is `$ATPCTL_CONFIG`, else `$XDG_CONFIG_HOME/atpctl/config.yaml`, else
`~/.config/atpctl/config.yaml`. It holds tokens, so it is written with mode 0600 (its
directory 0700). What a command talks to is decided in this order: the --server and --token
flags, then ATP_SERVER and ATP_TOKEN, then the context named by --context (or
ATPCTL_CONTEXT), then the current context.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from atpctl.errors import USAGE, CLIError

CONTEXT_KEYS = ("server", "token", "ca-file", "insecure-skip-tls-verify")


def config_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("ATPCTL_CONFIG"):
        return Path(os.environ["ATPCTL_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "atpctl" / "config.yaml"


def load(path: Path) -> dict[str, Any]:
    """The file's contents (an empty configuration when there is no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"current-context": None, "contexts": {}}
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}", USAGE) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CLIError(f"{path} is not valid YAML: {exc}", USAGE) from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts") or {}, dict):
        raise CLIError(f"{path}: expected a mapping with `contexts`", USAGE)
    data.setdefault("current-context", None)
    data["contexts"] = data.get("contexts") or {}
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Write the file atomically, readable by its owner only (it holds tokens)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".yaml", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mask(token: str | None) -> str:
    """A token as it may be shown: its non-secret prefix only."""
    if not token:
        return ""
    return f"{token[:11]}…" if len(token) > 20 else "****"


def check_server(server: str) -> str:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CLIError(
            f"server must be an http(s) URL such as https://atp.example.com: {server}", USAGE
        )
    return server.rstrip("/")


@dataclass(frozen=True)
class Target:
    """What a command talks to."""

    server: str
    token: str
    context: str | None
    verify: Any = True


def resolve(
    *,
    path: Path,
    context: str | None,
    server: str | None,
    token: str | None,
) -> Target:
    data = load(path)
    name = context or os.environ.get("ATPCTL_CONTEXT") or data.get("current-context")
    entry: dict[str, Any] = {}
    if name:
        found = data["contexts"].get(name)
        if found is None and (context or os.environ.get("ATPCTL_CONTEXT")):
            raise CLIError(f"no context named {name!r} in {path}", USAGE)
        entry = found or {}
    server = server or os.environ.get("ATP_SERVER") or entry.get("server")
    token = token or os.environ.get("ATP_TOKEN") or entry.get("token")
    if not server:
        raise CLIError(
            "no server: run `atpctl config set-context NAME --server URL --token-stdin`, "
            "or set ATP_SERVER",
            USAGE,
        )
    if not token:
        raise CLIError("no admin token: give the context a token, or set ATP_TOKEN", USAGE)
    verify: Any = True
    if entry.get("insecure-skip-tls-verify"):
        verify = False
    elif entry.get("ca-file"):
        import ssl

        verify = ssl.create_default_context(cafile=str(Path(entry["ca-file"]).expanduser()))
    return Target(server=check_server(str(server)), token=str(token), context=name, verify=verify)
