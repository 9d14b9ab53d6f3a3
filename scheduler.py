"""The scheduler process and its CLI.

    python scheduler.py run                                   one job per enabled source, on its schedule
    python scheduler.py collect SOURCE                        collect what is new, once
    python scheduler.py backfill SOURCE --from D [--to D]     read an explicit date range
    python scheduler.py status [--json]                       last runs, failures and cursors per source

Exit status is non-zero with a one-line reason on failure.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from datetime import date

import schedule

from tqdm import tqdm

import collectors
from collectors.base import ROLLUP, Context
from config import SCHEDULE_PATTERN, Config, ConfigError
from warehouse import cube, maintenance
from warehouse.dashboards_state import Dashboards
from warehouse.requests_state import BackfillRequests
from warehouse.writer import RunSummary, Writer, one_line

log = logging.getLogger("caskalytics.scheduler")
INBOX_DRAIN_SECONDS = 5
BACKFILL_POLL_SECONDS = 10   # how soon a backfill queued on the dashboard's Sources page starts
INBOX_BATCH = 5000         # inbox rows per lake commit when draining
# The scheduler's work is batch work that can wait a moment; the API answers beacon hits and dashboards on
# the same cores and cannot. At niceness 10 the kernel gives the scheduler about a tenth of the CPU weight
# of the servers when they compete (bench/beacon.py soak: drains and rollups next to 1,000 hits/s).
SCHEDULER_NICENESS = 10


# -- running one source: collect / backfill / rollups, and the inbox drain ----------------------------------
def _progress(total_hint: int | None, desc: str, show: bool):
    return tqdm(total=total_hint, desc=desc, unit="obj", disable=not show, file=sys.stderr, leave=False)


def run_source(writer: Writer, source: str, *, start: date | None = None, end: date | None = None,
               show_progress: bool = False, on_batch=None) -> RunSummary:
    """Collect what is new for `source` (or backfill [start, end]); each batch commits with its cursor.
    `on_batch(summary, batch)`, if given, is called after each commit (backfill requests record progress)."""
    cfg = writer.cfg
    settings = cfg.source(source)
    declared = collectors.SOURCES[source]
    if declared.scheduled == ROLLUP:
        if start:
            raise ConfigError(f"source {source!r} has nothing to backfill: its data arrives through the inbox")
        return update_rollups(writer, source)
    collector = declared.collector()
    kind = "backfill" if start else "collect"
    summary = RunSummary(source, kind)
    run_id = writer.state.start_run(source, kind)
    ctx = Context(config=cfg, settings=settings, lookup=writer.lookup, staging=writer.con)
    try:
        if start:
            batches = collector.backfill(ctx, start, end or start)
        else:
            batches = collector.collect(ctx, writer.cursor(source))
        with _progress(None, f"{source} {kind}", show_progress) as bar:
            for batch in batches:
                result = writer.commit(source, batch)
                summary.add(result)
                writer.state.add_to_run(run_id, result.records, result.inserted, result.duplicates,
                                        result.quarantined)
                if batch.progress:
                    bar.total = batch.progress[1]
                    bar.n = batch.progress[0]
                    bar.set_postfix_str(batch.label[-40:], refresh=True)
                if on_batch is not None:
                    on_batch(summary, batch)
                log.info("%s: batch %d committed (%s): %d records, %d new, %d quarantined", source,
                         result.batch, batch.label, result.records, result.inserted, result.quarantined)
        cube.update(writer.con, cfg)
    except BaseException as exc:
        writer.state.finish_run(run_id, error=one_line(exc))
        raise
    writer.state.finish_run(run_id)
    log.info(summary.line())
    return summary


def update_rollups(writer: Writer, source: str) -> RunSummary:
    """A source with nothing to poll (the beacon): bring its rollups up to date with what the drain landed."""
    summary = RunSummary(source, ROLLUP)
    run_id = writer.state.start_run(source, ROLLUP)
    try:
        cube.update(writer.con, writer.cfg)
    except BaseException as exc:
        writer.state.finish_run(run_id, error=one_line(exc))
        raise
    writer.state.finish_run(run_id)
    return summary


def drain_inbox(writer: Writer) -> RunSummary:
    """Move received deliveries (GitHub webhooks, beacon hits) into the lake: each inbox kind through its
    source's declared `Inbox.to_batch(rows)`, with its own cursor `<kind>.inbox` (the last inbox id drained).
    One kind failing does not hold up the others; the first failure is re-raised after all were tried."""
    summary = RunSummary("inbox", "drain")
    failure = None
    for kind in writer.state.inbox_kinds():
        try:
            drained = _drain_kind(writer, kind)
        except Exception as exc:
            log.error("inbox drain of %s failed: %s", kind, one_line(exc))
            failure = failure or exc
            continue
        summary.merge(drained)
    if failure is not None:
        raise failure
    return summary


def _drain_kind(writer: Writer, kind: str) -> RunSummary:
    summary = RunSummary(kind, "drain")
    declared = collectors.SOURCES.get(kind)
    inbox = declared.inbox if declared else None
    if inbox is None:
        log.warning("inbox rows of kind %r belong to no source with an inbox; left in the inbox", kind)
        return summary
    cursor_source = f"{kind}.inbox"
    cursor = writer.cursor(cursor_source) or {"last_id": 0}
    rows = writer.state.inbox_after(kind, cursor["last_id"], INBOX_BATCH)
    if not rows:
        return summary
    run_id = writer.state.start_run(kind, "drain")
    try:
        while rows:
            batch = inbox.to_batch(rows)
            result = writer.commit(kind, batch, cursor_source=cursor_source)
            summary.add(result)
            writer.state.add_to_run(run_id, result.records, result.inserted, result.duplicates, result.quarantined)
            if len(rows) < INBOX_BATCH:
                break       # caught up: what arrives meanwhile waits for the next drain, in one larger batch
            rows = writer.state.inbox_after(kind, batch.cursor["last_id"], INBOX_BATCH)
        writer.state.prune_inbox(kind, batch.cursor["last_id"], keep_days=inbox.keep_days)
        if inbox.cube_after_drain:      # beacon: its scheduled rollup job updates the cube instead
            cube.update(writer.con, writer.cfg)
    except BaseException as exc:
        writer.state.finish_run(run_id, error=one_line(exc))
        raise
    writer.state.finish_run(run_id)
    log.info(summary.line())
    return summary



def run_backfill_requests(writer: Writer, requests: BackfillRequests) -> None:
    """Run the oldest backfill the dashboard queued (one per call, so other jobs keep their turn), recording
    its progress and outcome on the request."""
    request = requests.claim_next()
    if request is None:
        return
    def progress(summary: RunSummary, batch) -> None:
        done, total = batch.progress or (None, None)
        requests.progress(request["id"], summary.batches, summary.records, summary.inserted, done, total, batch.label)
    try:
        writer.cfg.source(request["source"])
        run_source(writer, request["source"], start=date.fromisoformat(request["start_day"]),
                   end=date.fromisoformat(request["end_day"]), on_batch=progress)
    except Exception as exc:
        requests.finish(request["id"], error=one_line(exc))
        raise
    requests.finish(request["id"])


# -- the scheduler loop ------------------------------------------------------------------------------
def yield_cpu_to_servers() -> None:
    try:
        if (increment := SCHEDULER_NICENESS - os.nice(0)) > 0:
            os.nice(increment)
    except OSError as exc:           # not allowed here: run at normal priority
        log.warning("could not lower the scheduler's CPU priority: %s", exc)


def _on_schedule(spec: str) -> schedule.Job:
    match = SCHEDULE_PATTERN.match(spec)
    if match.group(1):
        every = schedule.every(int(match.group(1)))
        return every.minutes if match.group(2).startswith("minute") else every.hours
    return schedule.every().day.at(f"{match.group(3)}:{match.group(4)}")


def _guarded(what: str, job):
    def run():
        try:
            job()
        except Exception as exc:   # one source failing must not stop the others
            log.error("%s failed: %s", what, one_line(exc))
    return run


def run_forever(cfg: Config) -> None:
    yield_cpu_to_servers()
    writer = Writer(cfg)
    Dashboards(writer.state).seed_demo()    # the ready-made dashboards are there before anyone opens the app
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    for name, settings in cfg.enabled_sources().items():
        job = _guarded(f"{collectors.SOURCES[name].scheduled} {name}", lambda name=name: run_source(writer, name))
        _on_schedule(settings.schedule).do(job)
        log.info("scheduled %s %s", name, settings.schedule)
    schedule.every(INBOX_DRAIN_SECONDS).seconds.do(_guarded("inbox drain", lambda: drain_inbox(writer)))
    schedule.every(1).hours.do(_guarded("lake compaction", lambda: maintenance.compact(writer.con)))
    requests = BackfillRequests(writer.state)
    requests.requeue_interrupted()
    schedule.every(BACKFILL_POLL_SECONDS).seconds.do(
        _guarded("backfill request", lambda: run_backfill_requests(writer, requests)))
    schedule.run_all()   # catch up at start: each source resumes from its cursor
    log.info("scheduler running; Ctrl-C to stop")
    try:
        while not stopping:
            schedule.run_pending()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        writer.close()
        log.info("scheduler stopped")


def status(cfg: Config) -> dict:
    from warehouse.state import State
    from warehouse import lake
    state = State(cfg)
    runs = state.source_status()
    cursors = {}
    try:
        con = lake.connect(cfg, read_only=True)
        cursors = {source: json.loads(cursor) for source, cursor in
                   con.execute("SELECT source, cursor FROM lake.cursors").fetchall()}
        con.close()
    except lake.WarehouseError:
        pass
    sources = {}
    for name in collectors.SOURCES:
        section = cfg.sources.get(name)
        if section is None:
            continue
        info = runs.get(name, {})
        last = info.get("last_run") or {}
        sources[name] = {
            "enabled": section.enabled, "schedule": section.schedule,
            "last_run_at": last.get("finished_at"), "last_status": last.get("status"),
            "last_error": last.get("error"), "last_success_at": info.get("last_success_at"),
            "consecutive_failures": info.get("consecutive_failures", 0),
            "cursor": cursors.get(name),
        }
    return {"warehouse": str(cfg.warehouse_dir), "timezone": cfg.warehouse.timezone, "sources": sources}


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scheduler.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $CASKALYTICS_CONFIG or ./config.toml)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run every enabled source on its schedule")
    collect = commands.add_parser("collect", help="collect what is new for one source")
    collect.add_argument("source")
    backfill = commands.add_parser("backfill", help="read an explicit date range for one source")
    backfill.add_argument("source")
    backfill.add_argument("--from", dest="start", type=_date, required=True)
    backfill.add_argument("--to", dest="end", type=_date)
    show = commands.add_parser("status", help="last runs, failures and cursors per source")
    show.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        cfg = collectors.load_config(args.config)
        if args.command == "run":
            run_forever(cfg)
        elif args.command in ("collect", "backfill"):
            cfg.source(args.source)
            if args.command == "backfill" and args.end and args.end < args.start:
                raise ConfigError(f"--to {args.end} is before --from {args.start}")
            writer = Writer(cfg)
            summary = run_source(writer, args.source, start=getattr(args, "start", None),
                                 end=getattr(args, "end", None), show_progress=sys.stderr.isatty())
            writer.close()
            print(summary.line())
        elif args.command == "status":
            report = status(cfg)
            if args.json:
                print(json.dumps(report, indent=2, default=str))
            else:
                for name, info in report["sources"].items():
                    state = info["last_status"] or "never run"
                    failures = f", {info['consecutive_failures']} failures in a row" if info["consecutive_failures"] else ""
                    print(f"{name:16} {'on ' if info['enabled'] else 'off'} {info['schedule']:18} last: {state}"
                          f" {info['last_run_at'] or ''}{failures}" + (f" ({info['last_error']})" if info["last_error"] else ""))
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
