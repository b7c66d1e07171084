"""Gateway benchmark: ATP against LiteLLM's proxy and Portkey's gateway, in one run.

Each gateway runs as one worker process pinned to CPU 0; the fake upstream
(bench/upstream.mjs) and the load generator (wrk with bench/post.lua) share CPU 1. Every
scenario is also run against the upstream directly, so the latency a gateway adds is
measured in the same run. Results go to bench/results/<date>.json and
bench/results/latest.md. See docs/benchmarks.md for what each figure means.

    python bench/run.py                          # everything (about 13 minutes)
    python bench/run.py --targets upstream,atp   # a subset of gateways
    python bench/run.py --scenarios json-0ms-16c,json-300ms-1024c --window 5
    python bench/run.py --targets atp --profile json-0ms-64c   # py-spy during that scenario

Only the standard library is used, so any Python 3.11+ runs it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
RESULTS = BENCH / "results"
LOGS = CACHE / "logs"

GATEWAY_CPU = "0"
LOAD_CPU = "1"

LITELLM_VERSION = os.environ.get("BENCH_LITELLM_VERSION", "1.108.7")
PORTKEY_VERSION = "1.15.2"
HONO_NODE_SERVER_VERSION = "1.13.8"
PY_SPY_VERSION = os.environ.get("BENCH_PY_SPY_VERSION", "")

ATP_KEY = "atp_benchmark_key_0123456789abcdef"
LITELLM_KEY = "sk-bench-litellm-master"
UPSTREAM_KEY = "sk-upstream-bench"

# The shortest idle keep-alive timeout among the servers measured (uvicorn's and Node's).
KEEPALIVE_S = 5.0


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    connections: int
    delay_ms: int
    stream: bool
    default: bool = True

    @property
    def slow(self) -> bool:
        return self.delay_ms > 0

    @property
    def label(self) -> str:
        kind = "streamed" if self.stream else "non-streamed"
        return f"{kind}, upstream {self.delay_ms} ms, {self.connections} conns"


SCENARIOS = [
    Scenario("json-0ms-16c", 16, 0, False),
    Scenario("json-0ms-64c", 64, 0, False),
    Scenario("sse-0ms-16c", 16, 0, True),
    Scenario("sse-0ms-64c", 64, 0, True),
    Scenario("json-300ms-256c", 256, 300, False),
    Scenario("json-300ms-1024c", 1024, 300, False),
    Scenario("sse-300ms-256c", 256, 300, True),
    Scenario("sse-300ms-1024c", 1024, 300, True),
]
SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}

TARGET_NAMES = [
    "upstream",
    "atp",
    "portkey",
    "litellm",
    "atp-routed",
    "atp-redis",
    "atp-limits",
    "atp-governed",
]
# Run when --targets is not given; atp-routed (every request through the routing engine)
# is asked for explicitly.
DEFAULT_TARGETS = ["upstream", "atp", "portkey", "litellm"]


# --------------------------------------------------------------------------- processes


class Processes:
    """Everything the benchmark starts, so that every exit path can stop it."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(
        self,
        name: str,
        cmd: list[str],
        *,
        cpu: str,
        env: dict[str, str | None] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `cmd` pinned to `cpu` in its own session; an env value of None unsets it."""
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["taskset", "-c", cpu, *cmd],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd or ROOT,
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Children that left the group's leader behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.procs)):
            self.stop(proc, grace=3.0)


PROCS = Processes()


def _on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` (raises until then)."""
    socket.create_connection(("127.0.0.1", port), 1).close()
    return True


def http(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_until(
    check: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode} (see {LOGS})")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f} s (see {LOGS})")


# --------------------------------------------------------------------------- /proc readings


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def status_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory in MiB, summed over the process and its children."""
    pids = process_tree(pid)
    hwm = sum(status_kib(p, "VmHWM") for p in pids)
    rss = sum(status_kib(p, "VmRSS") for p in pids)
    return hwm / 1024, rss / 1024


def tree_cpu_seconds(pid: int) -> float:
    ticks = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_busy_ticks() -> dict[str, tuple[int, int]]:
    """Per-CPU (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                nums = [int(v) for v in vals]
                idle = nums[3] + nums[4]
                out[name[3:]] = (sum(nums) - idle, sum(nums))
    return out


def cpu_busy_pct(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], cpu: str
) -> float:
    b0, t0 = before.get(cpu, (0, 0))
    b1, t1 = after.get(cpu, (0, 0))
    return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


# --------------------------------------------------------------------------- installs


def run_checked(cmd: list[str], *, cwd: Path | None = None, timeout: float = 900) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, check=True, timeout=timeout)


def ensure_apt(binary: str, package: str) -> None:
    if shutil.which(binary):
        return
    if os.geteuid() != 0:
        raise SystemExit(f"{binary} is missing; install the Debian package {package!r}")
    try:
        run_checked(["apt-get", "install", "-y", "-q", package])
    except subprocess.CalledProcessError:
        run_checked(["apt-get", "update", "-q"])
        run_checked(["apt-get", "install", "-y", "-q", package])


