"""Demo S3 server access logs: realistic download traffic written as log objects into an S3-compatible
server (moto in the demo), in the real AWS format, so the real collector reads them with boto3.

History: one log object per day for `--days` days (AWS delivers many small objects; a day each keeps the
demo quick to seed), then, with `--live`, one object every `--every` seconds with today's traffic so far. The traffic has
weekly seasonality (quiet weekends), growth, a download spike after each release that decays, range
requests (206) from download managers, HEAD probes, 304s and 404s, and an outage: three days whose logs
AWS delivers late, under keys that sort before ones already read (the collector's re-list window and
ledger catch them).

    python -m simulators.s3_access_logs --endpoint http://127.0.0.1:5055 --bucket demo-download-logs [--live]
"""
from __future__ import annotations

import argparse
import math
import random
import time
from datetime import date, datetime, timedelta, timezone

import boto3

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
ARTIFACTS = {"cdap-sdk": ".zip", "cdap-sandbox": ".zip", "cdap-distributed": ".tar.gz"}
USER_AGENTS = ["curl/8.4.0", "Wget/1.21.4",
               "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
               "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
               "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22"]


def releases(today: date) -> list[tuple[str, date]]:
    """A release roughly every quarter, the newest a few weeks ago."""
    versions = ["6.6.0", "6.7.0", "6.7.1", "6.8.0", "6.9.0", "6.10.0"]
    first = today - timedelta(days=560)
    return [(v, first + timedelta(days=int(i * 105))) for i, v in enumerate(versions)]


def daily_downloads(day: date, version: str, released: date, today: date) -> float:
    if day < released:
        return 0.0
    age = (day - released).days
    growth = 1.0 + (day - (today - timedelta(days=560))).days / 400     # the product is growing
    launch = 6.0 * math.exp(-age / 9)                                  # release spike, decaying
    tail = 1.0 * math.exp(-age / 240)                                  # long tail
    weekday = 1.0 if day.weekday() < 5 else 0.45                       # quiet weekends
    return 40 * growth * (launch + tail) * weekday


