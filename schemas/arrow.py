"""Shared helpers for the Arrow tables every job writes: versioned schema metadata and column validation."""

from __future__ import annotations

import pyarrow as pa

from schemas import SCHEMA_VERSION


def versioned(schema: pa.Schema, version: int = SCHEMA_VERSION) -> pa.Schema:
    """Attach `schema_version` metadata; every Arrow/Parquet file of this project is written with it.

    Each table counts its own layout changes, so a new column in one table does not invalidate the others (nor the
    shards, whose samples carry `SCHEMA_VERSION`). Tables that never changed are at `SCHEMA_VERSION` (1).
    """
    return schema.with_metadata({b"schema_version": str(version).encode()})


def schema_version(schema: pa.Schema) -> str:
    """The `schema_version` metadata of `schema`, "?" when it has none."""
    return (schema.metadata or {}).get(b"schema_version", b"?").decode()


def validate_table(table: pa.Table, schema: pa.Schema, *, name: str) -> pa.Table:
    """Check `table` has exactly `schema`'s columns with castable types; return it cast to `schema`.

    Raises ValueError naming the table, the missing and extra columns, or the column whose type is wrong.
    """
    have, want = set(table.column_names), set(schema.names)
    if have != want:
        raise ValueError(
            f"{name}: columns do not match the schema (schemas/): missing {sorted(want - have)}, extra {sorted(have - want)}"
        )
    table = table.select(schema.names)
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        raise ValueError(f"{name}: a column's type does not match the schema: {err}") from err


def check_version(schema: pa.Schema, *, expected: pa.Schema, name: str,
                  fix: str = "regenerate it with this code version") -> None:
    """Raise ValueError when a file read back (`schema`) was written under another version of its table (`expected`).

    The message names the file (`name`), both versions and the `fix`.
    """
    version, supported = schema_version(schema), schema_version(expected)
    if version != supported:
        raise ValueError(f"{name}: schema_version {version} is not the supported {supported}; {fix}")


def empty_row(schema: pa.Schema) -> dict[str, object]:
    """One row of `schema` with every column at its empty value: "" for strings, False, 0, 0.0, [] for lists."""
    def empty(t: pa.DataType) -> object:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return ""
        if pa.types.is_boolean(t):
            return False
        if pa.types.is_integer(t):
            return 0
        if pa.types.is_floating(t):
            return 0.0
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return []
        raise ValueError(f"empty_row: no empty value for type {t}")

    return {field.name: empty(field.type) for field in schema}
