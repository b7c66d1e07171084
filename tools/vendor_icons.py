"""Copy the console's icons out of lucide-static's sprite into static/vendor/lucide/icons.svg.

    cd /tmp && npm pack lucide-static@0.577.0 && tar xzf lucide-static-0.577.0.tgz
    python tools/vendor_icons.py /tmp/package/sprite.svg

Add a name to ICONS and run it again to use another icon ({% icon "name" %} in templates).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ICONS = [
    "activity",
    "alert-triangle",
    "arrow-down",
    "arrow-left",
    "arrow-right",
    "arrow-up",
    "arrow-up-down",
    "bar-chart-3",
    "bell",
    "book-open",
    "check",
    "chevron-down",
    "chevron-left",
    "chevron-right",
    "chevron-up",
    "circle-alert",
    "circle-check",
    "circle-x",
    "clipboard",
    "clipboard-check",
    "clock",
    "cloud",
    "copy",
    "cpu",
    "database",
    "download",
    "external-link",
    "eye",
    "eye-off",
    "file-text",
    "filter",
    "gauge",
    "git-branch",
    "git-compare",
    "globe",
    "history",
    "home",
    "info",
    "key",
    "key-round",
    "layers",
    "layout-dashboard",
    "link",
    "list",
    "loader",
    "log-in",
    "log-out",
    "menu",
    "moon",
    "ellipsis",
    "pause",
    "pencil",
    "play",
    "plug",
    "plus",
    "power",
    "refresh-cw",
    "rotate-ccw",
    "route",
    "scale",
    "scroll-text",
    "search",
    "server",
    "settings",
    "shield",
    "shield-check",
    "shuffle",
    "sliders-horizontal",
    "sparkles",
    "square-check",
    "sun",
    "tag",
    "trash-2",
    "upload",
    "user",
    "user-cog",
    "user-plus",
    "users",
    "wallet",
    "wifi",
    "wifi-off",
    "x",
    "zap",
]

ALIASES = {
    "alert-triangle": "triangle-alert",
    "bar-chart-3": "chart-column",
    "home": "house",
    "filter": "funnel",
}


def main(sprite: Path, out: Path) -> None:
    text = sprite.read_text()
    symbols = []
    for name in ICONS:
        source = ALIASES.get(name, name)
        match = re.search(rf'<symbol id="{re.escape(source)}">(.*?)</symbol>', text, re.S)
        if match is None:
            raise SystemExit(f"lucide has no icon named {source!r}")
        body = " ".join(line.strip() for line in match.group(1).strip().splitlines())
        symbols.append(f'<symbol id="{name}" viewBox="0 0 24 24">{body}</symbol>')
    header = '<svg xmlns="http://www.w3.org/2000/svg"><!-- lucide-static 0.577.0, ISC -->\n'
    out.write_text(header + "\n".join(symbols) + "\n</svg>\n")
    print(f"{len(symbols)} icons written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parents[1] / "static/vendor/lucide/icons.svg")
