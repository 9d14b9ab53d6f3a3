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
from contextlib import closing, nullcontext
from datetime import date, datetime, timedelta, timezone

import schedule
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

import collectors
from alerts.jobs import AlertJobs
from collectors.base import ROLLUP, Context
from config import SCHEDULE_PATTERN, Config, ConfigError
from warehouse import cube, maintenance, stopping
from warehouse.dashboards_state import Dashboards
from warehouse.state import State, one_line
from warehouse.requests_state import BackfillRequests
from warehouse.writer import RunSummary, Writer, saved_cursors

log = logging.getLogger("caskalytics.scheduler")
INBOX_DRAIN_SECONDS = 5
BACKFILL_POLL_SECONDS = 10   # how soon a backfill queued on the dashboard's Sources page starts
INBOX_BATCH = 5000         # inbox rows per lake commit when draining
# The scheduler's work is batch work that can wait a moment; the API answers beacon hits and dashboards on
# the same cores and cannot. At niceness 10 the kernel gives the scheduler about a tenth of the CPU weight
# of the servers when they compete (bench/beacon.py soak: drains and rollups next to 1,000 hits/s).
SCHEDULER_NICENESS = 10
# A failed source is tried again after 30 s, then 1 min, 2 min, ... (never later than its own next slot),
# so a blip at a source's API costs seconds of freshness, not a whole schedule interval.
FIRST_RETRY_SECONDS = 30
CURSOR_WIDTH = 60          # `status` shows each cursor's JSON cut to this many characters


# -- running one source: collect / backfill / rollups, and the inbox drain ----------------------------------
def run_source(writer: Writer, source: str, *, start: date | None = None, end: date | None = None,
               show_progress: bool = False, on_batch=None) -> RunSummary:
    """Collect what is new for `source` (or backfill [start, end]); each batch commits with its cursor. A stop
    request (`warehouse.stopping`) ends the run between two batches, logged as interrupted. `on_batch(summary,
    batch)`, if given, is called after each batch (backfill requests record their progress)."""
    cfg = writer.cfg
    settings = cfg.source(source)
    declared = collectors.SOURCES[source]
    if declared.scheduled == ROLLUP:
        if start:
            raise ConfigError(f"source {source!r} has nothing to backfill: its data arrives through the inbox")
        return update_rollups(writer, source)
    stopping.check()
    collector = declared.collector()
    kind = "backfill" if start else "collect"
    summary = RunSummary(source, kind, unit=declared.progress_unit)
    ctx = Context(config=cfg, settings=settings, lookup=writer.lookup, staging=writer.con)
    with writer.state.run(source, kind) as run, _progress(f"{source} {kind}", show_progress) as bar:
        batches = collector.backfill(ctx, start, end or start) if start else collector.collect(ctx, writer.cursor(source))
        # Log lines go above the progress bar, not into its line; a collector's generator is closed (its downloads
        # and temp files cleaned up) at once when the run stops early, not whenever it is garbage-collected.
        with logging_redirect_tqdm() if show_progress else nullcontext(), \
                closing(batches) if hasattr(batches, "close") else nullcontext():
            for batch in batches:
                summary.skipped += batch.skipped
                if batch.records or batch.rejected or batch.cursor is not None:
                    result = writer.commit(source, batch)
                    summary.add(result)
                    run.add(result)
                    log.info("%s: batch %d committed (%s): %d records, %d new, %d quarantined", source,
                             result.batch, batch.label, result.records, result.inserted, result.quarantined)
                _advance(bar, batch, declared.progress_unit)
                if on_batch is not None:
                    on_batch(summary, batch)
                stopping.check()      # between batches: a stop waits for one batch, not for the whole catch-up
        cube.update(writer.con, cfg)
    return summary


def _progress(desc: str, show: bool) -> tqdm:
    return tqdm(total=None, desc=desc, unit=" batches", disable=not show, file=sys.stderr, leave=False)


def _advance(bar: tqdm, batch, unit: str) -> None:
    if not batch.progress:
        bar.update(1)
        return
    bar.unit = f" {unit}"
    bar.total, bar.n = batch.progress[1], batch.progress[0]
    bar.set_postfix_str(batch.label[-40:], refresh=True)


