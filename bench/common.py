"""Shared helpers of the benchmark suite: topologies, processes, statistics.

Nothing here imports Django: the orchestrator only starts processes (servers, the timer worker,
load-generating clients) and reads their figures, so it never shares an interpreter with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
TMP = RESULTS / "tmp"
PYTHON = sys.executable

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_BENCH_DB = os.environ.get("BENCH_PG_DB", "callsite_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
HOST = "127.0.0.1"  # load tests target this machine only


def token_for(index: int) -> str:
    """The DRF token key of benchmark user ``index`` (derived, so clients need no lookup)."""
    return hashlib.sha1(f"callsite-bench-{index}".encode()).hexdigest()


def username_for(index: int) -> str:
    return f"b{index}"


def raise_fd_limit(want: int = 65536) -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")


# --- topologies -----------------------------------------------------------------------------


@dataclass
class Topology:
    name: str  # "embedded" or "production"
    env: dict[str, str]
    layer: str  # "memory" or "redis"
    db: str  # "sqlite" or "postgres"

    @property
    def production(self) -> bool:
        return self.name == "production"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CALLSITE_"))}
    for key in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "SECRET_KEY", "DEBUG"):
        env.pop(key, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "callsite.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            # Benchmarks measure the server, not the API's abuse limits: full cycles ring the
            # same callee again and again, far past 6 a minute.
            "THROTTLE_INVITATIONS": "1000000/s",
            "THROTTLE_PAIR": "1000000/s",
            "CALLSITE_VAR_DIR": str(TMP / "var"),
        }
    )
    # Server settings to try (keep or drop by the figures): BENCH_SERVER_ENV="K=V,K2=V2".
    extra = os.environ.get("BENCH_SERVER_ENV", "")
    env.update(dict(kv.split("=", 1) for kv in extra.split(",") if "=" in kv))
    return env


def embedded_topology() -> Topology:
    env = base_env()
    # DEBUG off: `make run` defaults to DEBUG on for development, which keeps every SQL query
    # in memory (connection.queries) and renders slower error pages; a deployment does not.
    env.update(
        {
            "CALLSITE_ENV": "embedded",
            "SQLITE_PATH": str(TMP / "embedded.sqlite3"),
            "DEBUG": "0",
        }
    )
    return Topology("embedded", env, layer="memory", db="sqlite")


def production_topology() -> Topology:
    env = base_env()
    env.update(
        {
            "CALLSITE_ENV": "production",
            "SECRET_KEY": "bench-" + hashlib.sha256(b"callsite-bench-secret").hexdigest(),
            "DEBUG": "0",
            "ALLOWED_HOSTS": HOST,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}",
            "REDIS_URL": REDIS_URL,
            "CHANNEL_LAYER_PREFIX": f"callsite-bench-{os.getpid()}",
            "CALLSITE_EMBEDDED_TIMERS": "0",
        }
    )
    return Topology("production", env, layer="redis", db="postgres")


# --- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    """A process this run started; stopped by its own pid only."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            self.popen.wait(timeout=5)


@dataclass
class ProcessGroup:
    procs: list[Proc] = field(default_factory=list)

    def start(
        self, name: str, args: Sequence[str], env: dict[str, str], port: int | None = None
    ) -> Proc:
        TMP.mkdir(parents=True, exist_ok=True)
        log = TMP / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            list(args), cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
        handle.close()
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        if port is not None:
            wait_port(port, proc=popen)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def serve_args(port: int, timers: str) -> list[str]:
    return [PYTHON, "manage.py", "serve", "--port", str(port), "--timers", timers]


def relay_args(port: int) -> list[str]:
    return [PYTHON, "-m", "daphne", "-b", HOST, "-p", str(port), "bench.baseline_relay:application"]


class Client:
    """A load-generating client process (bench/loadgen.py) driven by JSON lines on stdin."""

    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        TMP.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.stderr_path = TMP / f"client-{name}.log"
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        self.popen = subprocess.Popen(
            [PYTHON, str(BENCH / "loadgen.py")],
            cwd=ROOT,
            env=env or base_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, cmd: str, **args: Any) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        self.popen.stdin.flush()

    def recv(self) -> dict[str, Any]:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError(
                f"client {self.name} died; see {self.stderr_path}:\n"
                + self.stderr_path.read_text()[-2000:]
            )
        reply: dict[str, Any] = json.loads(line)
        if "fatal" in reply:
            raise RuntimeError(f"client {self.name}: {reply['fatal']}")
        return reply

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.send(cmd, **args)
        return self.recv()

    def close(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(Exception):
                self.send("quit")
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._stderr.close()


@contextlib.contextmanager
def clients(*names: str) -> Iterator[list[Client]]:
    made = [Client(n) for n in names]
    try:
        yield made
    finally:
        for c in made:
            c.close()


# --- measuring processes --------------------------------------------------------------------


def _cpu_seconds(pids: Sequence[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def service_pids(name: str) -> list[int]:
    """Read-only: pids of a local service (postgres, redis-server) to sum their CPU."""
    import psutil

    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == name]


class CpuMeter:
    """CPU used by named groups of processes between start() and stop(), in % of one core."""

    def __init__(self, groups: dict[str, Sequence[int] | str]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}
        self.t0 = 0.0
        self.wall = 0.0  # seconds between the last start() and stop()

    def _pids(self, spec: Sequence[int] | str) -> list[int]:
        return service_pids(spec) if isinstance(spec, str) else list(spec)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.before = {k: _cpu_seconds(self._pids(v)) for k, v in self.groups.items()}

    def stop(self) -> dict[str, float]:
        wall = self.wall = max(1e-6, time.monotonic() - self.t0)
        return {
            k: round(100 * (_cpu_seconds(self._pids(v)) - self.before[k]) / wall, 1)
            for k, v in self.groups.items()
        }


def rss_bytes(pid: int) -> int:
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return float(ordered[rank])


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in latencies_s]
    return {
        "p50": round(percentile(ms, 50), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2) if ms else float("nan"),
        "count": len(ms),
    }


def machine_description() -> str:
    import platform

    import psutil

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu or platform.machine()}), {mem:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)
