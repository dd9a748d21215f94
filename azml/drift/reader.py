"""Column-projected, chunked reads of the drift engine's inputs.

An input is a CSV or Parquet file (chosen by suffix) or an in-memory
``pandas.DataFrame`` / ``pyarrow.Table``. Files are read in chunks of at most
``chunk_rows`` rows (``pyarrow.csv.open_csv`` and
``pyarrow.parquet.ParquetFile.iter_batches``), after each of which the caller can
learn how much of the input has been read (for progress). The streamed engine reads
each input once; the in-memory path stops reading once an input has more rows than
it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

NUMERIC = "numeric"
CATEGORICAL = "categorical"

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Bytes of the first CSV block, whose values decide the columns' types.
CSV_BLOCK_BYTES = 8 << 20
#: Bytes pyarrow's CSV reader parses at a time when reading the data. Its reader reads
#: dozens of blocks ahead: 8 MiB blocks held ~300 MB of a 1.4 GB file in memory,
#: 1 MiB blocks ~40 MB, and parsed it no slower. Blocks are parsed on Arrow's thread
#: pool: on the reading thread alone, CSV vs Parquet at 24 million rows ran at 9.3
#: instead of 11.4 M values/s (docs/benchmarks.md).
CSV_READ_BLOCK_BYTES = 1 << 20


class DriftInputError(ValueError):
    """Bad input to the drift engine; ``str(error)`` is one line for the user."""


def column_kind(data_type: pa.DataType) -> str | None:
    """numeric, categorical, or None for an all-null column (either kind)."""
    if pa.types.is_null(data_type):
        return None
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return NUMERIC
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_dictionary(data_type)
    ):
        return CATEGORICAL
    raise TypeError(str(data_type))


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


@dataclass
class Source:
    """One input: its label for messages, its schema, and how to read it."""

    label: str
    schema: pa.Schema
    path: Path | None = None
    table: pa.Table | None = None
    fmt: str = "table"  # table, csv, parquet
    num_rows: int | None = None  # known without reading for Parquet and tables

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def kind(self, name: str) -> str | None:
        data_type = self.schema.field(name).type
        try:
            return column_kind(data_type)
        except TypeError:
            raise DriftInputError(
                f"{self.label}: column {name!r} has type {data_type}, which the drift engine does not support"
            ) from None

    def batches(
        self, columns: list[str], chunk_rows: int, on_batch: Callable[[int, float | None], None] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The rows of ``columns`` in chunks of at most ``chunk_rows`` rows; after each
        chunk, ``on_batch(rows so far, share of the input read or None)``."""
        rows = 0

        def report(batch: pa.RecordBatch, share: float | None) -> None:
            nonlocal rows
            rows += batch.num_rows
            if on_batch is not None:
                on_batch(rows, share)

        try:
            if self.fmt == "table":
                assert self.table is not None
                for batch in self.table.select(columns).to_batches(max_chunksize=chunk_rows):
                    yield batch
                    report(batch, (rows + batch.num_rows) / max(self.table.num_rows, 1))
            elif self.fmt == "parquet":
                import pyarrow.parquet as pq

                # pre_buffer (pyarrow's default) fetches every row group's columns
                # ahead: the whole 600 MB of a 24-million-row file was held in memory.
                with pq.ParquetFile(self.path, pre_buffer=False) as handle:
                    for batch in handle.iter_batches(batch_size=chunk_rows, columns=columns):
                        yield batch
                        report(batch, (rows + batch.num_rows) / max(self.num_rows or 0, 1))
            else:
                with pa.OSFile(str(self.path)) as raw:
                    size = max(raw.size(), 1)
                    for block in self._csv_reader(columns, raw):
                        for start in range(0, block.num_rows, chunk_rows):
                            batch = block.slice(start, chunk_rows)
                            yield batch
                            report(batch, min(raw.tell() / size, 1.0))
        except (pa.ArrowInvalid, OSError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DriftInputError(f"{self.label}: cannot read: {first}") from None

    def read_all(self, columns: list[str], limit: int) -> pa.Table | None:
        """All rows of ``columns`` as one table if there are at most ``limit``; else None."""
        if self.num_rows is not None and self.num_rows > limit:
            return None
        if self.fmt == "table":
            assert self.table is not None
            return self.table.select(columns)
        if self.fmt == "parquet":
            return self._read_parquet(columns)
        parts: list[pa.RecordBatch] = []
        rows = 0
        for batch in self.batches(columns, max(limit, 1)):
            rows += batch.num_rows
            if rows > limit:
                return None
            parts.append(batch)
        schema = parts[0].schema if parts else self.schema
        return pa.Table.from_batches(parts, schema=schema) if parts else self.schema.empty_table().select(columns)

    def _read_parquet(self, columns: list[str]) -> pa.Table:
        """The whole file's ``columns`` in one call: only those columns' pages are read,
        decoded on Arrow's threads, and text columns are kept dictionary-encoded as the
        file stores them (categories are counted on the dictionary's indices, no string
        is built per row). Not memory-mapped: a mapping would count against an
        address-space limit as a whole file (tests/test_drift_scale.py)."""
        import pyarrow.parquet as pq

        text = [
            name
            for name in columns
            if pa.types.is_string(self.schema.field(name).type) or pa.types.is_large_string(self.schema.field(name).type)
        ]
        try:
            return pq.read_table(
                self.path, columns=columns, use_threads=True, read_dictionary=text or None
            )
        except (pa.ArrowInvalid, OSError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DriftInputError(f"{self.label}: cannot read: {first}") from None

    def _csv_reader(self, columns: list[str], raw: pa.NativeFile) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pacsv

        # Integers as float64: a later block holding 1.5 or an empty cell must not
        # contradict the type inferred from the first block.
        types = {}
        for name in columns:
            data_type = self.schema.field(name).type
            if pa.types.is_integer(data_type) or pa.types.is_null(data_type):
                types[name] = pa.float64()
            else:
                types[name] = data_type
        # The file is opened here, not by pyarrow, so that the raw position (compressed
        # bytes for .csv.gz) tells how much of it has been read.
        stream = pa.CompressedInputStream(raw, "gzip") if self.path is not None and self.path.name.lower().endswith(".gz") else raw
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=CSV_READ_BLOCK_BYTES, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter="\t" if self._tsv else ","),
            convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types),
        )
        try:
            yield from reader
        finally:
            reader.close()

    @property
    def _tsv(self) -> bool:
        return self.path is not None and self.path.name.lower().endswith(".tsv")