def ensure_portkey() -> Path:
    ensure_apt("node", "nodejs")
    ensure_apt("npm", "npm")
    home = CACHE / "portkey"
    server = home / "node_modules/@portkey-ai/gateway/build/start-server.js"
    package = {
        "name": "atp-bench-portkey",
        "private": True,
        "dependencies": {
            "@portkey-ai/gateway": PORTKEY_VERSION,
            "@hono/node-server": HONO_NODE_SERVER_VERSION,
        },
        # The gateway's own range lets npm pick a node-server whose streaming breaks it.
        "overrides": {"@hono/node-server": HONO_NODE_SERVER_VERSION},
    }
    home.mkdir(parents=True, exist_ok=True)
    manifest = home / "package.json"
    wanted = json.dumps(package, indent=2) + "\n"
    installed = home / "node_modules/@portkey-ai/gateway/package.json"
    if (
        server.exists()
        and manifest.exists()
        and manifest.read_text() == wanted
        and json.loads(installed.read_text()).get("version") == PORTKEY_VERSION
    ):
        return server
    manifest.write_text(wanted)
    run_checked(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=home)
    return server


def ensure_venv_package(
    venv: Path, requirement: str, probe: str, extra: list[str] | None = None
) -> Path:
    python = venv / "bin/python"
    marker = venv / ".bench-requirement"
    want = " ".join([requirement, *(extra or [])])
    if (
        python.exists()
        and (venv / "bin" / probe).exists()
        and marker.exists()
        and marker.read_text() == want
    ):
        return venv
    if not python.exists():
        run_checked([sys.executable, "-m", "venv", str(venv)])
    run_checked(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            requirement,
            *(extra or []),
        ]
    )
    marker.write_text(want)
    return venv


def ensure_litellm() -> Path:
    req = f"litellm[proxy]=={LITELLM_VERSION}" if LITELLM_VERSION else "litellm[proxy]"
    return ensure_venv_package(CACHE / "litellm-venv", req, "litellm", ["uvloop"])


def ensure_py_spy() -> Path:
    req = f"py-spy=={PY_SPY_VERSION}" if PY_SPY_VERSION else "py-spy"
    venv = ensure_venv_package(CACHE / "tools-venv", req, "py-spy")
    return venv / "bin/py-spy"


def atp_python(root: Path = ROOT) -> Path:
    python = root / ".venv/bin/python"
    if not python.exists():
        raise SystemExit("ATP's virtualenv is missing: run `make install` first")
    return python


# --------------------------------------------------------------------------- targets


@dataclass
class Endpoint:
    url: str
    headers: dict[str, str]
    pid: int | None  # the gateway's process, None for the upstream itself
    version: str = ""


class Upstream:
    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = PROCS.spawn(
            "upstream",
            ["node", str(BENCH / "upstream.mjs"), "--port", str(self.port)],
            cpu=LOAD_CPU,
        )
        wait_until(
            lambda: http("GET", self.base + "/__bench/stats")[0] == 200, 15, "upstream", self.proc
        )

    def configure(self, delay_ms: int) -> None:
        http("POST", self.base + "/__bench/config", {"delay_ms": delay_ms})

    def reset(self) -> None:
        http("POST", self.base + "/__bench/reset", {})

    def stats(self) -> dict[str, Any]:
        return json.loads(http("GET", self.base + "/__bench/stats")[1])

    def settle(self, timeout: float = 30.0) -> float:
        """Wait until the upstream has seen no new request for a second and has none in
        flight: a gateway may still be working off requests whose clients left."""
        start = time.monotonic()
        last = self.stats()
        while time.monotonic() - start < timeout:
            time.sleep(1.0)
            now = self.stats()
            if now["received"] == last["received"] and now["inflight"] <= 0:
                break
            last = now
        return time.monotonic() - start


class Target:
    name = ""

    def __init__(self, upstream: Upstream, work: Path) -> None:
        self.upstream = upstream
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Endpoint:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            PROCS.stop(self.proc)
            self.proc = None


class DirectTarget(Target):
    name = "upstream"

    def start(self) -> Endpoint:
        return Endpoint(
            url=self.upstream.base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {UPSTREAM_KEY}"},
            pid=None,
            version="bench/upstream.mjs on node "
            + subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        )


