"""Streaming writers of export tables: CSV, Parquet and XLSX, one file (or sheet) a table.

Rows arrive one at a time and leave in batches, so an export of a million
cases never holds them all. Text that a spreadsheet would run as a formula
(it begins with ``=``, ``+``, ``-`` or ``@``, or a tab or carriage return,
and is not a number) is neutralised: CSV cells get a leading ``'``, which
the registry's import removes again; XLSX cells are written as text, never
as formulas.
"""

import csv
import hashlib
from pathlib import Path

from registry3d.dictionary.flat import FORMULA_STARTS
from registry3d.exports.tables import Table

PARQUET_BATCH = 20_000
XLSX_MAX_ROWS = 1_048_575  # Excel's limit, less the header


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralised(text: str) -> str:
    """``text`` made safe to open in a spreadsheet (a leading ``'`` where it could run)."""
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def csv_cell(kind: str, value) -> str:
    """A value as the registry writes it in CSV (and reads it back in an import)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ";".join(neutralised(str(v)) for v in value)
    if isinstance(value, str):
        return neutralised(value)
    return str(value)


class CsvWriter:
    def __init__(self, path: Path, table: Table):
        self.path = path
        self.kinds = [c.kind for c in table.columns]
        self.file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.csv = csv.writer(self.file)
        self.csv.writerow([c.name for c in table.columns])
        self.rows = 0

    def write(self, values: list) -> None:
        self.csv.writerow([csv_cell(k, v) for k, v in zip(self.kinds, values, strict=True)])
        self.rows += 1

    def close(self) -> None:
        self.file.close()


def _arrow_type(kind: str):
    import pyarrow as pa

    return {
        "text": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "text_list": pa.list_(pa.string()),
        "int_list": pa.list_(pa.int64()),
        "duration": pa.int64(),
        "year": pa.int32(),
    }[kind]


def _typed(kind: str, value):
    """``value`` as its Parquet column holds it; what does not fit is left empty."""
    if value is None:
        return None
    if kind in ("int", "duration", "year"):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind == "text_list":
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if kind == "int_list":
        if not isinstance(value, list):
            return None
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return value if isinstance(value, str) else str(value)


class ParquetWriter:
    def __init__(self, path: Path, table: Table):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        self.kinds = [c.kind for c in table.columns]
        self.names = [c.name for c in table.columns]
        self.schema = pa.schema(
            [pa.field(c.name, _arrow_type(c.kind)) for c in table.columns],
            metadata={"registry3d.table": table.name},
        )
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.batch: list[list] = [[] for _ in self.names]
        self.rows = 0

    def write(self, values: list) -> None:
        for column, kind, value in zip(self.batch, self.kinds, values, strict=True):
            column.append(_typed(kind, value))
        self.rows += 1
        if len(self.batch[0]) >= PARQUET_BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.batch[0] or self.rows == 0:
            arrays = dict(zip(self.names, self.batch, strict=True))
            self.writer.write_table(pa.Table.from_pydict(arrays, schema=self.schema))
        self.batch = [[] for _ in self.names]

    def close(self) -> None:
        self._flush()
        self.writer.close()


class XlsxBook:
    """One XLSX file, a sheet per table, written row by row (openpyxl's write-only mode)."""

    def __init__(self, path: Path):
        from openpyxl import Workbook

        self.path = path
        self.book = Workbook(write_only=True)

    def sheet(self, table: Table) -> "XlsxSheet":
        return XlsxSheet(self, table)

    def close(self) -> None:
        self.book.save(self.path)


class XlsxSheet:
    def __init__(self, book: XlsxBook, table: Table):
        self.sheet = book.book.create_sheet(table.name[:31])
        self.sheet.append([c.name for c in table.columns])
        self.rows = 0
        self.table = table.name

    def write(self, values: list) -> None:
        from openpyxl.cell import WriteOnlyCell

        if self.rows >= XLSX_MAX_ROWS:
            raise ValueError(
                f"The {self.table} sheet would pass Excel's limit of {XLSX_MAX_ROWS:,} rows; "
                "export as CSV or Parquet instead"
            )
        cells = []
        for value in values:
            if isinstance(value, list):
                value = ";".join(str(v) for v in value)
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            cell = WriteOnlyCell(self.sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text, never a formula
            cells.append(cell)
        self.sheet.append(cells)
        self.rows += 1

    def close(self) -> None:
        pass  # the book is saved once, with all its sheets


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