def open_source(data: Any, label: str) -> Source:
    """A Source for a path (CSV/Parquet by suffix), a DataFrame or a pyarrow Table."""
    if isinstance(data, pa.Table):
        return Source(label=label, schema=data.schema, table=data, num_rows=data.num_rows)
    if isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
        return Source(label=label, schema=table.schema, table=table, num_rows=table.num_rows)
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):
        try:
            table = pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as error:
            raise DriftInputError(f"{label}: cannot convert the DataFrame: {str(error).splitlines()[0]}") from None
        return Source(label=label, schema=table.schema, table=table, num_rows=table.num_rows)
    if isinstance(data, (str, Path)):
        return _open_path(Path(data), label)
    raise DriftInputError(f"{label}: expected a CSV or Parquet path, a pandas DataFrame or a pyarrow Table, got {type(data).__name__}")


def _head(path: Path) -> bytes:
    """The first CSV_BLOCK_BYTES of a CSV file (decompressed for .csv.gz) and one more
    byte, so the block is not the last and its cut line is not parsed. pyarrow's CSV
    reader fetches up to 32 blocks ahead in the background whatever ``use_threads``
    says: opened on the file to learn its schema, it held 96-128 MiB of it."""
    with pa.OSFile(str(path)) as raw:
        stream = pa.CompressedInputStream(raw, "gzip") if path.name.lower().endswith(".gz") else raw
        return stream.read(CSV_BLOCK_BYTES + 1)


