"""Pieces of hand-written SQL for the few writes that must be one statement."""

import functools

from django.db import connection


def quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def insert_parts(obj, *, skip: tuple[str, ...] = ()) -> tuple[str, str, list]:
    """Return the quoted columns, typed placeholders and values of a new row for ``obj``.

    Every concrete field but the primary key and those named in ``skip``,
    prepared as ``Model.save()`` prepares them (``auto_now`` fields are set on
    ``obj``). Each placeholder carries its column's type, so the values can
    stand in a ``SELECT`` as well as in ``VALUES``.
    """
    fields, columns, placeholders = _insert_shape(type(obj), skip)
    values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    return columns, placeholders, values


@functools.cache
def _insert_shape(model, skip: tuple[str, ...]) -> tuple[list, str, str]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and f.name not in skip]
    columns = ", ".join(quoted(f.column) for f in fields)
    placeholders = ", ".join(f"%s::{column_type(f)}" for f in fields)
    return fields, columns, placeholders


def column_type(field) -> str:
    """The type to cast a value for ``field`` to, without a length.

    A cast to ``varchar(64)`` would cut a longer value silently; as ``text``
    it reaches the column, which refuses it as an ordinary insert would.
    """
    db_type = field.db_type(connection)
    if db_type.startswith(("varchar", "char")):
        return "text"
    return db_type


def select_columns(alias: str, model) -> str:
    """The quoted columns of every concrete field of ``model``, in field order."""
    return ", ".join(f"{alias}.{quoted(f.column)}" for f in model._meta.concrete_fields)


def instances(row: tuple, *models) -> list:
    """Split a row of :func:`select_columns` for each of ``models`` into model instances.

    Values pass through the converters the ORM would apply (SQLite's dates,
    UUIDs and booleans, JSON). A model whose first column is NULL (an outer
    join that found nothing) gives None.
    """
    out, start = [], 0
    for model in models:
        fields, converters = _converters(model)
        values = list(row[start : start + len(fields)])
        start += len(fields)
        if values[0] is None:
            out.append(None)
            continue
        for index, expression, functions in converters:
            for convert in functions:
                values[index] = convert(values[index], expression, connection)
        out.append(model.from_db(connection.alias, [f.attname for f in fields], values))
    return out


@functools.cache
def _converters(model) -> tuple[list, list]:
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        )
        if functions:
            converters.append((index, expression, functions))
    return list(fields), converters
