"""Where `seo` rankings come from. Pro Ranking has no public API, so a provider is anything that yields
ranking items `{date, keyword, domain, position, search_volume}`; `collectors.seo` validates and stores
them. Two providers ship:

**ApiProvider** ("api") reads a rank tracker through this small JSON API (simulators/seo.py implements it;
a thin adapter in front of any tracker's export can too):

    GET {api_url}/v1/projects/{project}             Authorization: Bearer <key from api_key_env>
        {"id", "name", "first_date": "YYYY-MM-DD", "latest_date": "YYYY-MM-DD", "keywords", "domains"}
    GET {api_url}/v1/projects/{project}/rankings?from=YYYY-MM-DD&to=YYYY-MM-DD&page_size=N[&page_token=T]
        {"rankings": [{"date": "YYYY-MM-DD", "keyword": "etl tools", "domain": "cask.co",
                       "position": 3, "search_volume": 14800}, ...], "next_page_token": "T" | null}
    errors: {"error": {"code", "message"}}; 401 bad key, 404 unknown project, 429 with Retry-After, 5xx.

`latest_date` is the newest day the tracker has checked; days are asked as in collectors/daily_reports.py
(cursor {"last_day"}, the last `late_days` days again, chunks of `chunk_days`).

**CsvProvider** ("csv") imports files dropped into `import_dir`: `*.csv`, UTF-8 (a BOM is fine), comma,
semicolon or tab separated, with the header `date,keyword,domain,position,search_volume` (other columns are
ignored; an empty position means "not ranking"). Each file is imported once: the ledger
`seo_files_read` holds (name, SHA-256 of the content), committed with the file's rows, so a re-saved copy
with new content is imported again (rows already stored are not added twice). Drop files by writing them
under another name and renaming, so a half-written file is never read.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import requests

from collectors import http
from collectors.base import Context, Rejected, SourceError, quarantine_text
from collectors.daily_reports import chunks, days_to_ask, parse_day, server_now

if TYPE_CHECKING:     # the settings model lives in the source's own module, which imports this one
    from collectors.seo import SeoConfig

PAGE_SIZE = 1000
CSV_COLUMNS = ("date", "keyword", "domain", "position", "search_volume")


@dataclass
class Chunk:
    """What a provider read in one step, committed as one batch."""
    items: list[tuple[object, str]]                 # (ranking item, where it came from)
    cursor: dict | None
    label: str
    progress: tuple[int, int] | None = None
    rejected: list[Rejected] = field(default_factory=list)      # problems with a whole page or file
    files: list[dict] = field(default_factory=list)             # ledger rows (CSV files imported)


class ApiProvider:
    name = "api"

    def __init__(self, ctx: Context):
        settings: SeoConfig = ctx.settings
        self.settings = settings
        self.project_url = f"{settings.api_url.rstrip('/')}/v1/projects/{quote(settings.project, safe='')}"
        self.hint = f"[sources.seo] api_key_env (${settings.api_key_env})"
        key = ctx.secret(settings.api_key_env)
        if not key:
            raise SourceError(f"no rank tracker API key: set ${settings.api_key_env}, the variable named by "
                              f"[sources.seo] api_key_env")
        self.session = http.new_session({"Authorization": f"Bearer {key}", "Accept": "application/json"})

    def _get(self, url: str, params: dict | None, what: str):
        try:
            response = http.get(self.session, url, params, what=what, credential_hint=self.hint)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            where = "check [sources.seo] project and api_url" if status == 404 else "the rank tracker refused it"
            raise SourceError(f"{what}: HTTP {status} {exc.response.text[:200] if exc.response is not None else ''}"
                              f": {where}") from None
        return response, http.decode_json(response, what)

    def _latest_day(self) -> date:
        response, body = self._get(self.project_url, None, "rank tracker GET project")
        latest = parse_day(body.get("latest_date")) if isinstance(body, dict) else None
        # Without latest_date the API's clock says how far to ask (yesterday is the last full day).
        return latest or server_now(response).date() - timedelta(days=1)

    def _rankings(self, first: date, last: date) -> tuple[list[tuple[object, str]], list[Rejected]]:
        url, items, rejected, token, seen = f"{self.project_url}/rankings", [], [], None, set()
        while True:
            params = {"from": first.isoformat(), "to": last.isoformat(), "page_size": PAGE_SIZE,
                      **({"page_token": token} if token else {})}
            origin = f"{url}?from={first}&to={last}" + (f"&page_token={token}" if token else "")
            try:
                _, body = self._get(url, params, "rank tracker GET rankings")
            except http.BadResponse as exc:
                raise UnusablePage(items, rejected + [Rejected(f"rankings page: {exc}", "", origin)]) from None
            page = body.get("rankings") if isinstance(body, dict) else None
            if not isinstance(page, list):
                reject = Rejected("rankings page: rankings is not a list", quarantine_text(body), origin)
                raise UnusablePage(items, rejected + [reject])
            items += [(item, origin) for item in page]
            token = body.get("next_page_token")
            if not token or token in seen:          # a repeated token must not page forever
                return items, rejected
            seen.add(token)

    def read(self, ctx: Context, cursor: dict | None) -> Iterator[Chunk]:
        last_asked = parse_day((cursor or {}).get("last_day"))
        plan = days_to_ask(last_asked, self._latest_day(), history_days=self.settings.history_days,
                           late_days=self.settings.late_days, chunk_days=self.settings.chunk_days)
        for index, (first, last) in enumerate(plan, 1):
            try:
                items, rejected = self._rankings(first, last)
            except UnusablePage as unusable:        # keep what was read; the cursor stays for the next run
                yield Chunk(unusable.items, None, f"{first}..{last} (stopped: unusable page)",
                            rejected=unusable.rejected)
                return
            last_asked = max(last_asked or last, last)
            yield Chunk(items, {"last_day": last_asked.isoformat()}, f"{first}..{last}", (index, len(plan)), rejected)

    def read_range(self, ctx: Context, start: date, end: date) -> Iterator[Chunk]:
        plan = chunks(start, min(end, self._latest_day()), self.settings.chunk_days)
        for index, (first, last) in enumerate(plan, 1):
            try:
                items, rejected = self._rankings(first, last)
            except UnusablePage as unusable:
                items, rejected = unusable.items, unusable.rejected
            yield Chunk(items, None, f"{first}..{last}", (index, len(plan)), rejected)

    def close(self) -> None:
        self.session.close()


class UnusablePage(Exception):
    def __init__(self, items: list, rejected: list[Rejected]):
        super().__init__(rejected[-1].reason)
        self.items, self.rejected = items, rejected


class CsvProvider:
    name = "csv"

    def __init__(self, ctx: Context):
        settings: SeoConfig = ctx.settings
        folder = Path(settings.import_dir).expanduser()
        self.folder = folder if folder.is_absolute() else ctx.config.path.parent / folder
        if not self.folder.is_dir():
            raise SourceError(f"[sources.seo] import_dir {str(self.folder)!r} is not a folder")
        self.lookup = ctx.lookup

    def _files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")

    def read(self, ctx: Context, cursor: dict | None) -> Iterator[Chunk]:
        """Each file not imported yet (by name and content), oldest name first, one chunk each."""
        pending = []
        for path in self._files():
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            if not self.lookup.count("seo_files_read", name=path.name, sha256=digest):
                pending.append((path, content, digest))
        for index, (path, content, digest) in enumerate(pending, 1):
            items, rejected = parse_csv(path.name, content)
            yield Chunk(items, None, path.name, (index, len(pending)), rejected,
                        files=[{"name": path.name, "sha256": digest, "rows": len(items), "rejected": len(rejected)}])

    def read_range(self, ctx: Context, start: date, end: date) -> Iterator[Chunk]:
        """Every file again, imported or not, keeping the rows of [start, end]; the ledger is left alone, so
        files not imported yet are still imported whole by the next collection."""
        files = self._files()
        for index, path in enumerate(files, 1):
            items, rejected = parse_csv(path.name, path.read_bytes())
            inside = [(item, origin) for item, origin in items
                      if not isinstance(item, dict) or (d := parse_day(item.get("date"))) is None or start <= d <= end]
            yield Chunk(inside, None, f"{path.name} {start}..{end}", (index, len(files)), rejected)

    def close(self) -> None:
        pass


def parse_csv(name: str, content: bytes) -> tuple[list[tuple[object, str]], list[Rejected]]:
    """A file's rows as ranking items with their origin ("file:line"); a file that cannot be read at all is
    one reject. A row whose field count differs from the header's carries `_problem` for the validator."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Rejected(f"CSV file is not UTF-8 ({exc.reason} at byte {exc.start})", "", name)]
    first_line = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    header = [h.strip().lower() for h in next(rows, [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        return [], [Rejected(f"CSV header lacks {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})",
                             first_line[:1000], name)]
    columns = {c: header.index(c) for c in CSV_COLUMNS}
    items = []
    for fields in rows:
        if not any(f.strip() for f in fields):
            continue                                 # blank lines (a trailing newline, spacing) are not rows
        item: dict = {c: fields[i] if i < len(fields) else None for c, i in columns.items()}
        if len(fields) != len(header):
            item["_problem"] = f"{len(fields)} fields where the header has {len(header)}"
        items.append((item, f"{name}:{rows.line_num}"))
    return items, []


def provider_for(ctx: Context) -> ApiProvider | CsvProvider:
    settings: SeoConfig = ctx.settings
    return ApiProvider(ctx) if settings.provider == "api" else CsvProvider(ctx)