class AtpTarget(Target):
    name = "atp"
    config = "atp.yaml"
    # The source tree served; bench/pairs.py points it at a checkout of another commit.
    root: Path = ROOT

    # Extra environment of the served process and its setup (atp-redis, atp-limits).
    def extra_env(self) -> dict[str, str | None]:
        return {}

    # Python run with `manage.py shell -c` after the configuration is applied.
    after_apply = ""

    def start(self) -> Endpoint:
        python = atp_python(self.root)
        data_dir = Path(tempfile.mkdtemp(prefix="atp-bench-", dir=self.work))
        env: dict[str, str | None] = {
            "ATP_DATA_DIR": str(data_dir),
            "ATP_LOG_LEVEL": "WARNING",
            **self.extra_env(),
        }
        database = bench_database(self.name)
        if database:
            # A shared database needs the instance's secrets given (ATP refuses to start
            # otherwise); fresh ones for the run (the head key as a secret to derive from).
            env["DATABASE_URL"] = database
            for name in ("SECRET_KEY", "ENCRYPTION_KEY", "AUDIT_SIGNING_KEY", "AUDIT_HEAD_KEY"):
                env[f"ATP_{name}"] = secrets.token_urlsafe(48)
        full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        run = lambda cmd: subprocess.run(  # noqa: E731
            cmd, cwd=self.root, env=full_env, check=True, timeout=300, capture_output=True
        )
        log(f"atp: migrating a fresh data dir {data_dir}")
        run([str(python), "manage.py", "migrate", "--noinput"])
        base_url = self.upstream.base + "/v1"
        if self.config != "atp.yaml" or (
            self._has_command(python, full_env, "atp_apply")
            and os.environ.get("BENCH_ATP_SETUP") != "orm"
        ):
            config = data_dir / self.config
            config.write_text(
                (BENCH / self.config).read_text().replace("http://127.0.0.1:9/v1", base_url)
            )
            log(f"{self.name}: manage.py atp_apply bench/{self.config}")
            full_env["BENCH_ATP_KEY"] = ATP_KEY
            full_env["BENCH_UPSTREAM_API_KEY"] = UPSTREAM_KEY
            run([str(python), "manage.py", "atp_apply", str(config)])
            if self.after_apply:
                log(f"{self.name}: manage.py shell (its extra configuration)")
                run([str(python), "manage.py", "shell", "-c", self.after_apply])
        else:
            log("atp: configuring through the services (bench/atp_setup.py)")
            run(
                [
                    str(python),
                    str(BENCH / "atp_setup.py"),
                    "--base-url",
                    base_url,
                    "--key",
                    ATP_KEY,
                    "--upstream-key",
                    UPSTREAM_KEY,
                ]
            )
        port = free_port()
        self.proc = PROCS.spawn(
            self.name,
            [
                str(self.root / ".venv/bin/uvicorn"),
                "atp_site.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
                "--lifespan",
                "on",
                "--backlog",
                "4096",
            ],
            cpu=GATEWAY_CPU,
            env=env,
            cwd=self.root,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: listening(port),
            60,
            "atp",
            self.proc,
        )
        return Endpoint(
            url=base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {ATP_KEY}"},
            pid=self.proc.pid,
            version=atp_version(self.root),
        )

    def _has_command(self, python: Path, env: dict[str, str], command: str) -> bool:
        res = subprocess.run(
            [str(python), "manage.py", "help", command],
            cwd=self.root,
            env=env,
            capture_output=True,
            timeout=120,
        )
        return res.returncode == 0


