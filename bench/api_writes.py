"""Benchmark: validated case writes per second through the REST API on PostgreSQL.

    .venv/bin/python bench/api_writes.py [--workers 2] [--clients 4] [--seconds 30] [--durable]

Starts a throwaway PostgreSQL cluster on a free loopback port (as the
``postgres`` user when run as root, like scripts/test.sh), runs
``registry3d init`` against it, adds a site with a contributor, five
printers and one write token per client, and starts ``registry3d serve
--no-worker`` (gunicorn) with the per-token write limit off. Client
processes then POST new, complete, submitted cases (each with its own
case_uid) to ``/api/v1/cases`` over keep-alive ``http.client`` connections
(reopened when the server closes them, as gunicorn's sync worker does after
every answer) for a warm-up and then ``--seconds``. The server validates
each case with the dictionary and stores it, its first version and its
audit event in one transaction.

Prints the sustained rate of 201 answers in the measured window, errors by
status, latency percentiles and where the CPU time went (web workers,
PostgreSQL, clients, anything else on the machine). Afterwards it checks
that the database holds exactly one case, version and audit event per 201
answer and that ``registry3d audit verify`` passes. The server and the
cluster are stopped and their folders removed at the end, also on an error
or Ctrl-C. Loopback traffic only; every loop is bounded in time.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import (  # noqa: E402 - bench/ is on the path when run as a script
    REGISTRY3D,
    Cluster,
    Server,
    cpu_seconds_by_group,
    machine_busy_seconds,
    percentile,
    tear_down,
)

SITE = "BENCH01"
CONTRIBUTOR = "bench@bench01.example.org"
PRINTERS = [
    ("J750-1", "Stratasys", "J750 Digital Anatomy", "material_jetting"),
    ("FORM3B-1", "Formlabs", "Form 3B+", "vat_photopolymerization"),
    ("MK4-1", "Prusa Research", "MK4", "material_extrusion"),
    ("S5-1", "EOS", "Formiga P 110", "powder_bed_fusion"),
    ("BJ-1", "3D Systems", "ProJet 660Pro", "binder_jetting"),
]
CASES_PER_CLIENT = 300  # distinct case bodies per client, reused with new case IDs
UID_MARK = "@@CASE_UID@@"


# --- set-up inside the registry --------------------------------------------------------------


def set_up_site(clients: int) -> list[str]:
    """Add the site, a contributor, printers and one write token per client."""
    from registry3d.sites import services

    site = services.add_site(SITE, "Benchmark Hospital", region="Ohio", facility_type="academic")
    user = services.add_user(CONTRIBUTOR, None, full_name="Bench Contributor")
    services.set_membership(site, user, "contributor")
    for label, maker, model, technology in PRINTERS:
        services.add_printer(
            site, label=label, manufacturer=maker, model=model, technology=technology
        )
    return [
        services.create_token(site, user, name=f"bench client {n}", scope="write")[1]
        for n in range(clients)
    ]


def count_rows() -> dict[str, int]:
    from django.db import connections

    from registry3d.audit.models import AuditEvent
    from registry3d.cases.models import Case, CaseVersion

    counts = {
        "cases": Case.objects.filter(site__code=SITE).count(),
        "case versions": CaseVersion.objects.filter(site__code=SITE).count(),
        "audit events case.submitted": AuditEvent.objects.filter(action="case.submitted").count(),
    }
    connections.close_all()
    return counts


# --- clients -----------------------------------------------------------------------------------


def case_bodies(client: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Complete, submitted case bodies split around the case ID: (before, after)."""
    from registry3d.dictionary.examples import synthetic_case
    from registry3d.dictionary.loader import load_dictionary
    from registry3d.dictionary.registry import DEFAULT_FILE

    dictionary = load_dictionary(DEFAULT_FILE)
    rng = random.Random(seed * 1000 + client)
    labels = {technology: label for label, _, _, technology in PRINTERS}
    bodies = []
    for n in range(CASES_PER_CLIENT):
        body = {
            "case_uid": UID_MARK,
            "status": "submitted",
            "data": synthetic_case(
                dictionary, rng, printer_labels=labels, with_questionnaire=n % 2 == 0
            ),
        }
        before, after = json.dumps(body, separators=(",", ":")).split(UID_MARK)
        bodies.append((before.encode(), after.encode()))
    return bodies


