"""Load: many concurrent API clients on PostgreSQL, then no lost, doubled or stray write.

    .venv/bin/python bench/load.py [--clients 16] [--importers 2] [--seconds 60] [--workers 2]

Starts a throwaway PostgreSQL cluster on a free loopback port (as
``bench/api_writes.py`` does, with ``bench/_harness.py``), runs ``registry3d
init``, adds a site with a contributor, a viewer, printers and a write and a
read token per client, and starts ``registry3d serve`` (gunicorn with
``--workers`` web workers and the job worker, which runs the imports) with
the per-token write limit off. A few "hot" cases are created first. Then,
for ``--seconds``, ``--clients`` client processes each pick at random (see
``tests/trust/load_checks.py``, shared with the test suite): create a case
(POST), update one (GET, then PUT or PATCH with ``If-Match`` set to the ETag
just read; half of the updates go to the hot cases every client updates,
so they race and some get 412), update with an ETag known to be stale
(must get 412), send a write that must be refused (invalid data: 422; a
case ID taken or a submitted case back to draft: 409), read a case, or list
cases. ``--importers`` more processes upload small CSV files of new cases
(``--rows`` rows; most valid, some with one bad row, all-or-nothing or
valid-rows) through ``POST /api/v1/imports`` one after another and follow
each job until it ends.

Every request is recorded (operation, case ID, status, version and ETag
answered, the marker each write carried in its data, latency). Afterwards
the server is stopped and the database must hold every acknowledged (2xx)
write exactly once, at the version it was answered with and with the data
it was answered with; no trace of a refused one; versions 1..n for every
case, the case equal to its newest version and to what its last
acknowledged write answered; one audit event per version (the import's
events name each row it wrote); every case read or listed as some stored
version; each import's exactly its valid rows, or none when it was refused;
and ``registry3d audit verify`` must pass. Prints requests, throughput,
answers by status and p50/p95/p99 latency per operation, the CPU used, and
the checks. Loopback only; every loop is bounded in time; the server and the
cluster are stopped and removed at the end, also on an error or Ctrl-C.
Exit status 0 only when every check passes.
"""

import argparse
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _harness import (  # noqa: E402 - bench/ is on the path when run as a script
    REGISTRY3D,
    Cluster,
    Server,
    cpu_seconds_by_group,
    machine_busy_seconds,
    tear_down,
)

from tests.trust.load_checks import (  # noqa: E402
    Client,
    Importer,
    check,
    prepare_site,
    report,
    snapshot_orm,
)

