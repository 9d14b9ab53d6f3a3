"""Helpers shared by tests: S3 access-log lines in the real AWS format."""
from __future__ import annotations

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"


def log_line(when: str, request_id: str, operation="REST.GET.OBJECT", key="cdap-sdk/6.9.0/cdap-sdk-6.9.0.zip",
             status=200, ip="198.51.100.7", agent="curl/8.4.0", bucket="downloads") -> str:
    """One current-format (27-field) S3 server access log record; `when` as dd/Mon/yyyy:HH:MM:SS (UTC)."""
    return (f'{OWNER} {bucket} [{when} +0000] {ip} - {request_id} {operation} {key} "GET /{bucket}/{key} HTTP/1.1" '
            f'{status} - 1000 1000 12 3 "-" "{agent}" - hostid= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader '
            f'{bucket}.s3.amazonaws.com TLSv1.2 - - us-east-1\n')


def put_logs(client, bucket: str, key: str, records: list[tuple[str, str, str, int]]) -> None:
    """Write one log object of (time, request id, version, status) download records."""
    body = "".join(log_line(when, rid, key=f"cdap-sdk/{version}/cdap-sdk-{version}.zip", status=status)
                   for when, rid, version, status in records)
    client.put_object(Bucket=bucket, Key=key, Body=body.encode())


def record_run(state, source: str, kind: str = "collect", error: str | None = None, records: int = 0) -> None:
    """One run in the state database's run log, through `State.run` as the scheduler records it: ok, or failed
    with `error` as its one line (a ConfigError's line is kept verbatim)."""
    from types import SimpleNamespace

    from config import ConfigError
    try:
        with state.run(source, kind) as run:
            if records:
                run.add(SimpleNamespace(records=records, inserted=records, duplicates=0, quarantined=0))
            if error:
                raise ConfigError(error)
    except ConfigError:
        pass


def start_spawned(ctx, target, *args, daemon: bool = True):
    """Start `target(*args)` in a spawned process (a fresh interpreter, as the scheduler, the API and the
    dashboard are). A spawned child re-runs the parent's __main__ file; after the dashboard tests Streamlit's
    AppTest has left app.py there, so its file is hidden while the child starts (the children need nothing
    from __main__)."""
    import sys
    process = ctx.Process(target=target, args=args, daemon=daemon)
    main = sys.modules["__main__"]
    saved = main.__dict__.pop("__file__", None)
    try:
        process.start()
    finally:
        if saved is not None:
            main.__file__ = saved
    return process