def client_main(
    client: int, seed: int, token: str, port: int, start_at: float, end_at: float, ready, results
) -> None:
    """POST new cases until ``end_at``; send back (finished_at, seconds, status) per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    bodies = case_bodies(client, seed)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    samples: list[tuple[float, float, int]] = []
    first_201 = None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ready.put(client)
    while time.monotonic() < start_at:
        time.sleep(0.001)
    number = 0
    clock = time.monotonic
    while True:
        now = clock()
        if now >= end_at:
            break
        before, after = bodies[number % len(bodies)]
        body = before + f"c{client}-{number}".encode() + after
        number += 1
        try:
            conn.request("POST", "/api/v1/cases", body, headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            conn.close()
            status = 0  # connection failed
            payload = b""
        done = clock()
        samples.append((done, done - now, status))
        if status == 201 and first_201 is None:
            first_201 = payload
        elif status not in (201, 0) and len(samples) < 5:
            print(f"client {client}: {status} {payload[:300]!r}", file=sys.stderr)
    conn.close()
    results.put((client, samples, first_201))


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--seconds", type=float, default=30, help="measured time (default 30)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured start (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--durable", action="store_true", help="keep PostgreSQL's fsync and synchronous commit on"
    )
    args = parser.parse_args()
    if not (
        1 <= args.clients <= 64
        and 1 <= args.workers <= 16
        and 0 < args.seconds <= 600
        and 0 <= args.warmup <= 60
    ):
        parser.error("use 1-64 clients, 1-16 workers, up to 600 s and a warm-up up to 60 s")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    # Also when started in the background, where SIGINT comes in ignored.
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="registry3d-bench."))
    cluster = Cluster(durable=args.durable)
    server = None
    processes: list[multiprocessing.Process] = []
    try:
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

        tokens = set_up_site(args.clients)
        connections.close_all()

        server = Server(env, args.workers, work)
        server.start()

        context = multiprocessing.get_context("spawn")
        ready, results = context.Queue(), context.Queue()
        # Clients build their case bodies first; the clock starts for all at once.
        start_at = time.monotonic() + 10 + 0.3 * args.clients
        end_at = start_at + args.warmup + args.seconds
        for n in range(args.clients):
            process = context.Process(
                target=client_main,
                args=(n, args.seed, tokens[n], server.port, start_at, end_at, ready, results),
                daemon=True,
            )
            process.start()
            processes.append(process)
        for _ in range(args.clients):
            ready.get(timeout=120)
        if time.monotonic() > start_at:
            raise RuntimeError("the clients took too long to start; nothing was measured")

        groups = {
            "web workers": {server.process.pid},
            "clients": {p.pid for p in processes},
        }
        measure_from = start_at + args.warmup
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before = cpu_seconds_by_group(groups, cluster.uid)
        busy_before = machine_busy_seconds()
        wall_before = time.monotonic()
        time.sleep(max(0.0, end_at - time.monotonic()))
        cpu_after = cpu_seconds_by_group(groups, cluster.uid)
        busy = machine_busy_seconds() - busy_before
        wall = time.monotonic() - wall_before

        collected = {}
        while len(collected) < args.clients:
            client, samples, first = results.get(timeout=120)
            collected[client] = (samples, first)
        for process in processes:
            process.join(timeout=30)

        all_samples = [s for samples, _ in collected.values() for s in samples]
        created_total = sum(1 for _, _, status in all_samples if status == 201)
        window = [s for s in all_samples if measure_from <= s[0] < end_at]
        statuses = Counter(status for _, _, status in window)
        latencies = sorted(seconds * 1000 for _, seconds, status in window if status == 201)
        ok = statuses.get(201, 0)
        first = next((f for _, f in collected.values() if f), None)
        if first is not None:
            stored = json.loads(first)
            assert stored["version"] == 1 and stored["status"] == "submitted", stored

        server.stop()
        server = None
        counts = count_rows()
        verify = subprocess.run(
            [str(REGISTRY3D), "audit", "verify"], env=env, capture_output=True, text=True
        )

        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, PostgreSQL {cluster.bin.parent.name}"
            f"{' (durable: fsync on)' if args.durable else ' (fsync off, as in the tests)'}"
        )
        print(
            f"configuration: {args.workers} gunicorn workers, {args.clients} clients, "
            f"{args.warmup:g} s warm-up + {args.seconds:g} s measured"
        )
        print(
            f"sustained: {ok / args.seconds:,.0f} successful case writes/s "
            f"({ok} × 201 in {args.seconds:g} s)"
        )
        errors = {k: v for k, v in statuses.items() if k != 201}
        print(
            "errors: "
            + (
                ", ".join(
                    f"{v} × {'connection' if k == 0 else k}" for k, v in sorted(errors.items())
                )
                or "none"
            )
        )
        print(
            f"latency of 201 answers: p50 {percentile(latencies, 50):.1f} ms, "
            f"p90 {percentile(latencies, 90):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
            f"max {latencies[-1] if latencies else float('nan'):.1f} ms"
        )
        print("CPU in the window, % of one core (per successful write: user + system):")
        total_cpu = 0.0
        for name, (user_after, sys_after) in cpu_after.items():
            user_before, sys_before = cpu_before.get(name, (0.0, 0.0))
            user, system = user_after - user_before, sys_after - sys_before
            total_cpu += user + system
            per_write = 1e3 / max(ok, 1)
            print(
                f"  {name}: {(user + system) / wall * 100:.0f}% "
                f"({(user + system) * per_write:.2f} ms/write: "
                f"{user * per_write:.2f} + {system * per_write:.2f})"
            )
        print(f"  all: {total_cpu / wall * 100:.0f}% of {os.cpu_count() * 100}%")
        other = max(0.0, busy - total_cpu) / wall * 100
        print(
            f"  anything else on the machine: {other:.0f}%"
            + (" (busy: the numbers above are not clean)" if other > 10 else "")
        )
        print(
            f"database: {counts['cases']} cases, {counts['case versions']} versions, "
            f"{counts['audit events case.submitted']} case.submitted events; "
            f"201 answers in all (warm-up included): {created_total}"
        )
        print(f"audit verify: {(verify.stdout or verify.stderr).strip()}")
        consistent = (
            counts["cases"]
            == created_total
            == counts["case versions"]
            == counts["audit events case.submitted"]
        )
        if not consistent:
            print("MISMATCH: the database does not hold one case per 201 answer", file=sys.stderr)
        return 0 if consistent and verify.returncode == 0 else 1
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        tear_down(processes, server, cluster, work)


if __name__ == "__main__":
    sys.exit(main())
