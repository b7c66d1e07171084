"""Which environment variables ATP's code reads, found in its source.

Usage: python tools/env_reads.py [DIR_OR_FILE ...]   (default: atp_site apps manage.py)

A variable counts as read where the code calls one of the settings readers
(atp_site.lib.env: env_str, env_bool, env_int, env_float, env_list, env_secret, the last
also accepting NAME_FILE) or `os.environ.get`, `os.getenv`, `os.environ.setdefault`,
`os.environ[...]` or `... in os.environ` with the variable's name written out, or with a
loop variable running over a module-level table of such names. The deployment tests
check with it that the container image, the compose file and the chart set only variables
ATP reads, and that every variable the documentation lists is read.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ("atp_site", "apps", "manage.py")
READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_secret"}
ENVIRON_METHODS = {"get", "setdefault", "pop"}


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _function_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


class _Reads(ast.NodeVisitor):
    """Collect the variable names one module reads."""

    def __init__(self, tree: ast.Module) -> None:
        self.names: set[str] = set()
        self.tables = _module_tables(tree)
        self.loops: list[dict[str, list[str]]] = []  # loop variable -> names it takes

    def _add(self, node: ast.AST, *, secret: bool = False) -> None:
        found: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found = [node.value]
        elif isinstance(node, ast.Name):
            for scope in reversed(self.loops):
                if node.id in scope:
                    found = scope[node.id]
                    break
        for name in found:
            self.names.add(name)
            if secret:
                self.names.add(f"{name}_FILE")

    def visit_For(self, node: ast.For) -> None:
        scope: dict[str, list[str]] = {}
        rows = self.tables.get(node.iter.id) if isinstance(node.iter, ast.Name) else None
        if rows is None and isinstance(node.iter, (ast.Tuple, ast.List)):
            rows = [_row(item) for item in node.iter.elts]
        if rows is not None:
            targets = node.target.elts if isinstance(node.target, ast.Tuple) else [node.target]
            for index, target in enumerate(targets):
                if isinstance(target, ast.Name):
                    scope[target.id] = [
                        row[index] for row in rows if len(row) > index and row[index] is not None
                    ]
        self.loops.append(scope)
        self.generic_visit(node)
        self.loops.pop()

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = _function_name(func)
        if node.args:
            if name in READERS:
                self._add(node.args[0], secret=name == "env_secret")
            elif name == "getenv" or (
                name in ENVIRON_METHODS
                and isinstance(func, ast.Attribute)
                and _is_environ(func.value)
            ):
                self._add(node.args[0])
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            self._add(node.slice)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)) and _is_environ(right):
                self._add(node.left)
        self.generic_visit(node)


def _row(node: ast.AST) -> list[str | None]:
    """A table row's string constants, by position (None where it holds something else)."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]
    return [
        item.value if isinstance(item, ast.Constant) and isinstance(item.value, str) else None
        for item in items
    ]


def _module_tables(tree: ast.Module) -> dict[str, list[list[str | None]]]:
    """Module-level names bound to a literal list or tuple: their rows."""
    tables = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(value, (ast.Tuple, ast.List)):
            tables[target.id] = [_row(item) for item in value.elts]
    return tables


def python_files(paths: Iterable[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.py") if "migrations" not in p.parts)
        elif path.suffix == ".py":
            files.append(path)
    return files


def variables_read(paths: Iterable[Path]) -> set[str]:
    """Every environment variable the Python files under `paths` read."""
    names: set[str] = set()
    for path in python_files(paths):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        reads = _Reads(tree)
        reads.visit(tree)
        names |= reads.names
    return names


def runtime_variables_read() -> set[str]:
    """What the server, the worker and beat read: the settings and every module they use."""
    return variables_read(ROOT / name for name in RUNTIME)


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or [ROOT / name for name in RUNTIME]
    for name in sorted(variables_read(paths)):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