class LitellmTarget(Target):
    name = "litellm"

    def start(self) -> Endpoint:
        venv = ensure_litellm()
        config = self.work / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            "  - model_name: bench-model\n"
            "    litellm_params:\n"
            "      model: openai/gpt-4o-mini\n"
            f"      api_base: {self.upstream.base}/v1\n"
            f"      api_key: {UPSTREAM_KEY}\n"
            "litellm_settings:\n"
            "  telemetry: false\n"
            "  drop_params: true\n"
            "general_settings:\n"
            f"  master_key: {LITELLM_KEY}\n"
        )
        port = free_port()
        env: dict[str, str | None] = {
            # The cost map is otherwise fetched from the internet at import time.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "DISABLE_SCHEMA_UPDATE": "true",
            # No database, no Redis: the proxy as its quick start runs it.
            "DATABASE_URL": None,
            "REDIS_URL": None,
            "REDIS_HOST": None,
        }
        self.proc = PROCS.spawn(
            "litellm",
            [
                str(venv / "bin/litellm"),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            cpu=GATEWAY_CPU,
            env=env,
            cwd=self.work,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: http("GET", base + "/health/liveliness", timeout=2)[0] == 200,
            120,
            "litellm",
            self.proc,
        )
        version = subprocess.run(
            [
                str(venv / "bin/python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return Endpoint(
            url=base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {LITELLM_KEY}"},
            pid=self.proc.pid,
            version=f"litellm[proxy] {version}",
        )


class PortkeyTarget(Target):
    name = "portkey"

    def start(self) -> Endpoint:
        server = ensure_portkey()
        port = free_port()
        self.proc = PROCS.spawn(
            "portkey",
            ["node", str(server), f"--port={port}", "--headless"],
            cpu=GATEWAY_CPU,
            env={"NODE_ENV": "production"},
            cwd=CACHE / "portkey",
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http("GET", base + "/", timeout=2)[0] == 200, 60, "portkey", self.proc)
        return Endpoint(
            url=base + "/v1/chat/completions",
            headers={
                "authorization": f"Bearer {UPSTREAM_KEY}",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": self.upstream.base + "/v1",
            },
            pid=self.proc.pid,
            version=f"@portkey-ai/gateway {PORTKEY_VERSION} (@hono/node-server {HONO_NODE_SERVER_VERSION})",
        )


class AtpRoutedTarget(AtpTarget):
    """ATP with `bench-model` as a learned route over three deployments."""

    name = "atp-routed"
    config = "atp-routed.yaml"


_private_redis: str | None = None


def private_redis() -> str:
    """A redis-server of the benchmark's own, on the load CPU beside the upstream and wrk,
    started once per run: the shared one on this machine serves other work, and Redis on
    the gateway's CPU would bill its time to the gateway."""
    global _private_redis
    if _private_redis is None:
        port = free_port()
        proc = PROCS.spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cpu=LOAD_CPU,
        )
        wait_until(
            lambda: listening(port),
            15,
            "redis",
            proc,
        )
        _private_redis = f"redis://127.0.0.1:{port}/0"
    return _private_redis


_private_postgres: int | None = None
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def private_postgres() -> int:
    """A PostgreSQL cluster of the benchmark's own, on the load CPU like Redis (its server
    processes' time is not the gateway's), with the server's default durability settings;
    one database per ATP target. Returns the cluster's port."""
    global _private_postgres
    if _private_postgres is None:
        # Under /tmp itself: the work directory is private to this user, and the server
        # runs as `postgres` when this runs as root.
        root = Path(tempfile.mkdtemp(prefix="atp-bench-pg-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            shutil.chown(root, "postgres")
        subprocess.run(
            [*as_postgres, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-A", "trust",
             "-U", "postgres", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        port = free_port()
        proc = PROCS.spawn(
            "postgres",
            [*as_postgres, str(PG_BIN / "postgres"), "-D", str(root / "data"), "-p", str(port),
             "-k", str(root), "-c", "listen_addresses=127.0.0.1"],
            cpu=LOAD_CPU,
        )  # fmt: skip
        wait_until(lambda: listening(port), 30, "postgres", proc)
        _private_postgres = port
    return _private_postgres


def bench_database(name: str) -> str | None:
    """DATABASE_URL for an ATP target under BENCH_DATABASE=postgres (a fresh database on
    the private cluster), else None: the embedded SQLite file."""
    if os.environ.get("BENCH_DATABASE", "sqlite") != "postgres":
        return None
    port = private_postgres()
    database = "atp_" + re.sub(r"[^a-z0-9]", "_", name.lower())
    server = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    for command in (["dropdb", "--if-exists"], ["createdb"]):
        subprocess.run(
            [str(PG_BIN / command[0]), *command[1:], *server, database],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return f"postgres://postgres@127.0.0.1:{port}/{database}"


class AtpRedisTarget(AtpTarget):
    """ATP as in production: Redis configured (BENCH_REDIS_URL, else a private redis-server
    on the load CPU), and no limits or budgets."""

    name = "atp-redis"

    def extra_env(self) -> dict[str, str | None]:
        return {
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL") or private_redis(),
            "ATP_REDIS_PREFIX": f"atp-bench-{os.getpid()}-{self.name}",
            # As in production, the web process runs no periodic jobs (Celery beat and a
            # worker do, elsewhere); the few tasks a request queues run in process.
            "ATP_CELERY_EAGER": "true",
            "ATP_LOCAL_BEAT": "false",
        }


class AtpLimitsTarget(AtpRedisTarget):
    """atp-redis with every request going through a key with rate limits (requests,
    tokens, concurrency), a tenant budget and a project budget: one admission round trip
    to Redis per request and settlements batched behind the responses. The limits are set
    high enough never to refuse, so only their cost is measured."""

    name = "atp-limits"
    after_apply = """
from decimal import Decimal
from apps.costs import services as costs
from apps.tenants import services as tenants
from apps.tenants.models import ApiKey, Tenant
tenant = Tenant.objects.get(slug="bench")
key = ApiKey.objects.get(tenant=tenant, name="bench")
project = tenants.project_create(tenant=tenant, slug="bench-project")
tenants.api_key_update(api_key=key, project=project)
costs.rate_limit_create(scope="key", api_key=key, requests_per_minute=100_000_000,
    tokens_per_minute=10**12, max_concurrent=100_000)
costs.budget_create(scope="tenant", tenant=tenant, name="tenant-monthly", period="monthly",
    limit_usd=Decimal("1000000"))
costs.budget_create(scope="project", project=project, name="project-daily", period="daily",
    limit_usd=Decimal("1000000"))
"""


class AtpGovernedTarget(AtpRedisTarget):
    """atp-redis with governance at work on every request: the tenant has 100 policies in
    scope with 3 to 5 conditions each (deny, route, cost-cap, retention and guard effects
    over the subject, the request's classification, entities, endpoint, model, hours and
    hints; most of them do not match a given request, as in a real rule set), and one that
    masks every structured entity type the prompt holds, so each request is detected,
    classified, evaluated, redacted, and its answer scanned for placeholders to restore.
    Meant for bench/governance_runs.py, which sends the 2,000-token prompt of
    bench/governance_prompt.json to every target."""

    name = "atp-governed"
    after_apply = """
from apps.policies.services import policy_create
from apps.tenants.models import Tenant
tenant = Tenant.objects.get(slug="bench")
ENTITIES = ["EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "SECRET"]
effects = [
    {"type": "deny", "message": "not for this group"},
    {"type": "route", "exclude_providers": ["some-other-provider"]},
    {"type": "cap_cost", "max_usd": 5.0},
    {"type": "retention", "days": 90},
    {"type": "guard", "egress": {"entities": ["SECRET"], "mode": "mask"}},
]
for i in range(100):
    when = [
        {"attr": "request.endpoint", "op": "in", "value": ["chat", "messages"]},
        {"attr": "request.classification", "op": "in", "value": ["confidential", "restricted"]},
        {"attr": "subject.end_user", "op": "eq", "value": f"user-{i}"},
    ]
    if i % 2:
        when.append({"attr": "request.hour", "op": "between", "value": [0, 23]})
    if i % 3 == 0:
        when.append({"attr": "request.entities", "op": "contains_any", "value": ENTITIES[: 1 + i % 7]})
    policy_create(tenant=tenant, name=f"rule-{i:03d}", priority=i % 10,
        rules=[{"when": when, "effect": effects[i % len(effects)]}])
policy_create(tenant=tenant, name="mask-personal-data", priority=50, rules=[{
    "when": [
        {"attr": "request.entities", "op": "contains_any", "value": ENTITIES},
        {"attr": "request.endpoint", "op": "in", "value": ["chat", "messages", "embeddings"]},
        {"attr": "request.classification", "op": "in", "value": ["confidential", "restricted"]},
    ],
    "effect": {"type": "redact", "entities": ENTITIES, "mode": "mask"},
}])
"""


TARGET_CLASSES: dict[str, type[Target]] = {
    "upstream": DirectTarget,
    "atp": AtpTarget,
    "atp-routed": AtpRoutedTarget,
    "atp-redis": AtpRedisTarget,
    "atp-limits": AtpLimitsTarget,
    "atp-governed": AtpGovernedTarget,
    "portkey": PortkeyTarget,
    "litellm": LitellmTarget,
}


def atp_version(root: Path = ROOT) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True
        ).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD")
    code = git("log", "-1", "--format=%h", "--abbrev=12", "--", "apps", "atp_site")
    dirty = git("status", "--porcelain", "--", "apps", "atp_site")
    return f"ATP at {head} (last change to apps/ and atp_site/: {code})" + (
        " with uncommitted changes" if dirty else ""
    )


# --------------------------------------------------------------------------- checks


def smoke_test(target: str, ep: Endpoint, upstream: Upstream) -> None:
    """One non-streamed and one streamed request must come back whole from the upstream."""
    upstream.configure(0)
    upstream.reset()
    body = {"model": "bench-model", "messages": [{"role": "user", "content": "Say hello"}]}
    status, raw = http("POST", ep.url, body, ep.headers, timeout=30)
    if status != 200:
        raise RuntimeError(f"{target}: non-streamed request got {status}: {raw[:300]!r}")
    reply = json.loads(raw)
    content = reply["choices"][0]["message"]["content"]
    if not content.startswith("Hello"):
        raise RuntimeError(f"{target}: unexpected completion {raw[:300]!r}")
    status, raw = http("POST", ep.url, {**body, "stream": True}, ep.headers, timeout=30)
    text = raw.decode()
    events = [line for line in text.splitlines() if line.startswith("data:")]
    if status != 200 or not text.rstrip().endswith("data: [DONE]"):
        raise RuntimeError(f"{target}: streamed request got {status}: {text[:300]!r}")
    seen = upstream.stats()
    if seen["received"] < 2:
        raise RuntimeError(f"{target}: the upstream saw {seen['received']} requests, expected 2")
    log(f"{target}: smoke test ok ({len(events)} SSE data events relayed)")


# --------------------------------------------------------------------------- wrk


def wrk_args(headers: dict[str, str]) -> list[str]:
    return [f"{k}={v.replace(' ', '%20')}" for k, v in headers.items()]


def run_wrk(
    ep: Endpoint,
    sc: Scenario,
    window: float,
    drain: float,
    timeout_s: float,
    at_window_end: Any = None,
) -> dict[str, Any]:
    """Run wrk once; `at_window_end` is called when the sending window closes."""
    cmd = [
        "taskset",
        "-c",
        LOAD_CPU,
        "wrk",
        "-t",
        "1",
        "-c",
        str(sc.connections),
        "-d",
        f"{window + drain:g}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(BENCH / "post.lua"),
        ep.url,
        "--",
        f"{window:g}",
        *(["stream"] if sc.stream else []),
        *wrk_args(ep.headers),
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        if at_window_end is not None:
            time.sleep(window)
            at_window_end()
        try:
            stdout, stderr = proc.communicate(timeout=window + drain + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(
        f"wrk printed no result (rc={proc.returncode}): {stdout[-500:]} {stderr[-500:]}"
    )


@dataclass
class Row:
    target: str
    scenario: str
    connections: int
    delay_ms: int
    stream: bool
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors: int
    non2xx: int
    socket_errors: int
    timeouts: int
    unfinished: int
    sent: int
    responses: int
    upstream_received: int
    upstream_completed: int
    peak_mib: float | None
    rss_mib: float | None
    gateway_cpu_pct: float | None
    req_per_cpu_s: float | None
    cpu0_busy_pct: float
    cpu0_others_pct: float | None
    cpu1_busy_pct: float
    first_non2xx_status: int = 0
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def measure(
    target: str,
    ep: Endpoint,
    sc: Scenario,
    upstream: Upstream,
    args: argparse.Namespace,
    profiler: Path | None,
) -> Row:
    upstream.configure(sc.delay_ms)
    drain = args.drain_slow if sc.slow else args.drain_fast
    # Warm-up: same connections, short; then let the gateway finish what it still holds.
    run_wrk(ep, sc, args.warmup, 1.0, args.timeout)
    upstream.settle(timeout=20)
    upstream.reset()

    prof_proc = None
    if profiler is not None and ep.pid is not None:
        raw_profile = CACHE / "profiles" / f"{target}-{sc.name}.txt"
        raw_profile.parent.mkdir(parents=True, exist_ok=True)
        prof_proc = subprocess.Popen(
            [
                "taskset",
                "-c",
                LOAD_CPU,
                str(profiler),
                "record",
                "--pid",
                str(ep.pid),
                "--rate",
                "250",
                "--duration",
                f"{int(args.window)}",
                "--format",
                "raw",
                "-o",
                str(raw_profile),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    cpu_before = cpu_busy_ticks()
    gw_before = tree_cpu_seconds(ep.pid) if ep.pid else 0.0
    t0 = time.monotonic()
    at_end: dict[str, Any] = {}

    def sample() -> None:
        at_end["elapsed"] = time.monotonic() - t0
        at_end["cpu"] = cpu_busy_ticks()
        at_end["gw"] = tree_cpu_seconds(ep.pid) if ep.pid else 0.0

    res = run_wrk(ep, sc, args.window, drain, args.timeout, at_window_end=sample)
    gw_total = (tree_cpu_seconds(ep.pid) if ep.pid else 0.0) - gw_before
    up = upstream.stats()
    elapsed = at_end["elapsed"]
    cpu_after = at_end["cpu"]
    gw_window = at_end["gw"] - gw_before
    if prof_proc is not None:
        try:
            prof_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prof_proc.kill()
        summary = subprocess.run(
            [sys.executable, str(BENCH / "profile_summary.py"), str(raw_profile), "--top", "40"],
            capture_output=True,
            text=True,
        )
        (RESULTS / f"profile-{target}-{sc.name}.txt").write_text(summary.stdout + summary.stderr)
    peak, rss = tree_memory(ep.pid) if ep.pid else (None, None)

    socket_errors = res["connect_errors"] + res["read_errors"] + res["write_errors"]
    # wrk's own "status" errors are >= 400 only; post.lua counts every non-2xx.
    non2xx = res["non2xx"]
    row = Row(
        target=target,
        scenario=sc.name,
        connections=sc.connections,
        delay_ms=sc.delay_ms,
        stream=sc.stream,
        rps=res["in_window"] / res["window_s"],
        # No response, no latency: wrk then reports zeros.
        p50_ms=res["p50_us"] / 1000 if res["responses"] else None,
        p90_ms=res["p90_us"] / 1000 if res["responses"] else None,
        p99_ms=res["p99_us"] / 1000 if res["responses"] else None,
        max_ms=res["latency_max_us"] / 1000 if res["responses"] else None,
        errors=non2xx + socket_errors,
        non2xx=non2xx,
        socket_errors=socket_errors,
        timeouts=res["timeouts"],
        unfinished=max(0, res["sent"] - res["responses"]),
        sent=res["sent"],
        responses=res["responses"],
        upstream_received=up["received"],
        upstream_completed=up["completed"],
        peak_mib=round(peak, 1) if peak is not None else None,
        rss_mib=round(rss, 1) if rss is not None else None,
        gateway_cpu_pct=round(100 * gw_window / elapsed, 1) if ep.pid else None,
        req_per_cpu_s=round(res["responses"] / gw_total, 1) if ep.pid and gw_total > 0 else None,
        cpu0_busy_pct=round(cpu_busy_pct(cpu_before, cpu_after, GATEWAY_CPU), 1),
        cpu0_others_pct=round(
            max(0.0, cpu_busy_pct(cpu_before, cpu_after, GATEWAY_CPU) - 100 * gw_window / elapsed),
            1,
        )
        if ep.pid
        else None,
        cpu1_busy_pct=round(cpu_busy_pct(cpu_before, cpu_after, LOAD_CPU), 1),
        first_non2xx_status=res["first_non2xx_status"],
        extra={"wrk": res, "drain_s": drain},
    )
    log(
        f"{target:8s} {sc.name:17s} {row.rps:8.1f} req/s  p50 {fmt(row.p50_ms):>8s} ms"
        f"  p99 {fmt(row.p99_ms):>8s} ms"
        f"  errors {row.errors}  timeouts {row.timeouts}  unfinished {row.unfinished}"
        + (
            f"  peak {row.peak_mib} MiB  cpu {row.gateway_cpu_pct}%  {row.req_per_cpu_s} req/cpu-s"
            if ep.pid
            else ""
        )
    )
    settled = upstream.settle(timeout=30)
    if settled > 3:
        log(f"{target}: the upstream kept receiving requests for {settled:.0f} s after the run")
    row.extra["settle_s"] = round(settled, 1)
    return row


# --------------------------------------------------------------------------- report


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    if b == 0:
        return "all vs none" if a > 0 else "-"
    return f"{a / b:.2f}x"


def add_latency_overheads(rows: list[Row]) -> None:
    direct = {r.scenario: r for r in rows if r.target == "upstream"}
    for r in rows:
        d = direct.get(r.scenario)
        if d is not None and r.target != "upstream":
            if r.p50_ms is not None and d.p50_ms is not None:
                r.added_p50_ms = round(r.p50_ms - d.p50_ms, 2)
            if r.p99_ms is not None and d.p99_ms is not None:
                r.added_p99_ms = round(r.p99_ms - d.p99_ms, 2)


def evaluate_targets(rows: list[Row]) -> list[dict[str, Any]]:
    by = {(r.target, r.scenario): r for r in rows}
    checks: list[dict[str, Any]] = []
    scenarios = [s for s in SCENARIOS if ("atp", s.name) in by]
    for sc in scenarios:
        atp = by[("atp", sc.name)]
        pk = by.get(("portkey", sc.name))
        lt = by.get(("litellm", sc.name))
        direct = by.get(("upstream", sc.name))
        # With a slow upstream, connections / delay caps every gateway's throughput (the
        # upstream's own figure in the same scenario). A gateway within 5% of that cap is
        # not what limits the ratio.
        capped = direct is not None and sc.slow and atp.rps >= 0.95 * direct.rps
        if pk is not None:
            want = 1.5 if sc.stream else 2.0
            ratio = atp.rps / pk.rps if pk.rps else float("inf")
            value = f"{ratio:.2f}x"
            if direct is not None and sc.slow and pk.rps:
                value += f" (at most {direct.rps / pk.rps:.2f}x possible)"
            checks.append(
                {
                    "check": f"{sc.name}: throughput vs Portkey",
                    "value": value,
                    "target": f">= {want}x",
                    "ok": ratio >= want or capped,
                }
            )
            if atp.added_p50_ms is not None and pk.added_p50_ms is not None:
                checks.append(
                    {
                        "check": f"{sc.name}: added p50 vs Portkey",
                        "value": f"{atp.added_p50_ms:.2f} ms vs {pk.added_p50_ms:.2f} ms",
                        "target": "<= Portkey's",
                        "ok": atp.added_p50_ms <= pk.added_p50_ms,
                    }
                )
        if lt is not None:
            ratio = atp.rps / lt.rps if lt.rps else float("inf")
            checks.append(
                {
                    "check": f"{sc.name}: throughput vs LiteLLM",
                    "value": (f"{ratio:.1f}x" if lt.rps else "LiteLLM answered nothing")
                    + (
                        f" (at most {direct.rps / lt.rps:.1f}x possible)"
                        if direct is not None and sc.slow and lt.rps
                        else ""
                    ),
                    "target": ">= 20x",
                    "ok": ratio >= 20 or capped,
                }
            )
        if sc.connections == 1024:
            clean = atp.errors == 0 and atp.unfinished == 0
            checks.append(
                {
                    "check": f"{sc.name}: errors / unfinished",
                    "value": f"{atp.errors} / {atp.unfinished} ({atp.timeouts} wrk timeouts)",
                    "target": "0 / 0",
                    "ok": clean,
                }
            )
    atp_rows = [r for r in rows if r.target == "atp" and r.peak_mib is not None]
    if atp_rows:
        peak = max(r.peak_mib or 0 for r in atp_rows)
        checks.append(
            {
                "check": "peak memory (VmHWM)",
                "value": f"{peak:.0f} MiB",
                "target": "< 250 MiB",
                "ok": peak < 250,
            }
        )
    return checks


def render_markdown(meta: dict[str, Any], rows: list[Row], checks: list[dict[str, Any]]) -> str:
    out = [
        f"# Gateway benchmark — {meta['date']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        "Each gateway: one worker process on CPU 0. Fake upstream and wrk: CPU 1. "
        f"Measured window {meta['options']['window']} s per scenario after a {meta['options']['warmup']} s "
        f"warm-up; drain {meta['options']['drain_fast']} s (0 ms upstream) / {meta['options']['drain_slow']} s "
        f"(300 ms upstream); wrk --timeout {meta['options']['timeout']} s.",
        "",
        "| target | version |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in meta["versions"].items()],
        "",
        "## Results",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors | timeouts"
        " | unfinished | peak MiB | gateway CPU % | req per CPU-s | others on CPU 0 % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {n: i for i, n in enumerate(TARGET_NAMES)}
    sc_order = {s.name: i for i, s in enumerate(SCENARIOS)}
    for r in sorted(rows, key=lambda r: (sc_order[r.scenario], order[r.target])):
        out.append(
            f"| {r.scenario} | {r.target} | {fmt(r.rps)} | {fmt(r.p50_ms)} | {fmt(r.p99_ms)} "
            f"| {fmt(r.added_p50_ms)} | {fmt(r.added_p99_ms)} | {r.errors} | {r.timeouts} | {r.unfinished} "
            f"| {fmt(r.peak_mib, 0)} | {fmt(r.gateway_cpu_pct, 0)} | {fmt(r.req_per_cpu_s, 0)} "
            f"| {fmt(r.cpu0_others_pct, 0)} |"
        )
    by = {(r.target, r.scenario): r for r in rows}
    ratio_lines = []
    for sc in SCENARIOS:
        atp = by.get(("atp", sc.name))
        if atp is None:
            continue
        parts = []
        for ref in ("portkey", "litellm"):
            other = by.get((ref, sc.name))
            parts.append(ratio(atp.rps, other.rps if other else None))
            parts.append(ratio(atp.req_per_cpu_s, other.req_per_cpu_s if other else None))
        ratio_lines.append(f"| {sc.name} | " + " | ".join(parts) + " |")
    if ratio_lines:
        out += [
            "",
            "## ATP throughput ratios",
            "",
            "| scenario | req/s vs Portkey | per CPU-s vs Portkey | req/s vs LiteLLM"
            " | per CPU-s vs LiteLLM |",
            "| --- | ---: | ---: | ---: | ---: |",
            *ratio_lines,
        ]
    if checks:
        out += [
            "",
            "## Targets",
            "",
            "| check | measured | target | met |",
            "| --- | --- | --- | --- |",
        ]
        out += [
            f"| {c['check']} | {c['value']} | {c['target']} | {'yes' if c['ok'] else '**no**'} |"
            for c in checks
        ]
    out += [
        "",
        "req/s = responses received inside the window / window. errors = non-2xx responses +"
        " socket errors (connect, read, write). timeouts = wrk's count of requests over its"
        " timeout. unfinished = requests sent in the window without a response by the end of the"
        " drain. peak MiB = VmHWM summed over the gateway's processes since it started, so it"
        " includes every scenario run before. Added latency = the gateway's percentile minus the"
        " upstream's own in the same scenario. req per CPU-s = responses / CPU seconds the gateway"
        " used (steadier than req/s when other work shares the machine). others on CPU 0 % ="
        " CPU 0 busy time not spent by the gateway during the window (other users' load).",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ATP gateway benchmark against LiteLLM and Portkey")
    p.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated subset of {','.join(TARGET_NAMES)}",
    )
    p.add_argument(
        "--scenarios",
        default="default",
        help="comma-separated scenario names, 'default' or 'all': "
        + ", ".join(s.name for s in SCENARIOS),
    )
    p.add_argument("--window", type=float, default=12.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=3.0)
    # The drain must stay under the gateways' keep-alive timeout (5 s for uvicorn and Node):
    # a server closing a connection that fell idle after the window is a wrk read error
    # that no real client would have seen.
    p.add_argument(
        "--drain-fast", type=float, default=3.0, help="drain after the window, 0 ms upstream"
    )
    p.add_argument(
        "--drain-slow", type=float, default=4.0, help="drain after the window, 300 ms upstream"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="wrk --timeout in seconds")
    p.add_argument("--profile", default="", help="scenario names during which py-spy samples ATP")
    p.add_argument(
        "--no-install", action="store_true", help="fail instead of installing what is missing"
    )
    p.add_argument("--out", default=str(RESULTS))
    return p.parse_args()


def main() -> int:
    args = parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in TARGET_CLASSES:
            raise SystemExit(f"unknown target {t!r}; choose from {TARGET_NAMES}")
    if args.scenarios == "default":
        scenarios = [s for s in SCENARIOS if s.default]
    elif args.scenarios == "all":
        scenarios = list(SCENARIOS)
    else:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIO_BY_NAME]
        if unknown:
            raise SystemExit(f"unknown scenarios {unknown}; choose from {list(SCENARIO_BY_NAME)}")
        scenarios = [SCENARIO_BY_NAME[n] for n in names]
    profile_for = {n.strip() for n in args.profile.split(",") if n.strip()}
    if max(args.drain_slow, args.drain_fast) >= min(args.timeout, KEEPALIVE_S):
        raise SystemExit(f"the drain must be shorter than wrk's --timeout and {KEEPALIVE_S:g} s")

    global RESULTS
    RESULTS = Path(args.out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise SystemExit("needs at least 2 CPUs (gateway on CPU 0, upstream and wrk on CPU 1)")

    if not args.no_install:
        ensure_apt("wrk", "wrk")
        ensure_apt("node", "nodejs")
        if "portkey" in targets:
            ensure_portkey()
        if "litellm" in targets:
            ensure_litellm()
    profiler = ensure_py_spy() if profile_for else None

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    work = Path(tempfile.mkdtemp(prefix="atp-bench-"))
    rows: list[Row] = []
    versions: dict[str, str] = {}
    started = dt.datetime.now(dt.UTC)
    try:
        upstream = Upstream(free_port())
        upstream.start()
        log(f"upstream on {upstream.base} (CPU {LOAD_CPU})")
        # Every gateway is started first and then each scenario runs against all of them
        # back to back, so that load from other users of the machine falls on all alike.
        live: list[tuple[str, Target, Endpoint]] = []
        for name in targets:
            target = TARGET_CLASSES[name](upstream, work)
            if name != "upstream":
                log(f"starting {name} (CPU {GATEWAY_CPU})")
            try:
                ep = target.start()
                versions[name] = ep.version
                smoke_test(name, ep, upstream)
                live.append((name, target, ep))
            except Exception as err:  # noqa: BLE001 - report and go on with the others
                log(f"{name}: FAILED to start: {err}")
                versions[name] = f"failed to start: {err}"
                target.stop()
        for sc in scenarios:
            log(f"scenario {sc.name}: {sc.label}")
            for name, _target, ep in live:
                prof = profiler if (name.startswith("atp") and sc.name in profile_for) else None
                try:
                    rows.append(measure(name, ep, sc, upstream, args, prof))
                except Exception as err:  # noqa: BLE001 - one failed run must not lose the rest
                    log(f"{name} {sc.name}: FAILED: {err}")
        for _name, target, _ep in live:
            target.stop()
    finally:
        PROCS.stop_all()
        if os.environ.get("BENCH_KEEP_WORK"):  # to look at what the gateways wrote
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    add_latency_overheads(rows)
    checks = evaluate_targets(rows)
    stamp = started.strftime("%Y-%m-%dT%H%M%SZ")
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
        "host": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "versions": versions,
        "options": {
            k: getattr(args, k) for k in ("window", "warmup", "drain_fast", "drain_slow", "timeout")
        },
        "scenarios": [asdict(s) for s in scenarios],
    }
    payload = {"meta": meta, "results": [asdict(r) for r in rows], "targets": checks}
    json_path = RESULTS / f"{stamp}.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md = render_markdown(meta, rows, checks)
    (RESULTS / "latest.md").write_text(md)
    print(md)
    log(f"wrote {json_path} and {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        PROCS.stop_all()