def _line(rng: random.Random, when: datetime, bucket: str, operation: str, key: str, status: int,
          ip: str, agent: str, size: int) -> str:
    sent = "-" if status == 304 else (str(size) if status == 200 else str(size // 4) if status == 206 else "243")
    error = {403: "AccessDenied", 404: "NoSuchKey"}.get(status, "-")
    request_id = "".join(rng.choice("0123456789ABCDEF") for _ in range(16))
    method = "HEAD" if "HEAD" in operation else "GET"
    return (f'{OWNER} {bucket} [{when:%d/%b/%Y:%H:%M:%S} +0000] {ip} - {request_id} {operation} {key} '
            f'"{method} /{bucket}/{key} HTTP/1.1" {status} {error} {sent} {size} {rng.randint(20, 900)} '
            f'{rng.randint(5, 60)} "https://cdap.io/get-started/" "{agent}" - '
            f'{request_id}hostid= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader {bucket}.s3.amazonaws.com '
            f'TLSv1.2 - - us-east-1\n')


def day_lines(day: date, today: date, bucket: str, hours: range = range(24)) -> str:
    rng = random.Random(day.toordinal())
    lines = []
    for version, released in releases(today):
        for artifact, ext in ARTIFACTS.items():
            share = {"cdap-sdk": 0.6, "cdap-sandbox": 0.3, "cdap-distributed": 0.1}[artifact]
            expected = daily_downloads(day, version, released, today) * share * len(hours) / 24
            key = f"{artifact}/{version}/{artifact}-{version}{ext}"
            size = 800_000_000 if artifact == "cdap-distributed" else 350_000_000
            for _ in range(int(expected) + (rng.random() < expected % 1)):
                when = datetime.combine(day, datetime.min.time()) + timedelta(
                    hours=rng.choice(hours), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
                ip = f"{rng.randint(11, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                agent = rng.choice(USER_AGENTS)
                roll = rng.random()
                if roll < 0.12:     # a download manager: several range requests, one download
                    for part in range(rng.randint(2, 5)):
                        lines.append(_line(rng, when + timedelta(seconds=part * 7), bucket, "REST.GET.OBJECT",
                                           key, 206, ip, agent, size))
                    continue
                if roll < 0.17:
                    lines.append(_line(rng, when, bucket, "REST.HEAD.OBJECT", key, 200, ip, agent, size))
                if roll < 0.20:
                    lines.append(_line(rng, when, bucket, "REST.GET.OBJECT", key, 304, ip, agent, size))
                    continue
                lines.append(_line(rng, when, bucket, "REST.GET.OBJECT", key, 200, ip, agent, size))
    for _ in range(rng.randint(2, 6)):   # broken links
        when = datetime.combine(day, datetime.min.time()) + timedelta(hours=rng.choice(hours), minutes=rng.randint(0, 59))
        lines.append(_line(rng, when, bucket, "REST.GET.OBJECT", "cdap-sdk/latest/cdap-sdk.zip", 404,
                           "203.0.113.9", USER_AGENTS[0], 0))
    lines.sort(key=lambda l: l.split("[", 1)[1][:20])
    return "".join(lines)


def log_key(prefix: str, delivered: datetime, unique: str) -> str:
    return f"{prefix}{delivered:%Y-%m-%d-%H-%M-%S}-{unique}"


def seed_history(client, bucket: str, prefix: str, days: int, today: date) -> int:
    """Write `days` of daily log objects ending yesterday; returns the number of objects written."""
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    outage = {today - timedelta(days=d) for d in (40, 41, 42)}
    written = 0
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        delivered = datetime.combine(day + timedelta(days=1), datetime.min.time()) + timedelta(minutes=7)
        if day in outage:
            # Delivered late: the object for this day appears only after later days were read, under a
            # key that sorts among them.
            delivered = datetime.combine(max(outage) + timedelta(days=1), datetime.min.time()) + timedelta(minutes=5)
        client.put_object(Bucket=bucket, Key=log_key(prefix, delivered, f"{day:%Y%m%d}HIST"),
                          Body=day_lines(day, today, bucket).encode())
        written += 1
    return written


def _line_time(line: str) -> datetime:
    return datetime.strptime(line.split("[", 1)[1][:20], "%d/%b/%Y:%H:%M:%S")


def run_live(client, bucket: str, prefix: str, every: float) -> None:
    """The present: every `every` seconds, one object with today's traffic since the previous object."""
    last = datetime.combine(datetime.now(timezone.utc).date(), datetime.min.time())
    while True:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        lines = [line for day in sorted({last.date(), now.date()})
                 for line in day_lines(day, now.date(), bucket).splitlines(True) if last <= _line_time(line) < now]
        if lines:
            client.put_object(Bucket=bucket, Key=log_key(prefix, now, f"{now:%H%M%S%f}LIVE"),
                              Body="".join(lines).encode())
        last = now
        time.sleep(every)


def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    s3 = cfg.sources.s3_access_logs
    return ["--endpoint", s3.endpoint_url, "--bucket", s3.bucket, "--prefix", s3.prefix, "--live"], None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="logs/")
    parser.add_argument("--days", type=int, default=430)
    parser.add_argument("--live", action="store_true", help="keep writing new log objects")
    parser.add_argument("--every", type=float, default=60.0)
    args = parser.parse_args()
    client = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1",
                          aws_access_key_id="demo", aws_secret_access_key="demo")
    today = datetime.now(timezone.utc).date()
    started = time.time()
    count = seed_history(client, args.bucket, args.prefix, args.days, today)
    print(f"s3 simulator: {count} daily log objects in s3://{args.bucket}/{args.prefix} "
          f"({time.time() - started:.1f}s)", flush=True)
    if args.live:
        run_live(client, args.bucket, args.prefix, args.every)


if __name__ == "__main__":
    main()
