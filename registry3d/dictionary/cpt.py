"""CPT Category III coding for 3D printed anatomic models and guides.

0559T is the first separately prepared component of an anatomic model and
0560T each additional one; 0561T is the first anatomic guide and 0562T each
additional one. Add-on codes are never reported without their primary code,
and units are capped per date of service (the caps are in the dictionary).
"""

from registry3d.dictionary.spec import Dictionary, UnitCap


def components(data: dict) -> int | None:
    """Model components: parts marked as separately prepared and processed.

    None when no part says either way, so nothing is assumed.
    """
    parts = [p for p in data.get("anatomic_parts") or [] if isinstance(p, dict)]
    flags = [p.get("cpt_component") for p in parts]
    if not parts or all(flag is None for flag in flags):
        return None
    return sum(1 for flag in flags if flag is True)


def guides(data: dict) -> int:
    """Guides: each print of a guide case is one guide; copies are not."""
    return len([p for p in data.get("prints") or [] if isinstance(p, dict)])


def expected_units(data: dict) -> dict[str, int] | None:
    """Return the units the case supports per code, or None if unknown."""
    kind = data.get("object_type")
    if kind == "anatomic_model":
        count = components(data)
        if count is None:
            return None
        if count == 0:
            return {}
        units = {"0559T": 1}
        if count > 1:
            units["0560T"] = count - 1
        return units
    if kind == "anatomic_guide":
        count = guides(data)
        if count == 0:
            return {}
        units = {"0561T": 1}
        if count > 1:
            units["0562T"] = count - 1
        return units
    return None


def cap_for(caps: list[UnitCap], code: str, month: str | None) -> UnitCap | None:
    """Return the unit cap in force for ``code`` in ``month`` (YYYY-MM)."""
    if not month:
        return None
    for cap in caps:
        if cap.code == code and cap.start <= month and (cap.end is None or month <= cap.end):
            return cap
    return None


def check(dictionary: Dictionary, data: dict) -> list[tuple[str, str, str, str]]:
    """Check the reported CPT lines; return (path, code, message, severity) tuples."""
    lines = data.get("cpt_lines")
    if not isinstance(lines, list) or not lines:
        return []
    by_code = {c.code: c for c in dictionary.cpt_codes}
    problems = []
    reported: dict[str, int] = {}
    positions: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            continue
        code, units = line.get("code"), line.get("units")
        if code not in by_code or not isinstance(units, int):
            continue  # reported by the element checks already
        if code in reported:
            problems.append(
                (
                    f"cpt_lines[{number}].code",
                    "cpt_duplicate",
                    f"{code} is reported twice; report it once with its total units",
                    "error",
                )
            )
            continue
        reported[code] = units
        positions[code] = number
    kind = data.get("object_type")
    for code, units in reported.items():
        spec = by_code[code]
        where = f"cpt_lines[{positions[code]}]"
        wanted = "anatomic_model" if spec.kind == "model" else "anatomic_guide"
        if kind in ("anatomic_model", "anatomic_guide") and kind != wanted:
            problems.append(
                (
                    f"{where}.code",
                    "cpt_wrong_object_type",
                    f"{code} is for an anatomic {spec.kind}, but this case is an "
                    f"{kind.replace('_', ' ')}",
                    "error",
                )
            )
        if spec.add_on_to and spec.add_on_to not in reported:
            problems.append(
                (
                    f"{where}.code",
                    "cpt_add_on_without_primary",
                    f"{code} is an add-on code and needs {spec.add_on_to} on the same case",
                    "error",
                )
            )
        cap = cap_for(dictionary.unit_caps, code, data.get("case_year_month"))
        if cap is not None and units > cap.max:
            period = f"from {cap.start}" + (f" to {cap.end}" if cap.end else "")
            problems.append(
                (
                    f"{where}.units",
                    "cpt_units_over_cap",
                    f"{code} allows at most {cap.max} unit{'s' if cap.max != 1 else ''} per "
                    f"date of service {period}; {units} were reported",
                    "error",
                )
            )
    expected = expected_units(data)
    if expected is not None:
        for code in sorted(set(expected) | set(reported)):
            want, got = expected.get(code, 0), reported.get(code, 0)
            cap = cap_for(dictionary.unit_caps, code, data.get("case_year_month"))
            if cap is not None:
                want = min(want, cap.max)
            if want != got and code in by_code:
                where = f"cpt_lines[{positions[code]}].units" if code in positions else "cpt_lines"
                problems.append(
                    (
                        where,
                        "cpt_units_unexpected",
                        f"the case supports {want} unit{'s' if want != 1 else ''} of {code} "
                        f"but {got} {'were' if got != 1 else 'was'} reported",
                        "warning",
                    )
                )
    return problems