def update_rollups(writer: Writer, source: str) -> RunSummary:
    """A source with nothing to poll (the beacon): bring its rollups up to date with what the drain landed."""
    stopping.check()
    with writer.state.run(source, ROLLUP):
        cube.update(writer.con, writer.cfg)
    return RunSummary(source, ROLLUP)


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
    stopping.check()
    with writer.state.run(kind, "drain") as run:
        while rows:
            batch = inbox.to_batch(rows)
            result = writer.commit(kind, batch, cursor_source=cursor_source)
            summary.add(result)
            run.add(result)
            if len(rows) < INBOX_BATCH:
                break       # caught up: what arrives meanwhile waits for the next drain, in one larger batch
            stopping.check()
            rows = writer.state.inbox_after(kind, batch.cursor["last_id"], INBOX_BATCH)
        writer.state.prune_inbox(kind, batch.cursor["last_id"], keep_days=inbox.keep_days)
        if inbox.cube_after_drain:      # beacon: its scheduled rollup job updates the cube instead
            cube.update(writer.con, writer.cfg)
    log.info(summary.line())
    return summary


# -- the scheduler loop ------------------------------------------------------------------------------
def yield_cpu_to_servers() -> None:
    try:
        if (increment := SCHEDULER_NICENESS - os.nice(0)) > 0:
            os.nice(increment)
    except OSError as exc:           # not allowed here: run at normal priority
        log.warning("could not lower the scheduler's CPU priority: %s", exc)


def _on_schedule(jobs: schedule.Scheduler, spec: str) -> schedule.Job:
    match = SCHEDULE_PATTERN.match(spec)
    if match.group(1):
        every = jobs.every(int(match.group(1)))
        return every.minutes if match.group(2).startswith("minute") else every.hours
    return jobs.every().day.at(f"{match.group(3)}:{match.group(4)}")


def interval_seconds(spec: str) -> int:
    """The time between two runs of a schedule (a day for `daily at HH:MM`)."""
    match = SCHEDULE_PATTERN.match(spec)
    if not match.group(1):
        return 86400
    return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 3600)


def retry_delay(failures: int, interval: float) -> float:
    """Seconds before retrying a source that failed `failures` times in a row: 30 s, 1 min, 2 min, 4 min ...,
    capped at the source's own interval."""
    return min(interval, FIRST_RETRY_SECONDS * 2 ** min(max(failures - 1, 0), 20))


class SourceJob:
    """One source's runs: on its schedule, and after a failed run again with back-off (`retry_delay`) until
    one succeeds. The retry time is kept in the state database for `status` and the API's `/health`."""

    def __init__(self, writer: Writer, name: str, interval: float):
        self.writer, self.name, self.interval = writer, name, interval
        self.retry_at: float | None = None       # monotonic clock

    def run(self) -> None:
        self.retry_at = None
        try:
            summary = run_source(self.writer, self.name)
        except Exception as exc:     # one source failing must not stop the others (a stop request is no Exception)
            if stopping.requested():  # e.g. a simulator stopped along with us: not the source's failure
                raise stopping.Interrupted() from exc
            failures = self.writer.state.source_status().get(self.name, {}).get("consecutive_failures", 1)
            delay = retry_delay(failures, self.interval)
            self.retry_at = time.monotonic() + delay
            at = datetime.now(timezone.utc) + timedelta(seconds=delay)
            self.writer.state.set_retry(self.name, at)
            log.error("%s failed: %s; retrying at %s", self.name, one_line(exc), at.astimezone().strftime("%H:%M:%S"))
        else:
            log.info(summary.line())

    def retry_if_due(self) -> None:
        if self.retry_at is not None and time.monotonic() >= self.retry_at:
            self.run()


def _guarded(what: str, job):
    def run():
        try:
            job()
        except Exception as exc:   # one job failing must not stop the others
            if stopping.requested():
                raise stopping.Interrupted() from exc
            log.error("%s failed: %s", what, one_line(exc))
    return run


