"""Dictionary versions: published fingerprints, differences, carrying cases forward.

Each published version's parts (elements, value sets, rules, derived values,
CPT rules) are fingerprinted in ``data/published.json``. A file that keeps a
published version number but changes any part is refused, so a change always
comes with a new version and a ``history`` entry saying how to carry older
cases forward.
"""

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from registry3d.dictionary.errors import DictionaryError
from registry3d.dictionary.spec import Dictionary

PUBLISHED_FILE = Path(__file__).resolve().parent / "data" / "published.json"


def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprints(dictionary: Dictionary) -> dict[str, str]:
    """Return a short hash of every part of the dictionary, by part name."""
    parts: dict[str, str] = {}
    for element in dictionary.elements.values():
        parts[f"element:{element.name}"] = _digest(element.raw)
    for name, value_set in dictionary.value_sets.items():
        parts[f"value_set:{name}"] = _digest(
            {
                "codes": [[c.code, c.label, c.retired_in, c.replaced_by] for c in value_set.codes],
                "provenance": value_set.provenance,
                "source": value_set.source,
            }
        )
    for rule in dictionary.rules:
        parts[f"rule:{rule.id}"] = _digest(
            [
                rule.check.text,
                rule.when.text if rule.when else None,
                rule.scope,
                rule.path,
                rule.message,
                rule.severity,
                rule.drafts,
            ]
        )
    for derived in dictionary.derived:
        parts[f"derived:{derived.name}"] = _digest([derived.function, derived.args])
    parts["cpt"] = _digest(
        [[c.code, c.kind, c.first, c.add_on_to] for c in dictionary.cpt_codes]
        + [[u.code, u.max, u.start, u.end] for u in dictionary.unit_caps]
    )
    parts["sections"] = _digest(
        [
            [s.id, s.label, s.questionnaire, [e.name for e in s.elements]]
            for s in dictionary.sections
        ]
    )
    return parts


def read_published(path: Path = PUBLISHED_FILE) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def check_published(dictionary: Dictionary, path: Path = PUBLISHED_FILE) -> None:
    """Refuse a file that changes a published version without a new number."""
    published = read_published(path).get(dictionary.version)
    if published is None or dictionary.name != "registry3d-case":
        return
    current = fingerprints(dictionary)
    changed = sorted(
        name for name in set(published) | set(current) if published.get(name) != current.get(name)
    )
    if changed:
        listed = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        raise DictionaryError(
            f"version {dictionary.version} is already published, but {listed} changed; "
            "give the file a new version and describe the change under 'history'",
            dictionary.file,
        )


