"""Values computed from a case, never typed in.

Each function takes the dictionary, the case data and the ``args`` written
in the dictionary file, and returns the value (None when it cannot be told).
"""

from registry3d.dictionary import cpt


def sum_durations(dictionary, data: dict, args: dict):
    """Total minutes of duration elements; None if any is missing or unknown."""
    total = 0
    for name in args.get("elements", []):
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        total += value
    return total


def count(dictionary, data: dict, args: dict):
    value = data.get(args.get("element"))
    return len(value) if isinstance(value, list) else 0


def sum_item_values(dictionary, data: dict, args: dict):
    """Sum one element over a group's items; None when no item has it."""
    items = data.get(args.get("group")) or []
    values = [
        item.get(args.get("element"))
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get(args.get("element")), int | float)
        and not isinstance(item.get(args.get("element")), bool)
    ]
    return round(sum(values), 2) if values else None


def expected_cpt_units(dictionary, data: dict, args: dict):
    return cpt.expected_units(data)


FUNCTIONS = {
    "sum_durations": sum_durations,
    "count": count,
    "sum_item_values": sum_item_values,
    "expected_cpt_units": expected_cpt_units,
}


def derive(dictionary, data: dict) -> dict:
    """Return every derived value of the dictionary for ``data``."""
    return {d.name: FUNCTIONS[d.function](dictionary, data, d.args) for d in dictionary.derived}