SITE = "LOAD01"
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def worker_main(kind, number, seed, tokens, port, hot, rows, times, ready, results) -> None:
    """One client or importer process: build its cases, wait for the start, run, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    start_at, end_at, finish_by = times
    write, read = tokens
    if kind == "client":
        worker = Client(number, "127.0.0.1", port, write, read, hot=hot, seed=seed)
    else:
        worker = Importer(number, "127.0.0.1", port, write, rows=rows, seed=seed)
    ready.put((kind, number))
    while time.monotonic() < start_at:
        time.sleep(0.002)
    if kind == "client":
        records = worker.run(end_at)
    else:
        records = worker.run(end_at, finish_by)
    results.put((kind, number, records))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="client processes (default 16)")
    parser.add_argument("--importers", type=int, default=2, help="importing processes (default 2)")
    parser.add_argument("--rows", type=int, default=20, help="rows per imported file (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--seconds", type=float, default=60, help="time under load (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--durable", action="store_true", help="keep PostgreSQL's fsync and synchronous commit on"
    )
    args = parser.parse_args()
    if not (
        1 <= args.clients <= 64
        and 0 <= args.importers <= 8
        and 1 <= args.rows <= 1000
        and 1 <= args.workers <= 16
        and 0 < args.seconds <= 600
    ):
        parser.error("use 1-64 clients, 0-8 importers, 1-1000 rows, 1-16 workers, up to 600 s")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="registry3d-load."))
    cluster = Cluster(durable=args.durable)
    server = None
    processes: list[multiprocessing.Process] = []
    try:
        log("starting PostgreSQL")
        cluster.start()
        env = {
            **os.environ,
            "DATABASE_URL": cluster.url,
            "REGISTRY3D_VAR_DIR": str(work / "var"),
            "REGISTRY3D_API_WRITES_PER_SECOND": "0",
            "DJANGO_SETTINGS_MODULE": "registry3d.settings",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REGISTRY3D_PRODUCTION", None)
        log("registry3d init")
        subprocess.run(
            [str(REGISTRY3D), "init"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connections

        write, read = prepare_site(SITE, args.clients + args.importers + 1, args.clients + 1)
        connections.close_all()

        log("starting the server")
        server = Server(env, args.workers, work, with_worker=True)
        server.start()
        setup = Client(999, "127.0.0.1", server.port, write[-1], read[-1], seed=args.seed)
        hot = [f"HOT-{n}" for n in range(max(2, args.clients // 4))]
        for uid in hot:
            if setup.create(uid, "submitted").status != 201:
                raise RuntimeError(f"could not create {uid}:\n{server.log_tail()}")

        context = multiprocessing.get_context("spawn")
        ready, results = context.Queue(), context.Queue()
        # Workers build their case data first; the clock starts for all at once.
        start_at = time.monotonic() + 10 + 0.4 * (args.clients + args.importers)
        end_at = start_at + args.seconds
        finish_by = end_at + 120  # imports under way at the end may finish until then
        jobs = [("client", n, (write[n], read[n])) for n in range(args.clients)] + [
            ("importer", n, (write[args.clients + n], "")) for n in range(args.importers)
        ]
        for kind, number, tokens in jobs:
            process = context.Process(
                target=worker_main,
                args=(
                    kind,
                    number,
                    args.seed,
                    tokens,
                    server.port,
                    hot,
                    args.rows,
                    (start_at, end_at, finish_by),
                    ready,
                    results,
                ),
                daemon=True,
            )
            process.start()
            processes.append(process)
        log(f"starting {len(jobs)} client processes")
        for _ in jobs:
            ready.get(timeout=120)
        if time.monotonic() > start_at:
            raise RuntimeError("the clients took too long to start; nothing was measured")

        groups = {"server": {server.process.pid}, "clients": {p.pid for p in processes}}
        time.sleep(max(0.0, start_at - time.monotonic()))
        log(f"under load for {args.seconds:g} s")
        cpu_before = cpu_seconds_by_group(groups, cluster.uid)
        busy_before = machine_busy_seconds()
        time.sleep(max(0.0, end_at - time.monotonic()))
        cpu_after = cpu_seconds_by_group(groups, cluster.uid)
        busy = machine_busy_seconds() - busy_before
        wall = time.monotonic() - start_at

        log("waiting for the clients (and imports under way)")
        records = list(setup.records)
        for _ in jobs:
            _, _, got = results.get(timeout=max(30.0, finish_by + 30 - time.monotonic()))
            records += got
        for process in processes:
            process.join(timeout=30)

        log("stopping the server")
        server.stop()
        server = None
        log("checking the database")
        snap = snapshot_orm(SITE)
        connections.close_all()
        failures, summary = check(records, snap)
        verify = subprocess.run(
            [str(REGISTRY3D), "audit", "verify"], env=env, capture_output=True, text=True
        )

        log("done")
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, PostgreSQL {cluster.bin.parent.name}"
            f"{' (durable: fsync on)' if args.durable else ' (fsync off, as in the tests)'}"
        )
        print(
            f"configuration: {args.workers} gunicorn workers + the job worker, "
            f"{args.clients} clients, {args.importers} importers ({args.rows} rows a file), "
            f"{args.seconds:g} s"
        )
        in_window = [r for r in records if r.started >= start_at]
        print("\n".join(report(in_window, args.seconds)))
        imports = [r for r in records if r.op == "import" and r.extra.get("final")]
        if imports:
            finished = sorted(r.extra["finished_after"] for r in imports)
            print(
                f"imports: {len(imports)} files, {summary['imported rows']} rows stored; "
                f"upload to end of job: median {finished[len(finished) // 2]:.2f} s, "
                f"max {finished[-1]:.2f} s"
            )
        total_cpu = 0.0
        parts = []
        for name, (user_after, sys_after) in cpu_after.items():
            user_before, sys_before = cpu_before.get(name, (0.0, 0.0))
            used = user_after - user_before + sys_after - sys_before
            total_cpu += used
            parts.append(f"{name} {used / wall * 100:.0f}%")
        other = max(0.0, busy - total_cpu) / wall * 100
        print(
            f"CPU in the window (% of one core): {', '.join(parts)}, anything else {other:.0f}%"
            + (" (busy: the numbers above are not clean)" if other > 10 else "")
        )
        print(
            "checked: " + ", ".join(f"{count} {name}" for name, count in summary.items() if count)
        )
        if failures:
            print(f"CHECKS FAILED:\n{failures}", file=sys.stderr)
        else:
            print(
                "checks: passed (every acknowledged write stored once at its version and with "
                "its data, no refused write stored, versions 1..n, one audit event per version, "
                "reads saw stored versions, imports stored exactly their valid rows)"
            )
        print(f"audit verify: {(verify.stdout or verify.stderr).strip()}")
        return 0 if not failures and verify.returncode == 0 else 1
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        tear_down(processes, server, cluster, work)


if __name__ == "__main__":
    sys.exit(main())
