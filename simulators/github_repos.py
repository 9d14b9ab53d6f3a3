"""The simulated GitHub's repositories: what happens to each, generated day by day from a seed, so the server
can show what had happened at any moment (see `simulators.github`).

Each repository gets a profile derived from its name (star rate, growth, release cadence) and a day-by-day
history from `start`, each day drawn from a random generator seeded by (seed, repo, day), so the same
arguments always give the same stars, forks, pull requests and releases. Stars grow steadily, dip at
weekends, burst for a few days after each release, and a few users unstar.
"""
from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from simulators.randomness import poisson, stable_number

UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
WEEKDAY_FACTOR = (1.15, 1.2, 1.2, 1.15, 1.0, 0.55, 0.5)     # Monday..Sunday: developers star on workdays
HOUR_WEIGHTS = (3, 2, 2, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 11, 11, 10, 9, 8, 7, 6, 5, 4, 3)   # UTC: EU + US day
UNSTARS_PER_DAY = 0.03          # "a few" a year
FORKS_PER_STAR = 0.22
FIRST_NAMES = ("alex", "sam", "maria", "wei", "priya", "jonas", "fatima", "diego", "yuki", "olga", "noah", "lena",
               "omar", "chen", "ana", "ivan", "sara", "raj", "emma", "kofi", "mei", "lucas", "aisha", "tomas")
NAME_WORDS = ("dev", "data", "codes", "ops", "hacks", "eng", "io", "lab", "py", "js", "ml", "cloud")
PULL_TITLES = ("Fix NPE in {}", "Add metrics for {}", "Upgrade {} dependencies", "Improve {} error messages",
               "Speed up {} startup", "Document {} configuration", "Support Java 17 in {}", "Refactor {} tests")
COMPONENTS = ("app fabric", "pipeline UI", "dataset service", "router", "metrics", "logging", "CLI", "SDK")


@dataclass
class Star:
    login: str
    starred_at: datetime
    unstarred_at: datetime | None = None


@dataclass
class Fork:
    owner: str
    repo_id: int
    created_at: datetime


@dataclass
class Pull:
    number: int
    id: int
    title: str
    author: str
    created_at: datetime
    closed_at: datetime | None
    merged: bool

    def closed_by(self, moment: datetime) -> bool:
        return self.closed_at is not None and self.closed_at <= moment


@dataclass
class Release:
    id: int
    tag: str
    created_at: datetime       # a draft from here (visible to authenticated callers) ...
    published_at: datetime     # ... published from here
    prerelease: bool


@dataclass(frozen=True)
class Profile:
    """How a repository behaves, derived from its name so every run agrees."""
    stars_per_day: float
    yearly_growth: float
    release_every_days: int
    pulls_per_workday: float

    @classmethod
    def of(cls, full_name: str) -> Profile:
        return cls(stars_per_day=stable_number(full_name + "/stars", 80, 400) / 100,
                   yearly_growth=stable_number(full_name + "/growth", 30, 90) / 100,
                   release_every_days=stable_number(full_name + "/releases", 35, 75),
                   pulls_per_workday=stable_number(full_name + "/pulls", 80, 300) / 100)