def _open_path(path: Path, label: str) -> Source:
    label = f"{label} {path}"
    if not path.is_file():
        raise DriftInputError(f"{label}: no such file")
    suffix = _suffix(path)
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            with pq.ParquetFile(path) as handle:
                schema = handle.schema_arrow
                rows = handle.metadata.num_rows
        except (pa.ArrowInvalid, OSError) as error:
            raise DriftInputError(f"{label}: not a readable Parquet file ({str(error).splitlines()[0]})") from None
        return Source(label=label, schema=schema, path=path, fmt="parquet", num_rows=rows)
    if suffix in CSV_SUFFIXES:
        import pyarrow.csv as pacsv

        try:
            reader = pacsv.open_csv(
                pa.BufferReader(_head(path)),
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ","),
            )
            schema = reader.schema
            reader.close()
        except (pa.ArrowInvalid, OSError) as error:
            raise DriftInputError(f"{label}: not a readable CSV file ({str(error).strip().splitlines()[0]})") from None
        return Source(label=label, schema=schema, path=path, fmt="csv")
    raise DriftInputError(f"{label}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv, .csv.gz, .parquet or .pq")


def resolve_features(reference: Source, current: Source, features: list[str] | None) -> dict[str, str]:
    """The features to compare and their kind; DriftInputError on unknown names or kind clashes."""
    names = list(features) if features else reference.columns
    if not names:
        raise DriftInputError(f"{reference.label}: no columns")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise DriftInputError(f"feature(s) given twice: {', '.join(duplicates)}")
    for source in (reference, current):
        unknown = [name for name in names if name not in source.schema.names]
        if unknown:
            raise DriftInputError(
                f"{source.label}: unknown feature(s) {', '.join(unknown)}; available columns: {', '.join(source.columns)}"
            )
    kinds: dict[str, str] = {}
    for name in names:
        ref_kind, cur_kind = reference.kind(name), current.kind(name)
        if ref_kind is not None and cur_kind is not None and ref_kind != cur_kind:
            raise DriftInputError(
                f"feature {name!r} is {ref_kind} ({reference.schema.field(name).type}) in the reference "
                f"but {cur_kind} ({current.schema.field(name).type}) in the current data"
            )
        kinds[name] = ref_kind or cur_kind or NUMERIC
    return kinds


def as_float64(column: pa.Array | pa.ChunkedArray) -> Any:
    """A numeric column as a float64 numpy array, missing values as NaN."""
    if pa.types.is_null(column.type):
        import numpy as np

        return np.full(len(column), np.nan)
    if column.type != pa.float64():
        column = pc.cast(column, pa.float64(), safe=False)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column.to_numpy(zero_copy_only=False)


def fill_float64(column: pa.Array | pa.ChunkedArray, out: Any) -> None:
    """Write a numeric column into ``out`` (float64 numpy, as long as the column),
    missing values as NaN, chunk by chunk: one copy, no combined intermediate."""
    import numpy as np

    if pa.types.is_null(column.type):
        out[:] = np.nan
        return
    if column.type != pa.float64():
        column = pc.cast(column, pa.float64(), safe=False)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    at = 0
    for chunk in chunks:
        size = len(chunk)
        # Without nulls a float64 chunk is a zero-copy view; with nulls they become NaN.
        out[at : at + size] = chunk.to_numpy(zero_copy_only=chunk.null_count == 0)
        at += size


def category_counts(column: pa.Array | pa.ChunkedArray) -> tuple[dict[str, int], int]:
    """Counts per category (as text) and the number of missing values."""
    missing = column.null_count
    if pa.types.is_null(column.type):
        return {}, len(column)
    if pa.types.is_dictionary(column.type):
        # Count each chunk's indices, then name them: the same counts as of the
        # decoded values, without decoding a value per row.
        found: dict[str, int] = {}
        for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
            counted = pc.value_counts(chunk.indices)
            labels = chunk.dictionary.take(counted.field("values")).to_pylist()
            for value, count in zip(labels, counted.field("counts").to_pylist()):
                if value is not None:
                    found[category_label(value)] = found.get(category_label(value), 0) + count
        return found, missing
    counted = pc.value_counts(column)
    counts: dict[str, int] = {}
    for value, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
        if value is None:
            continue
        counts[category_label(value)] = counts.get(category_label(value), 0) + count
    return counts, missing


def category_label(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
