"""SQL written once per database, for the few statements before every reply's first token.

Django compiles a QuerySet's SQL anew each time it runs: for the statements on that path
this took several times as long as running them (bench/). Here each is built once from the
models' own metadata; values are prepared by each field as the ORM prepares them, and rows
become models through Django's own parts: each field's database converters, then
Model.from_db. Used by key_lookup.py and reply_reads.py (reads), the message POST's INSERT
and UPDATE (models/conversation.py), /v1's INSERTs (transcripts.py), and every write to a running
reply (completion.py: its checkpoints and its final state, guarded by its status); their
tests compare each with the ORM's own.
"""

import functools
from collections.abc import Callable

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.expressions import Col

type Quote = Callable[[str], str]


def column(model: type[Model], name: str, quote: Quote) -> str:
    """A field's quoted column name (a foreign key's is its `_id` column)."""
    return quote(model._meta.get_field(name).column)


def db_value(model: type[Model], name: str, value: object, using: str) -> object:
    """`value` as the field sends it to the database (a UUID as text on SQLite, say)."""
    return model._meta.get_field(name).get_db_prep_value(value, connections[using])


class Table:
    """One model's columns in a statement: how to select them and make its instance."""

    def __init__(self, model: type[Model], alias: str, connection: BaseDatabaseWrapper) -> None:
        self.model, self.alias = model, alias
        fields = model._meta.concrete_fields
        self.attnames = [field.attname for field in fields]
        self.pk_index = [field.primary_key for field in fields].index(True)
        self.columns: list[tuple[Col, list[Callable]]] = [
            (col, [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)])
            for col in (field.get_col(alias) for field in fields)
        ]

    def select(self, quote: Quote) -> str:
        return ", ".join(f"{self.alias}.{quote(col.target.column)}" for col, _ in self.columns)

    def instance(self, row: tuple, start: int, using: str) -> Model | None:
        """The model made from its columns in `row` (from `start`); None for an outer join's
        missing row."""
        own = row[start : start + len(self.columns)]
        if own[self.pk_index] is None:
            return None
        connection = connections[using]
        values = []
        for value, (col, converters) in zip(own, self.columns, strict=True):
            for convert in converters:
                value = convert(value, col, connection)
            values.append(value)
        return self.model.from_db(using, self.attnames, values)


# psycopg keeps the statements it has parsed for its parameters only up to this many
# parameters: a longer one (two messages of 26 columns) is parsed anew every time.
PSYCOPG_CACHED_PARAMETERS = 50


@functools.lru_cache(maxsize=128)  # by row count and columns: a /v1 transcript's length varies
def insert_sql(model: type[Model], rows: int, columns: tuple[str, ...], using: str) -> str:
    """INSERT of `rows` rows of the given columns, in one statement."""
    q = connections[using].ops.quote_name
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    names = ", ".join(map(q, columns))
    return f"INSERT INTO {q(model._meta.db_table)} ({names}) VALUES {', '.join([row] * rows)}"


def insert_fields(model: type[Model]) -> list[Field]:
    return [field for field in model._meta.concrete_fields if not field.generated]


def insert(objs: list[Model], using: str) -> None:
    """Store new `objs` (one model, primary and foreign keys set) in one INSERT, as
    bulk_create does: each value from the field's pre_save and get_db_prep_save, and no
    signals sent. Past the database's limit of parameters per statement (SQLite's, a long
    /v1 transcript), in as few INSERTs as it takes."""
    model, connection = type(objs[0]), connections[using]
    fields = insert_fields(model)
    rows = [
        [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
        for obj in objs
    ]
    # A column NULL in every row is left out, as the database then stores NULL (a field with
    # a database default is always sent): fewer parameters, within psycopg's parsed cache.
    kept = [
        i
        for i, field in enumerate(fields)
        if field.has_db_default() or any(row[i] is not None for row in rows)
    ]
    columns = tuple(fields[i].column for i in kept)
    limit = connection.features.max_query_params
    per_statement = max(1, limit // len(kept)) if limit else len(rows)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            sql = insert_sql(model, len(batch), columns, using)
            cursor.execute(sql, [row[i] for row in batch for i in kept])
    for obj in objs:
        obj._state.adding, obj._state.db = False, using


type Guard = tuple[str, tuple]  # a field and its allowed values; ("", ()): none


@functools.cache
def update_sql(
    model: type[Model], names: tuple[str, ...], using: str, guard_field: str, guard_count: int
) -> str:
    """UPDATE of the fields `names` of the row with a given primary key; with a guard field,
    only while it holds one of `guard_count` values."""
    q = connections[using].ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{column(model, name, q)} = %s" for name in names)
    where = f"{q(meta.pk.column)} = %s"
    if guard_field:
        allowed = ", ".join(["%s"] * guard_count)
        where += f" AND {column(model, guard_field, q)} IN ({allowed})"
    return f"UPDATE {q(meta.db_table)} SET {assignments} WHERE {where}"


def update_statement(
    model: type[Model], pk: object, values: dict[str, object], using: str, only_if: Guard = ("", ())
) -> tuple[str, list]:
    """The UPDATE setting `values` (field name: value) on the row `pk`, as QuerySet.update
    does, and its parameters; with `only_if`, only while that field holds an allowed value."""
    connection, meta = connections[using], model._meta
    guard_field, allowed = only_if
    params = [meta.get_field(name).get_db_prep_save(v, connection) for name, v in values.items()]
    params.append(meta.pk.get_db_prep_value(pk, connection))
    params += allowed  # choices' values, as the database stores them
    return update_sql(model, tuple(values), using, guard_field, len(allowed)), params


def update(
    model: type[Model], pk: object, values: dict[str, object], using: str, only_if: Guard = ("", ())
) -> int:
    """update_statement, run; the number of rows changed."""
    sql, params = update_statement(model, pk, values, using, only_if)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
