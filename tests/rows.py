"""Rows read with SQL written once (conversations/sql_once.py and its users) compared with the
ORM's own reads of them."""

from django.db.models import Model


def fields(instance: Model) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def assert_same_row(read: Model, expected: Model) -> None:
    """The same values with the same types, loaded from the same database."""
    assert fields(read) == fields(expected)
    assert [type(value) for value in fields(read).values()] == [
        type(value) for value in fields(expected).values()
    ]  # a UUID stays a UUID, a time an aware datetime (SQLite stores both as text)
    assert read._state.db == expected._state.db and not read._state.adding