def publish(dictionary: Dictionary, path: Path = PUBLISHED_FILE) -> bool:
    """Record the fingerprints of this version; return False if already recorded."""
    published = read_published(path)
    current = fingerprints(dictionary)
    if dictionary.version in published:
        if published[dictionary.version] != current:
            check_published(dictionary, path)
        return False
    published[dictionary.version] = current
    path.write_text(json.dumps(published, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return True


# --- Differences -------------------------------------------------------------------------


@dataclass
class Difference:
    kind: str  # added | removed | changed
    part: str  # element:age_years, value_set:sex, ...
    detail: str = ""

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        return f"{sign} {self.part}" + (f": {self.detail}" if self.detail else "")


def diff(old: Dictionary, new: Dictionary) -> list[Difference]:
    """Say what changed from ``old`` to ``new``, part by part."""
    before, after = fingerprints(old), fingerprints(new)
    differences = []
    for part in sorted(set(before) | set(after)):
        if part not in before:
            differences.append(Difference("added", part, _describe(new, part)))
        elif part not in after:
            differences.append(Difference("removed", part))
        elif before[part] != after[part]:
            differences.append(Difference("changed", part, _what_changed(old, new, part)))
    return differences


def _describe(dictionary: Dictionary, part: str) -> str:
    kind, _, name = part.partition(":")
    if kind == "element":
        element = dictionary.elements[name]
        return f"{element.label} ({element.type}, section {element.section})"
    return ""


def _what_changed(old: Dictionary, new: Dictionary, part: str) -> str:
    kind, _, name = part.partition(":")
    if kind == "value_set":
        before = {c.code: c for c in old.value_sets[name].codes}
        after = {c.code: c for c in new.value_sets[name].codes}
        notes = [f"code {c} added" for c in sorted(set(after) - set(before))]
        notes += [f"code {c} removed" for c in sorted(set(before) - set(after))]
        notes += [
            f"code {c} retired"
            for c in sorted(set(before) & set(after))
            if before[c].active and not after[c].active
        ]
        return "; ".join(notes)
    if kind == "element":
        before, after = old.elements[name].raw, new.elements[name].raw
        keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return "changed " + ", ".join(keys)
    return ""


# --- Carrying cases forward ------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def is_older(version: str, than: str) -> bool:
    """Whether dictionary ``version`` comes before ``than`` (text that is no version: no)."""
    try:
        return _version_key(version) < _version_key(than)
    except ValueError:
        return False


def carry_forward(data: dict, from_version: str, dictionary: Dictionary) -> dict:
    """Return a copy of ``data`` (valid under ``from_version``) in the current version.

    The changes declared in each newer version's history entry are applied
    in order: renamed elements, renamed or split values, new required
    elements with their default, removed elements, text mapped onto codes.
    """
    data = copy.deepcopy(data)
    start = _version_key(from_version)
    for version in dictionary.history:
        if _version_key(version.version) <= start:
            continue
        for change in version.changes:
            _apply(change.kind, change.data, data, dictionary)
    return data


def _targets(data: dict, dotted: str):
    """Yield (container, key) pairs for ``name`` or ``group.name``."""
    if "." in dotted:
        group, name = dotted.split(".", 1)
        for item in data.get(group) or []:
            if isinstance(item, dict):
                yield item, name
    else:
        yield data, dotted


def _apply(kind: str, change: dict, data: dict, dictionary: Dictionary) -> None:
    if kind == "text_to_code":
        _text_to_code(change, data, dictionary)
    elif kind == "renamed":
        for container, key in _targets(data, change["from"]):
            if key in container:
                new_key = change["to"].split(".")[-1]
                container[new_key] = container.pop(key)
    elif kind == "removed":
        for container, key in _targets(data, change["element"]):
            container.pop(key, None)
    elif kind == "added_required":
        for container, key in _targets(data, change["element"]):
            if container.get(key) is None:
                container[key] = change.get("default")
    elif kind in ("value_renamed", "value_split"):
        old = change["from"]
        new = change["to"] if kind == "value_renamed" else change["default"]
        for container, key in _targets(data, change["element"]):
            value = container.get(key)
            if value == old:
                container[key] = new
            elif isinstance(value, list):
                container[key] = [new if v == old else v for v in value]


# A version number in product text: digits and dots, perhaps a service pack,
# standing alone (not part of a date such as 1950-03-03 or 3/3/1950).
VERSION_IN_TEXT = re.compile(r"(?<![\w.\-/])[vV]?(\d[\d.]*(?: ?(?:SP|R|U|HF)\d+)?)(?![\w\-/]|\.\w)")


def _text_to_code(change: dict, data: dict, dictionary: Dictionary) -> None:
    """Map stored product text onto a code of the element's value set.

    1. Text that is already a code of the change (a case entered after the
       element became a choice) is left alone.
    2. The first ``match`` whose pattern is found gives the code; a version
       number left in the text once the product's name is taken out goes to
       ``version_element`` when it fits that element's pattern, and anything
       else in the text is dropped.
    3. Text that matches nothing becomes the ``other`` code, the text moving
       to ``other_element`` (free text, kept only in the site's own data).
    """
    known = {change["other"]} | {m["code"] for m in change["match"]}
    patterns = [(m["code"], re.compile(m["pattern"])) for m in change["match"]]
    version_name = change.get("version_element")
    version_pattern = _version_pattern(dictionary, version_name)
    other_key = change["other_element"].split(".")[-1]
    for container, key in _targets(data, change["element"]):
        text = container.get(key)
        if not isinstance(text, str) or text in known:
            continue
        text = " ".join(text.split())
        if not text:
            container.pop(key)
            continue
        for code, pattern in patterns:
            found = pattern.search(text)
            if found:
                container[key] = code
                version = _version_in(text[: found.start()] + " " + text[found.end() :])
                if version_name and version and version_pattern.fullmatch(version):
                    container.setdefault(version_name.split(".")[-1], version)
                break
        else:
            container[key] = change["other"]
            container[other_key] = text


def _version_pattern(dictionary: Dictionary, name: str | None) -> re.Pattern:
    element = dictionary.all_elements.get(name) if name else None
    if element is None or not element.pattern:
        return re.compile(r"(?!)")  # no version element today: keep no version
    return re.compile(element.pattern)


def _version_in(text: str) -> str | None:
    found = VERSION_IN_TEXT.search(text)
    return found.group(1).rstrip(".") if found else None
