"""Write real CSV and XLSX files of cases for import tests."""

import csv
import random
from pathlib import Path

from registry3d.dictionary import flat, registry
from registry3d.dictionary.examples import synthetic_case


def case_rows(count: int, labels: dict, seed: int = 1, prefix: str = "IMP") -> list[dict]:
    dictionary = registry.current().dictionary
    rng = random.Random(seed)
    rows = []
    for number in range(1, count + 1):
        data = synthetic_case(dictionary, rng, printer_labels=labels)
        rows.append(flat.write_row(dictionary, {"case_uid": f"{prefix}-{number:05d}"}, data))
    return rows


def write_csv(path: Path, rows: list[dict], delimiter: str = ",", bom: bool = False) -> Path:
    columns = sorted({c for row in rows for c in row}, key=_order(rows))
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[dict]) -> Path:
    from openpyxl import Workbook

    columns = sorted({c for row in rows for c in row}, key=_order(rows))
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "cases"
    sheet.append(columns)
    for row in rows:
        sheet.append([_typed(row.get(c, "")) for c in columns])
    workbook.save(path)
    return path


def _typed(value: str):
    """Spreadsheets hold numbers as numbers."""
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value or None


def _order(rows):
    first = {}
    for row in rows:
        for column in row:
            first.setdefault(column, len(first))
    return lambda c: (c != "case_uid", first[c])
