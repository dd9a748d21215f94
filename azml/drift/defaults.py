"""The drift engine's pinned defaults, importable without numpy or pyarrow
(the ``azml`` command declares its options with them at start-up)."""

#: Rows per chunk; inputs with at most this many rows each take the in-memory path.
#: Streamed, it is also the keys per sorted run and per merged key range (8 bytes each).
DEFAULT_CHUNK_ROWS = 1 << 21
#: Reference-quantile bins of numeric features.
DEFAULT_BINS = 10
#: A feature drifts when its PSI is above this.
DEFAULT_THRESHOLD = 0.2
#: Share used in place of an empty bin's 0 (in either sample) before the log.
EPSILON = 1e-4
