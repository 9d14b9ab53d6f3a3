"""Deterministic S3 server access log lines for benchmarks: same seed and size, same bytes.

The traffic looks like a public download bucket: mostly anonymous REST.GET.OBJECT 200s on versioned artifact
keys (`cdap-sdk/6.2.0/cdap-sdk-6.2.0.zip`), bursts of 206 range requests from one client (same ip and user
agent), HEAD probes (alone or before a GET), 304s, 403/404 errors, bucket listings and the release bot's
REST.PUT.OBJECTs. Lines are in the current 27-field layout, except ~0.5% in the older 18-field one (ending
after version_id). Time runs over ~60 days with a daily and weekly rhythm.

Output: one file (for GoAccess), log objects named the way S3 delivers them
(`<dir>/logs/YYYY-mm-DD-HH-MM-SS-UNIQUE`, a few MB each), or both; concatenating the objects in key order
gives the file byte for byte.

    python bench/generate_s3_logs.py --lines 1000000 --file bench/out/s3.log --objects bench/out/s3_objects
"""
from __future__ import annotations

import argparse
import base64
import calendar
import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

BUCKET = "cask-downloads"
OWNER = "3f1c9b7e2a5d4c8f9e0b1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"   # canonical user id, 64 hex
RELEASE_BOT = "arn:aws:iam::486231977520:user/cask-release-bot"
START = datetime(2020, 7, 1, tzinfo=timezone.utc)
SPAN_DAYS = 60
OLD_LAYOUT_SHARE = 0.005
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# artifact -> (file name pattern, approximate size in bytes, download weight, versions newest first)
ARTIFACTS = {
    "cdap-sdk": ("{a}-{v}.zip", 420_000_000, 50, ["6.2.2", "6.2.1", "6.2.0", "6.1.4", "6.1.3", "6.0.0", "5.1.2"]),
    "cdap-sandbox": ("{a}-{v}.zip", 610_000_000, 20, ["6.2.2", "6.2.0", "6.1.4", "6.0.0"]),
    "cdap-distributed": ("{a}-{v}.tar.gz", 880_000_000, 8, ["6.2.2", "6.2.0", "6.1.4"]),
    "cdap-ambari-service": ("{a}-{v}.noarch.rpm", 41_000, 4, ["6.2.0", "6.1.4"]),
    "coopr-standalone-vm": ("{a}-{v}.ova", 1_450_000_000, 3, ["0.9.9", "0.9.8"]),
    "tigon-sdk": ("{a}-{v}.zip", 96_000_000, 2, ["0.2.1", "0.2.0"]),
    "hydrator-plugins": ("core-plugins-{v}.jar", 5_300_000, 6, ["2.4.0", "2.3.5", "2.2.3"]),
}
MISSING_KEYS = ["cdap-sdk/latest/cdap-sdk.zip", "cdap-sdk/6.2.3/cdap-sdk-6.2.3.zip", "favicon.ico", "robots.txt",
                "cdap-sandbox/6.2.1/cdap-sandbox-6.2.1.zip", "cdap-sdk/6.2.0/cdap-sdk-6.2.0.zip.sha256"]
PRIVATE_KEYS = ["internal/nightly/cdap-sdk-6.3.0-SNAPSHOT.zip", "internal/keys/release-signing.asc",
                "enterprise/cdap-enterprise-6.2.0.tar.gz"]
USER_AGENTS = [  # (user agent, weight)
    ("curl/7.68.0", 14), ("curl/7.64.1", 6), ("Wget/1.20.3 (linux-gnu)", 10), ("Wget/1.19.4 (linux-gnu)", 4),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/85.0.4183.121 "
     "Safari/537.36", 16),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.2 "
     "Safari/605.1.15", 8),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:80.0) Gecko/20100101 Firefox/80.0", 6),
    ("aws-cli/2.0.40 Python/3.7.3 Linux/5.4.0-1024-aws exe/x86_64.ubuntu.20 command/s3.cp", 5),
    ("aws-sdk-java/1.11.852 Linux/4.14.193-149.317.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.262-b10 java/1.8.0_262 "
     "vendor/Oracle_Corporation", 3),
    ("Apache-Maven/3.6.3 (Java 11.0.8; Linux 5.4.0-45-generic)", 5), ("Go-http-client/1.1", 3),
    ("python-requests/2.24.0", 4), ("Homebrew/2.5.1 (Macintosh; Intel Mac OS X 10.15.6) curl/7.64.1", 2),
    ("Free Download Manager 6.11", 2), ("Debian APT-HTTP/1.3 (1.6.12ubuntu0.1)", 2),
]
REFERERS = ["https://cdap.io/get-started/", "https://cdap.io/download/", "https://docs.cdap.io/cdap/6.2.0/en/",
            "https://github.com/cdapio/cdap/releases", "https://www.google.com/"]
