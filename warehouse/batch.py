"""What a collector hands the writer: a `Batch` of records for lake tables, the cursor after them, and the
input it rejected. The writer (`warehouse.writer`) commits all three in one lake transaction, so a crash
leaves both or neither."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class Rejected:
    """Input we could not use: stored in the quarantine table with the reason, counted in the run log."""
    reason: str
    record: str
    origin: str = ""      # where it came from: a log object key, a delivery id, a URL


def quarantine_text(item: Any) -> str:
    """A payload item as the `record` text of a quarantine row (JSON when it can be, at most 100,000 characters)."""
    try:
        return json.dumps(item, ensure_ascii=False, default=str)[:100_000]
    except (TypeError, ValueError):
        return repr(item)[:100_000]


@dataclass(frozen=True)
class StagedTable:
    """Rows already in a temp table of the writer's DuckDB connection (large inputs skip Python)."""
    name: str


Records = pa.Table | list[dict[str, Any]] | StagedTable


@dataclass
class Batch:
    records: dict[str, Records]                            # lake table name -> rows
    cursor: dict[str, Any] | None = None                   # None: leave the saved cursor as it is
    rejected: list[Rejected] = field(default_factory=list)
    progress: tuple[int, int] | None = None                # (done, total) in the collector's own unit
    label: str = ""                                        # what this chunk covered, for the progress line
    skipped: int = 0          # items found already read and not read again (in the source's progress unit)
