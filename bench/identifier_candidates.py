"""Measure candidate identifier detectors on the labelled corpora.

The candidates are not the registry's dependencies, so this runs in a
throwaway environment that has them (see docs/identifier-detector.md):

    python -m venv /tmp/detector-eval
    /tmp/detector-eval/bin/pip install phonenumbers==9.0.43 philter-lite==0.6.0 \
        usaddress==0.5.16 commonregex==1.5.3 names==0.3.0 presidio-analyzer==2.2.366
    PYTHONPATH=. /tmp/detector-eval/bin/python bench/identifier_candidates.py

1. Each candidate is imported and set up (timed: import and set-up).
2. Each is asked, for every row of ``corpus.csv`` and ``heldout.csv``,
   whether the text holds an identifier (any kind counts: this measures
   recall, not labelling).
3. It prints recall per kind, false positives on the benign rows, and p50
   and p99 of the per-string time, as a Markdown table.

A candidate that cannot run here (a missing model, a data download) is
reported with the reason instead of numbers.
"""

import csv
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT / "tests" / "corpora" / "identifiers"


def load(name: str) -> list[tuple[str, str]]:
    with (CORPORA / name).open(encoding="utf-8", newline="") as f:
        return [(row["kind"], row["text"]) for row in csv.DictReader(f)]