@dataclass
class RepoHistory:
    """Everything that ever happens to one repository, generated day by day up to `generated_through`."""
    full_name: str
    seed: int
    start: date
    profile: Profile = field(init=False)
    repo_id: int = field(init=False)
    stars: list[Star] = field(default_factory=list)               # in starred_at order
    star_times: list[datetime] = field(default_factory=list)      # parallel to `stars`, for bisect
    unstar_times: list[datetime] = field(default_factory=list)    # sorted: unstars are generated in time order
    forks: list[Fork] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    generated_through: date = field(init=False)
    _next_release_day: date = field(init=False)
    _next_number: int = 1
    _version: tuple[int, int, int] = (1, 0, 0)

    def __post_init__(self):
        self.profile = Profile.of(self.full_name)
        self.repo_id = stable_number(self.full_name + "/id", 10_000_000, 99_999_999)
        self.generated_through = self.start - timedelta(days=1)
        self._next_release_day = self.start + timedelta(days=self.profile.release_every_days // 2)

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    @property
    def created_at(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), UTC)

    def extend_to(self, last_day: date) -> None:
        while self.generated_through < last_day:
            self.generated_through += timedelta(days=1)
            self._generate(self.generated_through)

    def _generate(self, day: date) -> None:
        rng = random.Random(f"{self.seed}/{self.full_name}/{day.isoformat()}")
        midnight = datetime.combine(day, datetime.min.time(), UTC)

        def moment() -> datetime:
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            return midnight + timedelta(hours=hour, seconds=rng.randrange(3600))

        trend = 1 + self.profile.yearly_growth * (day - self.start).days / 365.25
        published = [r.published_at.date() for r in self.releases if r.published_at.date() <= day]
        burst = 1 + 5 * math.exp(-(day - published[-1]).days / 2.5) if published else 1.0
        star_rate = self.profile.stars_per_day * trend * WEEKDAY_FACTOR[day.weekday()] * burst

        for when in sorted(moment() for _ in range(poisson(rng, star_rate))):
            index = len(self.stars) + 1
            login = f"{rng.choice(FIRST_NAMES)}-{rng.choice(NAME_WORDS)}-{index}"
            self.stars.append(Star(login, when))
            self.star_times.append(when)
        if rng.random() < UNSTARS_PER_DAY:
            earlier = [s for s in self.stars if s.starred_at < midnight and s.unstarred_at is None]
            if earlier:
                gone = rng.choice(earlier)
                gone.unstarred_at = moment()
                self.unstar_times.append(gone.unstarred_at)
        for when in sorted(moment() for _ in range(poisson(rng, star_rate * FORKS_PER_STAR))):
            owner = f"{rng.choice(FIRST_NAMES)}-{rng.choice(NAME_WORDS)}-f{len(self.forks) + 1}"
            self.forks.append(Fork(owner, stable_number(f"{self.full_name}/fork/{owner}", 100_000_000, 999_999_999),
                                   when))
        workday = day.weekday() < 5
        for when in sorted(moment() for _ in range(poisson(rng, self.profile.pulls_per_workday * trend
                                                                 * (1.0 if workday else 0.25)))):
            number = self._next_number
            self._next_number += rng.choice((1, 1, 1, 2, 3))    # issues share the numbering, so there are gaps
            outcome = rng.random()
            closed_at = when + timedelta(hours=rng.expovariate(1 / 60)) if outcome < 0.92 else None
            self.pulls.append(Pull(number, stable_number(f"{self.full_name}/pull/{number}", 10**8, 10**9),
                                   rng.choice(PULL_TITLES).format(rng.choice(COMPONENTS)),
                                   f"{rng.choice(FIRST_NAMES)}-{rng.choice(NAME_WORDS)}-{rng.randrange(1, 400)}",
                                   when, closed_at, merged=outcome < 0.75))
        if day >= self._next_release_day and day.weekday() in (1, 2, 3):     # releases ship Tuesday..Thursday
            self._release(rng, midnight)

    def _release(self, rng: random.Random, midnight: datetime) -> None:
        major, minor, patch = self._version
        minor_bump = len(self.releases) % 4 == 3
        self._version = (major, minor + 1, 0) if minor_bump else (major, minor, patch + 1)
        published_at = midnight + timedelta(hours=rng.randrange(15, 19), seconds=rng.randrange(3600))
        prerelease = rng.random() < 0.1
        tag = "v{}.{}.{}".format(*self._version) + ("-rc1" if prerelease else "")
        self.releases.append(Release(stable_number(f"{self.full_name}/release/{tag}", 10**7, 10**8), tag,
                                     published_at - timedelta(days=2, hours=rng.randrange(0, 6)), published_at,
                                     prerelease))
        jitter = rng.randrange(-7, 8)
        self._next_release_day = midnight.date() + timedelta(days=self.profile.release_every_days + jitter)

    # -- what had happened at a moment --------------------------------------------------------------------
    def stars_at(self, moment: datetime) -> int:
        return bisect.bisect_right(self.star_times, moment) - bisect.bisect_right(self.unstar_times, moment)

    def stargazers_at(self, moment: datetime) -> list[Star]:
        """Current stargazers at `moment`, oldest star first (GitHub's order)."""
        visible = self.stars[:bisect.bisect_right(self.star_times, moment)]
        return [s for s in visible if s.unstarred_at is None or s.unstarred_at > moment]

    def forks_at(self, moment: datetime) -> int:
        return sum(1 for f in self.forks if f.created_at <= moment)

    def subscribers_at(self, moment: datetime) -> int:
        return 3 + self.stars_at(moment) // 12      # roughly one watcher per dozen stars

    def pulls_at(self, moment: datetime) -> list[Pull]:
        return [p for p in self.pulls if p.created_at <= moment]

    def open_issues_at(self, moment: datetime) -> int:
        """GitHub counts open pull requests as open issues too."""
        open_pulls = sum(1 for p in self.pulls_at(moment) if not p.closed_by(moment))
        return open_pulls + 5 + max(0, (moment.date() - self.start).days) // 30

    def releases_at(self, moment: datetime, include_drafts: bool) -> list[Release]:
        return [r for r in self.releases
                if r.published_at <= moment or (include_drafts and r.created_at <= moment)]

