"""Many clients at once on the REST API, and what must hold in the database afterwards.

Shared by ``tests/trust/test_load_short.py`` (threads against the test
suite's live server), ``tests/trust/test_crash_writes.py`` (a killed
server) and ``bench/load.py`` (client processes against gunicorn on
PostgreSQL). The clients need no Django: only the dictionary file and
``http.client``; the checks work on a :class:`Snapshot` read with the ORM or
with plain SQL.

Every write carries a marker of its own in one free-text element
(``cad_software_other``), so each stored version can be traced back to the
request that made it: the checks then say that every acknowledged write is
stored exactly once, at the version its answer gave, with the data its
answer gave; that no refused write left anything; that versions run 1..n;
and that there is one audit event per version.
"""

import csv
import hashlib
import http.client
import io
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

MARK = "cad_software_other"  # free text, 100 characters: each write's marker goes here
TECHNOLOGIES = (
    "material_jetting",
    "vat_photopolymerization",
    "material_extrusion",
    "powder_bed_fusion",
    "binder_jetting",
)
LABELS = {t: f"P-{t[:10]}" for t in TECHNOLOGIES}
WRITE_OPS = {"create", "upsert", "update", "stale", "invalid"}
CASE_ACTIONS = {"case.created", "case.submitted", "case.updated", "case.withdrawn"}
FINISHED = {"done", "refused", "failed", "interrupted"}
MIX = {"create": 18, "upsert": 4, "update": 25, "stale": 8, "invalid": 4, "get": 25, "list": 8}


@dataclass(slots=True)
class Rec:
    """One request as a client saw it."""

    op: str  # create, upsert, update, stale, invalid, get, list, import, error
    method: str
    uid: str
    status: int  # the HTTP status; 0 when no answer came (connection refused or cut)
    version: int | None = None  # the case version in a 2xx answer
    etag: str | None = None
    marker: str | None = None  # the marker a write carried
    digest: str | None = None  # of the case data in the answer
    started: float = 0.0
    seconds: float = 0.0
    extra: dict | None = None


def data_digest(data) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_DICTIONARY = None


def dictionary():
    """The shipped data dictionary, loaded once per process (no Django settings needed)."""
    global _DICTIONARY
    if _DICTIONARY is None:
        from registry3d.dictionary.loader import load_dictionary
        from registry3d.dictionary.registry import DEFAULT_FILE

        _DICTIONARY = load_dictionary(DEFAULT_FILE)
    return _DICTIONARY


def case_pool(seed: int, count: int = 30, labels: dict | None = None) -> list[dict]:
    """Complete, valid case data to send (each write sets its own marker)."""
    from registry3d.dictionary.examples import synthetic_case

    rng = random.Random(seed)
    pool = [
        synthetic_case(
            dictionary(), rng, printer_labels=labels or LABELS, with_questionnaire=n % 2 == 0
        )
        for n in range(count)
    ]
    for data in pool:
        data["cad_software"] = "other"  # the marker names software the list does not have
    return pool


class Http:
    """One client's HTTP: a new loopback connection per request, never retried.

    A write that got no answer is recorded as such (status 0): the client
    cannot know whether it was stored, so it must not send it again blindly.
    """

    def __init__(self, host: str, port: int, token: str, timeout: float = 60):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout

    def call(self, method, path, body=None, headers=None, content_type="application/json"):
        sent = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body, sent)
            response = conn.getresponse()
            payload = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
        except (OSError, http.client.HTTPException):
            return 0, {}, b""
        finally:
            conn.close()


