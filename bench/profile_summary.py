"""Summarise a py-spy profile in collapsed-stack ("raw") format: where the samples are.

    python bench/profile_summary.py bench/results/profile-atp-sse-0ms-64c.txt [--top 25]

Prints the functions with the most samples on top of the stack (self), the functions
with the most samples anywhere on the stack (inclusive), and the share of samples by
area (the event loop and server, ATP's own modules, aiohttp, JSON, logging, ...).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Frames look like "function (path/to/module.py:123)"; py-spy joins them with ";".
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")

AREAS = [
    ("ATP data plane", ("apps/routing/",)),
    ("ATP adapters and HTTP client glue", ("apps/providers/",)),
    ("ATP other", ("apps/", "atp_site/")),
    ("aiohttp (upstream client)", ("aiohttp/",)),
    ("channels / asgiref", ("channels/", "asgiref/")),
    ("uvicorn + httptools (server)", ("uvicorn/", "httptools/")),
    ("django", ("django/",)),
    ("asyncio / uvloop", ("asyncio/", "uvloop/")),
    ("json", ("orjson", "json/")),
    ("logging", ("logging/",)),
]


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('func')} ({file})"


def area_of(stack: list[str]) -> str:
    """The area of the innermost frame that belongs to a known area."""
    for frame in reversed(stack):
        for name, markers in AREAS:
            if any(m in frame for m in markers):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    stacks = parse(args.profile)
    total = sum(c for _, c in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, count in stacks:
        own[short(frames[-1])] += count
        for f in {short(f) for f in frames}:
            inclusive[f] += count
        areas[area_of(frames)] += count

    print(f"{args.profile}: {total} samples")
    print("\nby area (innermost known frame):")
    for name, count in areas.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\ntop {args.top} self:")
    for name, count in own.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\ntop {args.top} inclusive:")
    for name, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