def stop_on_signals() -> None:
    """SIGTERM (`make run` stopping, service managers) and SIGINT (Ctrl-C) ask for a stop between batches."""
    def handler(signum, _frame):
        if not stopping.requested():
            log.info("%s received: stopping after the current batch", signal.Signals(signum).name)
        stopping.request_stop()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_forever(cfg: Config) -> None:
    yield_cpu_to_servers()
    stop_on_signals()
    writer = Writer(cfg)
    alert_jobs = AlertJobs(cfg, writer.state)     # alert rules, failure alerts and digests; the outbox
    Dashboards(writer.state).seed_demo()    # the ready-made dashboards are there before anyone opens the app
    try:
        if leftover := writer.state.interrupt_leftover_runs():
            log.info("%d run(s) left running by a stopped process marked interrupted", leftover)
        jobs = schedule.Scheduler()
        sources = []
        for name, settings in cfg.enabled_sources().items():
            sources.append(SourceJob(writer, name, interval_seconds(settings.schedule)))
            _on_schedule(jobs, settings.schedule).do(sources[-1].run)
            log.info("scheduled %s %s", name, settings.schedule)
        jobs.every(INBOX_DRAIN_SECONDS).seconds.do(_guarded("inbox drain", lambda: drain_inbox(writer)))
        jobs.every(1).hours.do(_guarded("lake compaction", lambda: maintenance.compact(writer.con)))
        requests = BackfillRequests(writer.state)      # queued from the dashboard's Sources page
        requests.requeue_interrupted()
        jobs.every(BACKFILL_POLL_SECONDS).seconds.do(
            _guarded("backfill request", lambda: run_backfill_requests(writer, requests)))
        jobs.every(1).minutes.do(_guarded("alert evaluation", alert_jobs.evaluate))
        jobs.every(1).minutes.do(_guarded("outbox delivery", alert_jobs.deliver))
        log.info("scheduler running; Ctrl-C to stop")
        jobs.run_all()   # catch up at start: each source resumes from its cursor
        while True:
            jobs.run_pending()
            for source in sources:
                source.retry_if_due()
            stopping.sleep(0.5)
    except stopping.Interrupted:
        pass
    finally:
        alert_jobs.close()
        writer.close()
        log.info("scheduler stopped")


def status(cfg: Config) -> dict:
    runs = State(cfg).source_status()
    cursors = saved_cursors(cfg)
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
            "next_retry_at": info.get("next_retry_at"),
            "cursor": cursors.get(name),
        }
    return {"warehouse": str(cfg.warehouse_dir), "timezone": cfg.warehouse.timezone, "sources": sources}


def status_lines(report: dict) -> list[str]:
    """`status` for a person: one line per source, and its cursor (compact, cut short) below it."""
    lines = []
    for name, info in report["sources"].items():
        line = (f"{name:16} {'on ' if info['enabled'] else 'off'} {info['schedule']:18} "
                f"last: {info['last_status'] or 'never run'} {info['last_run_at'] or ''}".rstrip())
        if info["consecutive_failures"]:
            line += f", {info['consecutive_failures']} failures in a row"
        if info["next_retry_at"]:
            line += f", retrying at {datetime.fromisoformat(info['next_retry_at']).astimezone():%H:%M:%S}"
        if info["last_error"]:
            line += f" ({info['last_error']})"
        lines.append(line)
        if info["cursor"] is not None:
            cursor = json.dumps(info["cursor"], separators=(",", ":"), default=str)
            lines.append(f"{'':17}cursor {cursor if len(cursor) <= CURSOR_WIDTH else cursor[:CURSOR_WIDTH - 1] + '…'}")
    return lines


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
            signal.signal(signal.SIGTERM, lambda *_: stopping.request_stop())     # Ctrl-C stays immediate
            writer = Writer(cfg)
            try:
                summary = run_source(writer, args.source, start=getattr(args, "start", None),
                                     end=getattr(args, "end", None), show_progress=sys.stderr.isatty())
            finally:
                writer.close()
            print(summary.line())
        elif args.command == "status":
            report = status(cfg)
            print(json.dumps(report, indent=2, default=str) if args.json else "\n".join(status_lines(report)))
        return 0
    except (KeyboardInterrupt, stopping.Interrupted):
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