CIPHERS = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "TLS_AES_128_GCM_SHA256"]
# Reserved, private and multicast first octets that never appear as client addresses.
NOT_PUBLIC = {0, 10, 100, 127, 169, 172, 192, 198, 203, 224} | set(range(225, 256))
# (session kind, weight): one session is one client action and writes one or more lines.
SESSIONS = [("get", 700), ("range", 25), ("head_get", 50), ("head", 30), ("not_modified", 40), ("forbidden", 20),
            ("missing", 30), ("list", 10), ("put", 2)]
LINES_PER_SESSION = {"range": 4.5, "head_get": 2.0}     # the rest write one line


@dataclass
class Summary:
    lines: int
    bytes: int
    objects: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Client:
    ip: str
    agent: str
    referer: str
    https: bool
    path_style: bool
    bytes_per_ms: int


class Traffic:
    """One random stream (seeded) of sessions, each rendered as complete log lines."""

    def __init__(self, seed: int, lines: int):
        self.rng = random.Random(seed)
        rng = self.rng
        self.keys = [(f"{a}/{v}/" + pattern.format(a=a, v=v), int(size * rng.uniform(0.97, 1.03)), weight / (1 + i))
                     for a, (pattern, size, weight, versions) in ARTIFACTS.items() for i, v in enumerate(versions)]
        self.key_weights = [w for _, _, w in self.keys]
        agents, agent_weights = zip(*USER_AGENTS)
        self.clients = [Client(self._ip(), rng.choices(agents, agent_weights)[0],
                               rng.choice(REFERERS) if rng.random() < 0.25 else "-", rng.random() < 0.9,
                               rng.random() < 0.3, rng.choice([200, 1_000, 5_000, 12_000, 40_000]))
                        for _ in range(max(50, min(60_000, lines // 20)))]
        self.kinds, self.kind_weights = zip(*SESSIONS)
        mean_lines = sum(w * LINES_PER_SESSION.get(k, 1.0) for k, w in SESSIONS) / sum(w for _, w in SESSIONS)
        self.mean_gap = SPAN_DAYS * 86_400 / (lines / mean_lines)      # seconds between sessions, on average
        self.now = calendar.timegm(START.timetuple())
        self._time_cache = (-1, "")

    def _ip(self) -> str:
        rng = self.rng
        if rng.random() < 0.03:
            return "2600:1f18:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}".format(*(rng.getrandbits(16) for _ in range(6)))
        first = rng.randint(1, 223)
        while first in NOT_PUBLIC:
            first = rng.randint(1, 223)
        return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _client(self) -> Client:
        # Skewed: a few mirrors and CI machines download far more often than everyone else.
        return self.clients[int(len(self.clients) * self.rng.random() ** 2.5)]

    def _advance(self) -> None:
        """Move the clock to the next session: busier on weekday afternoons (UTC), quieter at night."""
        hour = (self.now // 3600) % 24
        weekday = (self.now // 86_400 + 3) % 7           # 1970-01-01 was a Thursday (3)
        rate = (1 + 0.6 * math.cos(2 * math.pi * (hour - 15) / 24)) * (0.65 if weekday >= 5 else 1.0) / 0.9
        self.now += self.rng.expovariate(rate / self.mean_gap)

    def _time(self, at: float) -> str:
        second = int(at)
        if self._time_cache[0] != second:
            t = time.gmtime(second)
            self._time_cache = (second, f"[{t.tm_mday:02d}/{MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                                        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]")
        return self._time_cache[1]

    def _line(self, at: float, client: Client, operation: str, key: str, status: int, error: str, sent: int | None,
              size: int | None, millis: int, requester: str = "-", query: str = "") -> str:
        rng = self.rng
        method = operation.split(".")[1]
        path = ("/" + BUCKET if client.path_style else "") + ("/" + key if key != "-" else "/") + query
        request_id = f"{rng.getrandbits(64):016X}"
        head = (f'{OWNER} {BUCKET} {self._time(at)} {client.ip} {requester} {request_id} {operation} {key} '
                f'"{method} {path} HTTP/1.1" {status} {error} {"-" if sent is None else sent} '
                f'{"-" if size is None else size} {millis} {min(millis, rng.randint(3, 70))} '
                f'"{client.referer}" "{client.agent}" -')
        if rng.random() < OLD_LAYOUT_SHARE:
            return head + "\n"
        host_id = base64.b64encode(rng.randbytes(56)).decode()
        signed = requester != "-"
        host = "s3.amazonaws.com" if client.path_style else f"{BUCKET}.s3.amazonaws.com"
        tls = (rng.choice(CIPHERS), "TLSv1.2") if client.https else ("-", "-")
        return (f'{head} {host_id} {"SigV4" if signed else "-"} {tls[0]} {"AuthHeader" if signed else "-"} '
                f'{host} {tls[1]} - {"Yes" if signed else "-"} -\n')

    def session(self) -> list[str]:
        """The next client action as log lines (usually one)."""
        rng = self.rng
        self._advance()
        at, client = self.now, self._client()
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        key, size, _ = rng.choices(self.keys, self.key_weights)[0]
        transfer = size // client.bytes_per_ms + rng.randint(5, 60)
        if kind == "get":
            return [self._line(at, client, "REST.GET.OBJECT", key, 200, "-", size, size, transfer)]
        if kind == "head_get":
            return [self._line(at, client, "REST.HEAD.OBJECT", key, 200, "-", None, size, rng.randint(4, 30)),
                    self._line(at + rng.uniform(0.1, 2), client, "REST.GET.OBJECT", key, 200, "-", size, size, transfer)]
        if kind == "head":
            return [self._line(at, client, "REST.HEAD.OBJECT", key, 200, "-", None, size, rng.randint(4, 30))]
        if kind == "not_modified":
            return [self._line(at, client, "REST.GET.OBJECT", key, 304, "-", None, size, rng.randint(4, 25))]
        if kind == "range":
            # A download manager: parallel or resumed range requests, one download.
            lines, offset, part = [], 0, rng.choice([1 << 20, 1 << 22, 1 << 23, 1 << 24])
            for _ in range(rng.randint(2, 7)):
                sent = min(part, size - offset)
                if sent <= 0:
                    break
                lines.append(self._line(at, client, "REST.GET.OBJECT", key, 206, "-", sent, size,
                                        sent // client.bytes_per_ms + rng.randint(5, 40)))
                offset += sent
                at += rng.uniform(0.0, 3.0)
            return lines
        if kind == "forbidden":
            return [self._line(at, client, "REST.GET.OBJECT", rng.choice(PRIVATE_KEYS), 403, "AccessDenied", 243,
                               None, rng.randint(1, 9))]
        if kind == "missing":
            return [self._line(at, client, "REST.GET.OBJECT", rng.choice(MISSING_KEYS), 404, "NoSuchKey",
                               rng.randint(290, 420), None, rng.randint(1, 12))]
        if kind == "list":
            prefix = key.split("/", 1)[0]
            return [self._line(at, client, "REST.GET.BUCKET", "-", 200, "-", rng.randint(900, 9000), None,
                               rng.randint(10, 90), query=f"?list-type=2&prefix={prefix}%2F&delimiter=%2F")]
        # kind == "put": the release bot uploads an artifact (the body goes in, nothing comes back).
        return [self._line(at, client, "REST.PUT.OBJECT", key, 200, "-", None, size, size // 20_000 + 200,
                           requester=RELEASE_BOT)]


class LogObjects:
    """Cuts the stream into log objects of about `object_bytes`, keyed by a delivery time shortly after the
    last record, as S3 does: `logs/YYYY-mm-DD-HH-MM-SS-UNIQUE`."""

    def __init__(self, folder: Path, object_bytes: int, rng: random.Random):
        self.folder = folder / "logs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.object_bytes = object_bytes
        self.rng = rng
        self.buffer: list[str] = []
        self.size = 0
        self.count = 0
        self.last_delivery = 0

    def add(self, lines: list[str], at: float) -> None:
        self.buffer.extend(lines)
        self.size += sum(len(line) for line in lines)
        if self.size >= self.object_bytes:
            self.flush(at)

    def flush(self, at: float) -> None:
        if not self.buffer:
            return
        delivery = max(int(at) + self.rng.randint(60, 1_800), self.last_delivery + 1)
        self.last_delivery = delivery
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(delivery))
        (self.folder / f"{stamp}-{self.rng.getrandbits(64):016X}").write_text("".join(self.buffer))
        self.buffer, self.size = [], 0
        self.count += 1


def generate(lines: int, seed: int = 42, file: Path | None = None, objects: Path | None = None,
             object_megabytes: float = 4.0) -> Summary:
    """Write `lines` log lines to `file` and/or as log objects under `objects`/logs/."""
    traffic = Traffic(seed, lines)
    # The object keys draw from their own stream, so the lines do not depend on how they are split.
    cutter = LogObjects(objects, int(object_megabytes * 1024 * 1024), random.Random(seed + 1)) if objects else None
    out = open(file, "w", buffering=4 << 20) if file else None
    written = size = 0
    first = traffic.now
    try:
        while written < lines:
            batch = traffic.session()[:lines - written]
            written += len(batch)
            size += sum(len(line) for line in batch)
            if out:
                out.writelines(batch)
            if cutter:
                cutter.add(batch, traffic.now)
        if cutter:
            cutter.flush(traffic.now)
    finally:
        if out:
            out.close()
    return Summary(written, size, cutter.count if cutter else 0, datetime.fromtimestamp(first, timezone.utc),
                   datetime.fromtimestamp(traffic.now, timezone.utc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--file", type=Path, help="write all lines to this file")
    parser.add_argument("--objects", type=Path, help="write log objects under DIR/logs/")
    parser.add_argument("--object-mb", type=float, default=4.0, help="approximate log object size")
    args = parser.parse_args()
    if not args.file and not args.objects:
        parser.error("give --file and/or --objects")
    started = time.perf_counter()
    summary = generate(args.lines, args.seed, args.file, args.objects, args.object_mb)
    print(f"{summary.lines:,} lines, {summary.bytes / 1e6:,.0f} MB, {summary.objects} objects, "
          f"{summary.first:%Y-%m-%d} .. {summary.last:%Y-%m-%d} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
