"""Compare the database with a backup's manifest, and check the audit hash chain."""

from dataclasses import dataclass, field

from registry3d.ops import state


@dataclass
class Mismatch:
    what: str
    expected: str
    found: str


@dataclass
class Verification:
    state: dict
    chain_ok: bool
    chain_checked: int
    chain_reason: str = ""
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain_ok and not self.mismatches


def _short(checksum: str) -> str:
    return f"sha256 {checksum[:12]}…"


def compare(manifest: dict, found: dict) -> list[Mismatch]:
    """Every difference between a manifest and a state read by :func:`state.collect`."""
    mismatches = []
    expected_migrations, found_migrations = manifest["migrations"], found["migrations"]
    for app in sorted(set(expected_migrations) | set(found_migrations)):
        before, now = expected_migrations.get(app), found_migrations.get(app)
        if before != now:
            mismatches.append(Mismatch(f"migrations of {app}", before or "none", now or "none"))
    expected_tables, found_tables = manifest["tables"], found["tables"]
    for table in sorted(set(expected_tables) | set(found_tables)):
        before, now = expected_tables.get(table), found_tables.get(table)
        if now is None:
            mismatches.append(Mismatch(table, f"{before['rows']} rows", "table missing"))
        elif before is None:
            if now["rows"]:
                mismatches.append(Mismatch(table, "not in the backup", f"{now['rows']} rows"))
        elif before["rows"] != now["rows"]:
            mismatches.append(Mismatch(table, f"{before['rows']} rows", f"{now['rows']} rows"))
        elif before["sha256"] != now["sha256"]:
            mismatches.append(
                Mismatch(
                    table,
                    f"{before['rows']} rows, {_short(before['sha256'])}",
                    f"{now['rows']} rows, {_short(now['sha256'])}",
                )
            )
    head, now_head = manifest["audit"], found["audit"]
    if (head["head_seq"], head["head_hash"]) != (now_head["head_seq"], now_head["head_hash"]):
        mismatches.append(
            Mismatch(
                "audit trail head",
                f"#{head['head_seq']} {head['head_hash'][:12]}",
                f"#{now_head['head_seq']} {now_head['head_hash'][:12]}",
            )
        )
    return mismatches


def verify(manifest: dict | None = None) -> Verification:
    """Read the configured database's state in one snapshot and check it.

    The audit chain is always verified; with a manifest, every count,
    checksum, migration and the audit head are compared with it too.
    """
    from registry3d.audit.services import verify_chain

    with state.live_snapshot() as db:
        found = state.collect(db)
    chain = verify_chain()
    result = Verification(found, chain.ok, chain.checked, chain.reason)
    if not chain.ok:
        result.mismatches.append(Mismatch("audit hash chain", "intact", chain.reason))
    if manifest is not None:
        result.mismatches.extend(compare(manifest, found))
    return result