class Client:
    """Creates, reads, lists and updates cases (with If-Match) at random until told to stop."""

    def __init__(
        self,
        number: int,
        host: str,
        port: int,
        write_token: str,
        read_token: str,
        *,
        hot: list[str] = (),
        seed: int = 1,
        mix: dict | None = None,
        labels: dict | None = None,
        pool: list[dict] | None = None,
    ):
        self.number = number
        self.writer = Http(host, port, write_token)
        self.reader = Http(host, port, read_token)
        self.rng = random.Random(seed * 7919 + number)
        self.pool = pool if pool is not None else case_pool(seed * 1000 + number, labels=labels)
        self.mix = mix or MIX
        self.hot = list(hot)
        self.own: list[str] = []
        self.known: dict[str, int] = {}  # case ID -> newest version seen
        self.records: list[Rec] = []
        self.writes = 0
        self.creates = 0
        self.refusals = 0

    # --- the operations ------------------------------------------------------------

    def marker(self) -> str:
        self.writes += 1
        return f"load c{self.number} w{self.writes}"

    def new_data(self, marker: str) -> dict:
        data = dict(self.rng.choice(self.pool))
        data[MARK] = marker
        return data

    def pick(self) -> str | None:
        if self.hot and (not self.own or self.rng.random() < 0.5):
            return self.rng.choice(self.hot)
        return self.rng.choice(self.own) if self.own else None

    def write(self, op, method, uid, path, body, marker, etag=None) -> Rec:
        started = time.monotonic()
        status, headers, payload = self.writer.call(
            method, path, json.dumps(body).encode(), {"If-Match": etag} if etag else None
        )
        record = Rec(op, method, uid, status, marker=marker, started=started)
        record.seconds = time.monotonic() - started
        record.etag = headers.get("etag")
        if 200 <= status < 300:
            answer = json.loads(payload)
            record.version = answer["version"]
            record.digest = data_digest(answer["data"])
            self.known[uid] = max(self.known.get(uid, 0), answer["version"])
        elif status >= 500:
            record.extra = {"body": payload[:300].decode(errors="replace")}
        self.records.append(record)
        return record

    def create(self, uid: str | None = None, status: str | None = None) -> Rec:
        self.creates += 1
        uid = uid or f"L{self.number}-{self.creates}"
        marker = self.marker()
        status = status or ("draft" if self.rng.random() < 0.1 else "submitted")
        body = {"case_uid": uid, "status": status, "data": self.new_data(marker)}
        record = self.write("create", "POST", uid, "/api/v1/cases", body, marker)
        if record.status == 201:
            self.own.append(uid)
        return record

    def upsert(self) -> None:
        """PUT without If-Match to a case ID every client picks in the same half second:
        one creates it (201), the others replace it (200) or lose the race to create (409)."""
        # Six digits: a longer number is refused as a case ID (a record number).
        uid = f"R-{int(time.time() * 2) % 1_000_000:06d}"
        marker = self.marker()
        body = {"status": "submitted", "data": self.new_data(marker)}
        self.write("upsert", "PUT", uid, f"/api/v1/cases/{uid}", body, marker)

    def get(self, uid: str) -> tuple[Rec, dict | None]:
        started = time.monotonic()
        status, headers, payload = self.reader.call("GET", f"/api/v1/cases/{uid}")
        record = Rec("get", "GET", uid, status, started=started, etag=headers.get("etag"))
        record.seconds = time.monotonic() - started
        answer = None
        if status == 200:
            answer = json.loads(payload)
            record.version = answer["version"]
            record.digest = data_digest(answer["data"])
            self.known[uid] = max(self.known.get(uid, 0), answer["version"])
        self.records.append(record)
        return record, answer

    def update(self) -> None:
        uid = self.pick()
        if uid is None:
            self.create()
            return
        record, case = self.get(uid)
        if case is None:
            return
        marker = self.marker()
        path = f"/api/v1/cases/{uid}"
        if self.rng.random() < 0.5:
            data = dict(case["data"], **{MARK: marker})
            status = case["status"]
            if status == "draft" and self.rng.random() < 0.3:
                status = "submitted"
            body = {"status": status, "data": data}
            self.write("update", "PUT", uid, path, body, marker, etag=record.etag)
        else:
            self.write("update", "PATCH", uid, path, {"data": {MARK: marker}}, marker, record.etag)

    def stale(self) -> None:
        """A write with the ETag of a version known to be old: it must get 412."""
        moved = [uid for uid, version in self.known.items() if version >= 2]
        if not moved:
            self.update()
            return
        uid = self.rng.choice(moved)
        etag = f'"{self.rng.randint(1, self.known[uid] - 1)}"'
        marker = self.marker()
        path = f"/api/v1/cases/{uid}"
        if self.rng.random() < 0.5:
            body = {"status": "submitted", "data": self.new_data(marker)}
            self.write("stale", "PUT", uid, path, body, marker, etag=etag)
        else:
            self.write("stale", "PATCH", uid, path, {"data": {MARK: marker}}, marker, etag)

    def invalid(self, kind: int | None = None) -> None:
        """A write the API must refuse whole: bad data (0, 2), a case ID taken (1), a step
        back to draft (3)."""
        kind = self.rng.randrange(4) if kind is None else kind
        marker = self.marker()
        if kind == 0 or not self.own:
            self.refusals += 1
            uid = f"X{self.number}-{self.refusals}"
            data = dict(self.new_data(marker), age_years="forty")
            body = {"case_uid": uid, "status": "submitted", "data": data}
            self.write("invalid", "POST", uid, "/api/v1/cases", body, marker)
            return
        uid = self.rng.choice(self.own)
        if kind == 1:
            body = {"case_uid": uid, "status": "submitted", "data": self.new_data(marker)}
            self.write("invalid", "POST", uid, "/api/v1/cases", body, marker)
            return
        record, case = self.get(uid)
        if case is None:
            return
        data = dict(case["data"], **{MARK: marker})
        if kind == 2:
            body = {"status": case["status"], "data": dict(data, age_years="forty")}
        elif case["status"] == "submitted":
            body = {"status": "draft", "data": data}
        else:
            body = {"status": "draft", "data": dict(data, sex="robot")}
        self.write("invalid", "PUT", uid, f"/api/v1/cases/{uid}", body, marker, record.etag)

    def read(self) -> None:
        uid = self.pick()
        if uid is not None:
            self.get(uid)

    def listing(self) -> None:
        started = time.monotonic()
        query = "?limit=50" if self.rng.random() < 0.7 else "?limit=50&status=submitted"
        status, _, payload = self.reader.call("GET", f"/api/v1/cases{query}")
        record = Rec("list", "GET", "", status, started=started)
        record.seconds = time.monotonic() - started
        if status == 200:
            record.extra = {
                "items": [
                    (c["case_uid"], c["version"], data_digest(c["data"]))
                    for c in json.loads(payload)["items"]
                ]
            }
        self.records.append(record)

    def run(self, end_at: float, max_requests: int = 1_000_000, stop=None) -> list[Rec]:
        """Random operations of the mix until ``end_at`` (monotonic clock) or ``stop`` is set."""
        ops = list(self.mix)
        weights = [self.mix[op] for op in ops]
        actions = {
            "create": self.create,
            "upsert": self.upsert,
            "update": self.update,
            "stale": self.stale,
            "invalid": self.invalid,
            "get": self.read,
            "list": self.listing,
        }
        while time.monotonic() < end_at and len(self.records) < max_requests:
            if stop is not None and stop.is_set():
                break
            op = self.rng.choices(ops, weights)[0]
            before = len(self.records)
            try:
                actions[op]()
            except Exception as exc:  # noqa: BLE001 - recorded; the checks fail on it
                self.records.append(Rec("error", op, "", -1, extra={"error": repr(exc)[:300]}))
            if any(r.status == 0 for r in self.records[before:]):
                time.sleep(0.05)  # the server is away (the crash test): do not spin
        return self.records


