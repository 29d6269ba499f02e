"""Many cases as FHIR NDJSON files, one per resource type (FHIR Bulk Data style).

``registry3d export --format fhir`` calls :func:`write_ndjson`. It streams:
each case is turned into its resources and written before the next is read,
so memory stays flat however many cases there are.
"""

import json
from collections.abc import Iterable
from pathlib import Path

from registry3d.cases.models import Case
from registry3d.dictionary import registry
from registry3d.fhir.common import validated
from registry3d.fhir.resources import case_resources


def write_ndjson(
    cases: Iterable[Case],
    out_dir: Path,
    *,
    free_text: bool = True,
    validate: bool = False,
) -> dict[str, int]:
    """Write ``<ResourceType>.ndjson`` files into ``out_dir``; return {file name: resources}.

    ``cases`` may be any iterable, e.g. ``Case.objects.filter(...).iterator()``;
    the case's site is read once per site, not once per case. References
    between resources are relative (``Patient/<id>``), ids are the same as in
    the case's Bundle. ``free_text=False`` leaves out the elements a person
    types freely (comments). ``validate=True`` reads every resource back with
    fhir.resources before writing it (about ten times slower; the tests
    check the same mapping on every element).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dictionary = registry.current().dictionary
    site_field = Case._meta.get_field("site")
    sites: dict = {}
    files: dict[str, object] = {}
    counts: dict[str, int] = {}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    try:
        for case in cases:
            if not site_field.is_cached(case):
                if case.site_id not in sites:
                    sites[case.site_id] = case.site
                case.site = sites[case.site_id]
            for resource in case_resources(case, free_text=free_text, dictionary=dictionary):
                if validate:
                    validated(resource)
                name = f"{resource['resourceType']}.ndjson"
                handle = files.get(name)
                if handle is None:
                    handle = files[name] = open(  # noqa: SIM115 - closed below
                        out_dir / name, "w", encoding="utf-8", newline="\n"
                    )
                    counts[name] = 0
                handle.write(dumps(resource))
                handle.write("\n")
                counts[name] += 1
    finally:
        for handle in files.values():
            handle.close()
    return dict(sorted(counts.items()))