def baseline() -> Callable[[str], bool]:
    """The regular expressions the registry had before issue 15 (cue words)."""
    sys.path.insert(0, str(ROOT))
    import subprocess

    old = subprocess.run(
        ["git", "show", "a984e41:registry3d/lib/identifiers.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    scope: dict = {}
    exec(compile(old, "identifiers_before_15.py", "exec"), scope)
    return lambda text: scope["find_identifier"](text) is not None


def current() -> Callable[[str], bool]:
    from registry3d.lib.identifiers import find_identifier, find_identifier_in_file_name

    files = re.compile(r"\.(?:stl|obj|3mf|ply|amf)\Z", re.IGNORECASE)

    def detect(text: str) -> bool:
        if files.search(text):
            return find_identifier_in_file_name(text) is not None
        return find_identifier(text) is not None

    return detect


def phonenumbers_only() -> Callable[[str], bool]:
    import phonenumbers

    def detect(text: str) -> bool:
        matcher = phonenumbers.PhoneNumberMatcher(text, "US", phonenumbers.Leniency.POSSIBLE)
        return matcher.has_next()

    return detect


def commonregex_all() -> Callable[[str], bool]:
    from commonregex import CommonRegex

    kinds = (
        "dates",
        "phones",
        "phones_with_exts",
        "links",
        "emails",
        "ips",
        "ipv6s",
        "street_addresses",
        "zip_codes",
        "po_boxes",
        "ssn_number",
    )

    def detect(text: str) -> bool:
        found = CommonRegex(text)
        return any(getattr(found, k, None) for k in kinds)

    return detect


def presidio_patterns() -> Callable[[str], bool]:
    from presidio_analyzer.predefined_recognizers import (
        DateRecognizer,
        EmailRecognizer,
        IpRecognizer,
        MedicalLicenseRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    recognizers = [
        DateRecognizer(),
        EmailRecognizer(),
        IpRecognizer(),
        MedicalLicenseRecognizer(),
        PhoneRecognizer(),
        UrlRecognizer(),
        UsSsnRecognizer(),
    ]

    def detect(text: str) -> bool:
        for r in recognizers:
            if any(x.score >= 0.4 for x in r.analyze(text, r.supported_entities, None)):
                return True
        return False

    return detect


def philter() -> Callable[[str], bool]:
    import philter_lite

    path = Path(philter_lite.__file__).parent / "configs" / "philter_delta.toml"
    filters = philter_lite.load_filters(str(path))

    def detect(text: str) -> bool:
        include_map, exclude_map, _ = philter_lite.detect_phi(text, filters)
        return any(True for _ in exclude_map.filecoords())

    detect("warm up John Smith 617-555-0100")
    return detect


def usaddress_only() -> Callable[[str], bool]:
    import usaddress

    def detect(text: str) -> bool:
        tags = {label for _, label in usaddress.parse(text)}
        return {"AddressNumber", "StreetName"} <= tags or "USPSBoxID" in tags

    return detect


def census_names() -> Callable[[str], bool]:
    """First name then surname, both in the 1990 US Census lists (``names``)."""
    import names

    folder = Path(names.__file__).parent

    def read(file: str) -> set[str]:
        with (folder / file).open() as f:
            return {line.split()[0].lower() for line in f if line.strip()}

    firsts = read("dist.male.first") | read("dist.female.first")
    lasts = read("dist.all.last")
    words = re.compile(r"[A-Za-z']+")

    def detect(text: str) -> bool:
        tokens = [t.lower() for t in words.findall(text)]
        pairs = zip(tokens, tokens[1:], strict=False)
        return any((a in firsts and b in lasts) or (a in lasts and b in firsts) for a, b in pairs)

    return detect


CANDIDATES = {
    "registry regexes before #15": baseline,
    "phonenumbers 9.0.43 (PhoneNumberMatcher, POSSIBLE)": phonenumbers_only,
    "commonregex 1.5.3 (all kinds)": commonregex_all,
    "presidio-analyzer 2.2.366 (pattern recognizers only)": presidio_patterns,
    "philter-lite 0.6.0 (philter_delta config)": philter,
    "usaddress 0.5.16 (number + street)": usaddress_only,
    "names 0.3.0 (Census first + last)": census_names,
    "registry3d.lib.identifiers (chosen)": current,
}


def measure(detect: Callable[[str], bool], rows: list[tuple[str, str]]) -> dict:
    found: dict[str, list[int]] = {}
    times = []
    for kind, text in rows:
        start = time.perf_counter()
        hit = detect(text)
        times.append(time.perf_counter() - start)
        n, d = found.get(kind, [0, 0])
        found[kind] = [n + 1, d + int(hit)]
    times.sort()
    positives = [v for k, v in found.items() if k != "benign"]
    return {
        "recall": sum(d for _, d in positives) / sum(n for n, _ in positives),
        "fp": found.get("benign", [0, 0])[1] / found.get("benign", [1, 0])[0],
        "per_kind": found,
        "p50": statistics.median(times) * 1e6,
        "p99": times[int(0.99 * (len(times) - 1))] * 1e6,
    }


def main() -> None:
    main_rows, heldout = load("corpus.csv"), load("heldout.csv")
    kinds = sorted({k for k, _ in main_rows if k != "benign"})
    print(
        "| candidate | set-up | recall (main) | false pos. (main) | recall (held-out) "
        "| false pos. (held-out) | p50 | p99 | " + " | ".join(kinds) + " |"
    )
    print("|---" * (8 + len(kinds)) + "|")
    for label, make in CANDIDATES.items():
        start = time.perf_counter()
        try:
            detect = make()
            detect("warm up")
        except Exception as e:  # noqa: BLE001 - the reason is the result
            print(f"| {label} | fails: {type(e).__name__}: {str(e).splitlines()[0][:90]} |")
            continue
        setup = time.perf_counter() - start
        m, h = measure(detect, main_rows), measure(detect, heldout)
        per_kind = " | ".join(f"{m['per_kind'][k][1]}/{m['per_kind'][k][0]}" for k in kinds)
        print(
            f"| {label} | {setup * 1000:.0f} ms | {m['recall']:.1%} | {m['fp']:.1%} "
            f"| {h['recall']:.1%} | {h['fp']:.1%} | {m['p50']:.0f} µs | {m['p99']:.0f} µs "
            f"| {per_kind} |"
        )


if __name__ == "__main__":
    main()
