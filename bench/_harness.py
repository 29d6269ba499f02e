"""What the API benchmarks share: a throwaway PostgreSQL cluster, the server, CPU counters.

Used by ``bench/api_writes.py`` and ``bench/load.py`` (run as scripts, so this
folder is on ``sys.path``).
"""

import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REGISTRY3D = BIN / "registry3d"


# --- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    found = (
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if Path("/usr/lib/postgresql").exists()
        else []
    )
    if not found:
        sys.exit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return found[-1]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def cpu_seconds_by_group(
    groups: dict[str, set[int]], pg_uid: int | None
) -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds of live processes: the given trees, and PostgreSQL's."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
            uid = (entry / "status").stat().st_uid
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (
            int(fields[1]),
            int(fields[11]) / tick,
            int(fields[12]) / tick,
            uid,
        )
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid):
        out, todo = set(), [pid]
        while todo:
            p = todo.pop()
            if p in stats and p not in out:
                out.add(p)
                todo.extend(children.get(p, []))
        return out

    def total(pids):
        return (sum(stats[p][1] for p in pids), sum(stats[p][2] for p in pids))

    totals = {}
    for name, roots in groups.items():
        totals[name] = total(set().union(*(tree(r) for r in roots)) if roots else set())
    if pg_uid is not None:
        totals["postgresql"] = total({p for p, (*_, uid) in stats.items() if uid == pg_uid})
    return totals


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores, all processes)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- the throwaway cluster and server --------------------------------------------------------


class Cluster:
    """A PostgreSQL cluster in a temporary folder; as the postgres user when we are root."""

    def __init__(self, durable: bool):
        self.bin = pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="registry3d-bench-pg."))
        self.port = free_port()
        self.durable = durable
        self.uid = None
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; its programs start in the
            # cluster's own folder, which the postgres user owns.
            shutil.chown(self.dir, "postgres", "postgres")
            self.prefix = ["env", "-C", str(self.dir), "runuser", "-u", "postgres", "--"]
            self.uid = pwd.getpwnam("postgres").pw_uid
        else:
            self.uid = os.geteuid()
        self.started = False

    def run(self, *args, **kwargs):
        return subprocess.run([*self.prefix, *map(str, args)], check=True, **kwargs)

    def start(self) -> None:
        data = self.dir / "data"
        self.run(
            self.bin / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            stdout=subprocess.DEVNULL,
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.durable:
            # As scripts/test.sh does: no waiting for the disk.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self.started = True
        self.run(
            self.bin / "pg_ctl",
            "-D",
            data,
            "-l",
            self.dir / "server.log",
            "-w",
            "-o",
            options,
            "start",
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.run(
            self.bin / "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            self.port,
            "-U",
            "postgres",
            "registry3d",
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/registry3d"

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                [
                    *self.prefix,
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.dir / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """``registry3d serve`` (gunicorn, and the job worker if asked) in its own process group,
    logging to a file."""

    def __init__(self, env: dict, workers: int, folder: Path, with_worker: bool = False):
        self.env = env
        self.workers = workers
        self.with_worker = with_worker
        self.port = free_port()
        self.log_path = folder / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                str(REGISTRY3D),
                "serve",
                "--with-worker" if self.with_worker else "--no-worker",
                "--workers",
                str(self.workers),
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped at start:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    ready += 1
                    # Every worker answers once before we measure (imports, dictionary).
                    if ready >= self.workers * 4:
                        return
                conn.close()
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # serve stops gunicorn in turn
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:  # anything of the group still running (gunicorn workers)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None


def tear_down(processes, server, cluster, work) -> None:
    """Stop client processes, the server and the cluster, and remove the work folder."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
    if server is not None:
        server.stop()
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: BLE001 - Django may not be set up yet
        pass
    cluster.stop()
    shutil.rmtree(work, ignore_errors=True)