# --- imports through the API ---------------------------------------------------------------


def csv_file(rows: list[dict]) -> bytes:
    columns: dict[str, None] = {"case_uid": None}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def multipart(fields: dict, file_name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{file_name}"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Importer:
    """Uploads small CSV files of new cases, one after another, and follows each job.

    Most files are valid; some have one bad row, either all-or-nothing
    (nothing may be written) or valid-rows (every other row is written).
    """

    def __init__(
        self,
        number: int,
        host: str,
        port: int,
        token: str,
        *,
        rows: int = 20,
        seed: int = 1,
        labels: dict | None = None,
    ):
        self.number = number
        self.http = Http(host, port, token)
        self.rng = random.Random(seed * 104729 + number)
        self.rows = rows
        self.pool = case_pool(seed * 5000 + number, labels=labels)
        self.records: list[Rec] = []
        self.files = 0

    def one(self, finish_by: float) -> Rec:
        from registry3d.dictionary import flat

        self.files += 1
        kind = self.rng.choices(["valid", "refused", "partial"], [70, 15, 15])[0]
        if self.files == 1:
            kind = "valid"  # at least one file is written whole, however short the run
        bad = None if kind == "valid" else self.rng.randrange(self.rows)
        uids, markers, rows = [], [], []
        for n in range(self.rows):
            uid = f"I{self.number}-{self.files}-{n:03d}"
            marker = f"imp i{self.number} f{self.files} r{n}"
            data = dict(self.rng.choice(self.pool), **{MARK: marker})
            row = flat.write_row(dictionary(), {"case_uid": uid, "status": "submitted"}, data)
            if n == bad:
                row["age_years"] = "forty"
            uids.append(uid)
            markers.append(marker)
            rows.append(row)
        mode = "valid-rows" if kind == "partial" else "all-or-nothing"
        body, content_type = multipart(
            {"mode": mode}, f"load-i{self.number}-f{self.files}.csv", csv_file(rows)
        )
        started = time.monotonic()
        status, _, payload = self.http.call(
            "POST", "/api/v1/imports", body, content_type=content_type
        )
        record = Rec("import", "POST", "", status, started=started)
        record.seconds = time.monotonic() - started
        record.extra = {"mode": mode, "uids": uids, "markers": markers, "bad": bad}
        if status == 202:
            job = json.loads(payload)
            while job["status"] not in FINISHED and time.monotonic() < finish_by:
                time.sleep(0.1)
                answer, _, payload = self.http.call("GET", f"/api/v1/imports/{job['id']}")
                if answer == 200:
                    job = json.loads(payload)
            record.extra.update(
                id=job["id"],
                final=job["status"],
                written=job["written"],
                finished_after=time.monotonic() - started,
            )
        self.records.append(record)
        return record

    def run(self, end_at: float, finish_by: float, max_files: int = 10_000) -> list[Rec]:
        while time.monotonic() < end_at and self.files < max_files:
            try:
                self.one(finish_by)
            except Exception as exc:  # noqa: BLE001 - recorded; the checks fail on it
                self.records.append(Rec("error", "import", "", -1, extra={"error": repr(exc)}))
        return self.records


# --- the registry's side: a site to load, and what it holds afterwards ------------------------


def prepare_site(code: str, writers: int, readers: int, labels: dict | None = None):
    """Add a site with a contributor, a viewer, printers and tokens; return the tokens."""
    from registry3d.sites import services

    site = services.add_site(code, f"Load {code} Hospital", region="Ohio", facility_type="academic")
    contributor = services.add_user(f"writer@{code.lower()}.example.org", None)
    viewer = services.add_user(f"reader@{code.lower()}.example.org", None)
    services.set_membership(site, contributor, "contributor")
    services.set_membership(site, viewer, "viewer")
    for technology, label in (labels or LABELS).items():
        services.add_printer(
            site, label=label, manufacturer="Maker", model="Model", technology=technology
        )
    write = [
        services.create_token(site, contributor, name=f"load writer {n}", scope="write")[1]
        for n in range(writers)
    ]
    read = [
        services.create_token(site, viewer, name=f"load reader {n}", scope="read")[1]
        for n in range(readers)
    ]
    return write, read


@dataclass
class Snapshot:
    """A site's cases, versions, audit events and imports, as plain values."""

    cases: dict[str, tuple[int, str, dict]] = field(default_factory=dict)  # uid: version, status
    versions: dict[tuple[str, int], dict] = field(default_factory=dict)  # (uid, version): data
    events: list[tuple[str, str, dict]] = field(default_factory=list)  # action, object_id, changes
    imports: dict[str, tuple[str, int]] = field(default_factory=dict)  # id: status, written


def snapshot_orm(site_code: str) -> Snapshot:
    from registry3d.audit.models import AuditEvent
    from registry3d.cases.models import Case, CaseVersion
    from registry3d.intake.models import Import

    snap = Snapshot()
    cases = Case.objects.filter(site__code=site_code).order_by()
    for uid, version, status, data in cases.values_list("case_uid", "version", "status", "data"):
        snap.cases[uid] = (version, status, data)
    versions = CaseVersion.objects.filter(site__code=site_code).order_by()
    for uid, version, data in versions.values_list("case__case_uid", "version", "data"):
        snap.versions[(uid, version)] = data
    events = AuditEvent.objects.filter(site__code=site_code).order_by("seq")
    for action, object_id, changes in events.values_list("action", "object_id", "changes_json"):
        snap.events.append((action, object_id, json.loads(changes)))
    imports = Import.objects.filter(site__code=site_code)
    for code, status, written in imports.values_list("code", "status", "written"):
        snap.imports[str(code)] = (status, written)
    return snap


def snapshot_sql(query, site_code: str) -> Snapshot:
    """The same with plain SQL; ``query(sql, params)`` returns rows (``%s`` placeholders)."""

    def as_dict(value):
        return value if isinstance(value, dict) else json.loads(value)

    snap = Snapshot()
    site = "(SELECT id FROM sites_site WHERE code = %s)"
    for uid, version, status, data in query(
        f"SELECT case_uid, version, status, data FROM cases_case WHERE site_id = {site}",
        [site_code],
    ):
        snap.cases[uid] = (version, status, as_dict(data))
    for uid, version, data in query(
        "SELECT c.case_uid, v.version, v.data FROM cases_caseversion v "
        f"JOIN cases_case c ON c.id = v.case_id WHERE v.site_id = {site}",
        [site_code],
    ):
        snap.versions[(uid, version)] = as_dict(data)
    for action, object_id, changes in query(
        "SELECT action, object_id, changes_json FROM audit_auditevent "
        f"WHERE site_id = {site} ORDER BY seq",
        [site_code],
    ):
        snap.events.append((action, object_id, json.loads(changes)))
    return snap


# --- the checks ------------------------------------------------------------------------------


class Failures:
    """Failed checks by kind, with a few examples each."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] += 1
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(example)

    def __bool__(self):
        return bool(self.counts)

    def __str__(self):
        return "\n".join(
            f"{kind}: {count} × (e.g. {'; '.join(self.examples[kind])})"
            for kind, count in sorted(self.counts.items())
        )


def check(records: list[Rec], snap: Snapshot, *, unanswered_ok: bool = False):
    """Check the invariants; return (failures, summary of what was checked).

    ``unanswered_ok``: writes that got no answer (the server was killed under
    them) may or may not be stored; everything else is as strict.
    """
    bad = Failures()
    summary: Counter = Counter()
    writes = [r for r in records if r.op in WRITE_OPS and r.marker]
    accepted = [r for r in writes if 200 <= r.status < 300]
    refused = [r for r in writes if 400 <= r.status < 500]
    unanswered = [r for r in writes if r.status == 0]
    for r in records:
        if r.status >= 500:
            bad.add("server errors", f"{r.method} {r.uid} → {r.status} {r.extra}")
        elif r.status == -1:
            bad.add("client errors", f"{r.method}: {r.extra}")
        elif r.status == 0 and not unanswered_ok:
            bad.add("requests without an answer", f"{r.op} {r.method} {r.uid}")

    # Versions 1..n, and the case is its newest version.
    by_case: dict[str, list[int]] = defaultdict(list)
    for uid, version in snap.versions:
        by_case[uid].append(version)
    for uid, (version, _status, data) in snap.cases.items():
        if sorted(by_case.get(uid, [])) != list(range(1, version + 1)):
            bad.add("version gaps", f"{uid} at v{version} has {sorted(by_case.get(uid, []))}")
        elif data_digest(snap.versions[(uid, version)]) != data_digest(data):
            bad.add("case differs from its newest version", uid)
    for uid in set(by_case) - set(snap.cases):
        bad.add("versions without a case", uid)
    summary["cases"] = len(snap.cases)
    summary["versions"] = len(snap.versions)

    # One audit event per version, naming its case and version.
    audited: Counter = Counter()
    for action, object_id, changes in snap.events:
        if action in CASE_ACTIONS:
            audited[(object_id, changes.get("version"))] += 1
        elif action == "cases.imported":
            for uid, version in changes.get("cases", {}).items():
                audited[(uid, version)] += 1
    for key in set(snap.versions) - set(audited):
        bad.add("versions without an audit event", f"{key}")
    for key in set(audited) - set(snap.versions):
        bad.add("audit events without a version", f"{key}")
    for key, count in audited.items():
        if count > 1:
            bad.add("versions with several audit events", f"{key} × {count}")
    summary["audit events"] = sum(audited.values())

    # Each version's marker names the one write that made it.
    stored: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for key, data in snap.versions.items():
        stored[data.get(MARK)].append(key)
    sent_by: dict[str, Rec] = {r.marker: r for r in writes}
    imported: dict[str, str] = {}  # marker: case ID, for rows of imports that wrote them
    import_records = [r for r in records if r.op == "import"]
    for r in import_records:
        if r.extra.get("final") == "done":
            for n, (uid, marker) in enumerate(
                zip(r.extra["uids"], r.extra["markers"], strict=True)
            ):
                if n != r.extra["bad"]:
                    imported[marker] = uid
    for r in accepted:
        keys = stored.get(r.marker, [])
        if keys != [(r.uid, r.version)]:
            bad.add(
                "acknowledged writes not stored exactly once", f"{r.marker} v{r.version}: {keys}"
            )
        elif data_digest(snap.versions[keys[0]]) != r.digest:
            bad.add("acknowledged writes stored with other data", f"{r.marker} {keys[0]}")
    summary["acknowledged writes"] = len(accepted)
    for r in refused:
        if r.marker in stored:
            bad.add("refused writes stored", f"{r.status} {r.marker}: {stored[r.marker]}")
        if r.op == "invalid" and r.method == "POST" and r.uid.startswith("X"):
            if r.uid in snap.cases:
                bad.add("refused new cases stored", r.uid)
    summary["refused writes"] = len(refused)
    summary["unanswered writes"] = len(unanswered)
    summary["unanswered writes stored"] = sum(1 for r in unanswered if r.marker in stored)
    for marker, keys in stored.items():
        r = sent_by.get(marker)
        if r is not None and (200 <= r.status < 300 or (r.status == 0 and unanswered_ok)):
            if r.status == 0 and (len(keys) != 1 or keys[0][0] != r.uid):
                bad.add("unanswered writes stored oddly", f"{marker}: {keys}")
            continue
        if imported.get(marker) is not None and keys == [(imported[marker], 1)]:
            continue
        bad.add("stored versions no acknowledged write made", f"{marker}: {keys[:3]}")

    # The newest version is what the last acknowledged write answered.
    last: dict[str, Rec] = {}
    for r in accepted:
        if r.uid not in last or r.version > last[r.uid].version:
            last[r.uid] = r
    maybe_moved = {r.uid for r in unanswered} if unanswered_ok else set()
    for uid, r in last.items():
        if uid not in snap.cases:
            bad.add("acknowledged cases missing", uid)
            continue
        version = snap.cases[uid][0]
        if uid in maybe_moved:
            if version < r.version:
                bad.add("cases behind their last acknowledged write", f"{uid} v{version}")
        elif version != r.version or data_digest(snap.cases[uid][2]) != r.digest:
            bad.add(
                "cases other than their last acknowledged write", f"{uid} v{version}/{r.version}"
            )
    creators = {r.uid for r in accepted if r.status == 201} | set(imported.values())
    if unanswered_ok:
        creators |= {r.uid for r in unanswered}
    for uid in set(snap.cases) - creators:
        bad.add("cases nobody was told were created", uid)

    # Reads saw committed versions whole, with the version as ETag.
    reads = 0
    for r in records:
        if r.op == "get" and r.status == 200:
            reads += 1
            if r.etag != f'"{r.version}"':
                bad.add("ETag is not the version", f"{r.uid} {r.etag} v{r.version}")
            data = snap.versions.get((r.uid, r.version))
            if data is None or data_digest(data) != r.digest:
                bad.add("reads of data never stored", f"{r.uid} v{r.version}")
        elif r.op == "list" and r.status == 200:
            reads += 1
            for uid, version, digest in r.extra["items"]:
                data = snap.versions.get((uid, version))
                if data is None or data_digest(data) != digest:
                    bad.add("listed data never stored", f"{uid} v{version}")
    summary["reads checked"] = reads

    # Imports stored exactly their valid rows, or nothing.
    by_import: dict[str, set] = defaultdict(set)
    for action, object_id, changes in snap.events:
        if action == "cases.imported":
            by_import[object_id.removeprefix("import ")] |= set(changes.get("cases", {}))
    for r in import_records:
        extra = r.extra
        expected = (
            "refused" if extra["bad"] is not None and extra["mode"] == "all-or-nothing" else "done"
        )
        keep = (
            [u for n, u in enumerate(extra["uids"]) if n != extra["bad"]]
            if r.status == 202 and expected == "done"
            else []
        )
        if r.status == 202:
            summary[f"imports {extra.get('final')}"] += 1
            if extra.get("final") != expected:
                bad.add("imports ending otherwise", f"{extra.get('id')}: {extra.get('final')}")
            in_db = snap.imports.get(extra["id"])
            if snap.imports and in_db != (expected, len(keep)):
                bad.add("imports recorded otherwise", f"{extra['id']}: {in_db}")
            if by_import.get(extra["id"], set()) != set(keep):
                bad.add("import audit events not naming exactly its rows", extra["id"])
        for n, uid in enumerate(extra["uids"]):
            present = uid in snap.cases
            if uid in keep:
                if not present or snap.versions.get((uid, 1), {}).get(MARK) != extra["markers"][n]:
                    bad.add("imported rows missing", uid)
            elif present:
                bad.add("rows of refused imports stored", uid)
        summary["imported rows"] += len(keep)
    return bad, summary


# --- what the clients saw -----------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(records: list[Rec], seconds: float) -> list[str]:
    """Requests, throughput, answers by status and latency per operation."""
    lines = [
        f"{'operation':<16}{'requests':>9}{'per s':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
        "  answers (status)"
    ]
    groups: dict[str, list[Rec]] = defaultdict(list)
    for r in records:
        if r.op == "error":
            groups["client error"].append(r)
        else:
            groups[f"{r.op} {r.method}"].append(r)
    order = ["create POST", "upsert PUT", "update PUT", "update PATCH", "stale PUT", "stale PATCH"]
    names = sorted(groups, key=lambda n: (n not in order, order.index(n) if n in order else n))
    for name in [*names, "all"]:
        group = records if name == "all" else groups[name]
        statuses = Counter(r.status for r in group)
        answers = ", ".join(
            f"{count} × {'none' if status == 0 else status}"
            for status, count in sorted(statuses.items())
        )
        latencies = [r.seconds * 1000 for r in group if r.status > 0]
        lines.append(
            f"{name:<16}{len(group):>9}{len(group) / seconds:>8.1f}"
            f"{percentile(latencies, 50):>8.1f}{percentile(latencies, 95):>8.1f}"
            f"{percentile(latencies, 99):>8.1f}  {answers}"
        )
    return lines
