"""Replication: Litestream streams the two SQLite files (lake catalog, state) to a replica folder or bucket.
Parquet data files are not SQLite: with a local data path they stay on this machine (docs/architecture.md, "Storage")."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from config import Config

BIN = Path(sys.executable).parent


def litestream_config(cfg: Config, path: Path) -> Path | None:
    """Replicate the two SQLite files (lake catalog, state) to the replica folder or bucket."""
    binary = shutil.which("litestream", path=str(BIN)) or shutil.which("litestream")
    if not cfg.replication.enabled or not binary:
        return None
    replica = cfg.replication.replica_url or str(cfg.warehouse_dir / "replica")
    lines = ["dbs:"]
    for db in ("lake.sqlite", "state.sqlite"):
        lines.append(f"  - path: {cfg.warehouse_dir / db}")
        if replica.startswith("s3://"):
            lines += ["    replica:", f"      url: {replica.rstrip('/')}/{db}"]
            if cfg.replication.endpoint_url:
                lines += [f"      endpoint: {cfg.replication.endpoint_url}", "      force-path-style: true"]
        else:
            lines += ["    replica:", "      type: file", f"      path: {Path(replica) / db}"]
    path.write_text("\n".join(lines) + "\n")
    return path
