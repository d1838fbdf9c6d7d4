"""Benchmark: the reset-request endpoint under gunicorn against a thin Flask app, and its timing.

What it measures, in one run on a throwaway PostgreSQL database:

1. **Throughput** - ``POST /api/v1/recovery/email`` of the service, served by gunicorn exactly as in
   production (``gunicorn -w 2 -k sync wsgi:app``), against ``bench/thin_app.py`` served the same way
   (the same endpoint doing one indexed SELECT on the same database and answering 202: the floor
   Flask, gunicorn and one round trip put under any endpoint). ``--concurrency`` client threads
   (default 8) send requests for ``--duration`` seconds per round, half for verified addresses of
   loaded accounts and half for addresses nobody has, picked at random. Rounds alternate
   thin, service, thin, service (``--rounds``) after an untimed warm-up of each, so drift on the
   machine hits both alike. Reported: requests/s of each, the ratio, and the latencies under load.
2. **Timing side channel** - one client, sequential requests to the service: ``--samples`` known and
   as many unknown addresses in random order after ``--warmup`` untimed ones. Every address is new
   to the service: the known ones belong to accounts loaded for this test alone, each named once, so
   per-identifier state (the rate limiter's counters) is alike for both kinds and only whether an
   account exists differs. Reported: p50/p99 of each, the gap between
   the medians and the two-sided Mann-Whitney U p-value (scipy). The thin app gets the same test as a
   control: it shows what the method reports for an endpoint whose hit and miss do the same work.
3. **Correctness, all along** - every answer must be a 202; the service's bodies must be
   byte-identical for known and unknown addresses except the ``flow_id`` (and the first few pairs are
   compared header by header too). No worker runs while the servers are measured: a request only
   records itself on the new flow it starts, which carries the request (``pending_email``) until
   the worker takes it (the design, DESIGN §5.1), so at the end one flow per request answered must
   carry one and the outbox must be empty. Then, after an ``ANALYZE`` of both tables (autovacuum's
   job; some servers run without it), ``recovery worker --once`` answers them all (timed and
   reported: the rate at which one worker answers requests, with their mail to the development
   mailbox); no flow may carry a request any more, and the outbox must hold one ``reset`` mail per
   known and one ``unknown_address`` mail per unknown request.

Targets (from the issue): service >= 0.66x the thin app's throughput; at one client a median gap
below 0.5 ms and a Mann-Whitney p above 0.01.

Reading the figures: the load average is printed, because anything else running on the machine
competes with the servers, PostgreSQL and the client (the order of known and unknown requests is
random, so such noise widens the spread but does not bias the test). The table sizes are printed
before the timing test and after the run (``secret`` stays empty until the worker runs: the
request path issues none).

The service's settings (written to ``service.env`` in the run folder): ``RECOVERY_ENV=development``,
the bench database, a random secret key, ``memory://`` rate-limit storage (per worker process: fine
for a benchmark) and **every rate limit that applies to the endpoint raised to 1000000 per minute**
(``RECOVERY_RESET_RATE_LIMIT_PER_IP`` and ``..._PER_IDENTIFIER``; ``RECOVERY_API_RATE_LIMIT`` too,
though the public endpoints do not spend it): the benchmark measures the endpoint, not the
limiter's refusals (every budget is still counted, so its cost is measured).
``RECOVERY_UNKNOWN_ADDRESS_MAIL`` keeps its default (on). Other ``RECOVERY_*`` variables of the
calling shell are not passed on.

scipy is needed for the Mann-Whitney test and is not a project dependency::

    .venv/bin/pip install scipy

Run it for instance::

    .venv/bin/python bench/forgot.py --quick     # 2 s rounds, 300 timing samples each
    .venv/bin/python bench/forgot.py             # 10,000 accounts, 10 s rounds, 3,000 samples
    .venv/bin/python bench/forgot.py --keep --profile /tmp/forgot.prof

The database (``recovery_bench_forgot_<random>``) is created on the server of ``--database-url``,
migrated to head, and dropped at the end unless ``--keep`` is given (which also keeps the run folder
with ``service.env`` and the gunicorn logs). ``--profile FILE`` finally runs the endpoint in-process
(Flask test client, same settings, same database) under cProfile, writes the stats to FILE and
prints the top entries and the SQL statements per request.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import math
import os
import pstats
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgadmin import admin_execute, server_url
from sqlalchemy import create_engine, event, text

from recovery import create_app, migrate
from recovery.accounts.schemas import AccountRecord
from recovery.accounts.services import AccountService
from recovery.db import db

try:
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit(
        "bench/forgot.py needs scipy for the Mann-Whitney U test (not a project dependency):\n"
        "    .venv/bin/pip install scipy"
    )

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ENDPOINT = "/api/v1/recovery/email"
UNLIMITED = "1000000 per minute"
DOMAIN = "sklep-test.pl"
WORKERS = 2

DEFAULT_ACCOUNTS = 10_000
DEFAULT_DURATION = 10.0
DEFAULT_SAMPLES = 3_000
DEFAULT_TIMING_WARMUP = 300
QUICK_DURATION = 2.0
QUICK_SAMPLES = 300
QUICK_TIMING_WARMUP = 50

TARGET_RATIO = 0.66
TARGET_GAP_MS = 0.5
TARGET_P = 0.01

KNOWN, UNKNOWN = "known", "unknown"
KINDS = (KNOWN, UNKNOWN)
FLOW_ID = re.compile(rb'"flow_id":"([A-Za-z0-9_-]{1,32})"')
#: Headers that differ between any two requests (time, the per-IP counters), known or not.
VOLATILE_HEADERS = {"date", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"}
THIN_BODY = b'{"message":"accepted"}'


# --- addresses ------------------------------------------------------------------------------------


def known_email(index: int) -> str:
    return f"u{index:08d}@{DOMAIN}"


class Addresses:
    """Known addresses are the loaded accounts'; unknown ones are new on every call (and as long as
    the known ones, so both requests have the same size).

    ``pick`` draws known addresses at random from the first ``accounts`` (the load test repeats
    them); ``fresh`` hands out the ``reserved`` accounts after those, each once, so the timing test
    names known addresses as new to the service as its unknown ones: per-identifier state (the rate
    limiter's counters) is then alike for both, and only whether an account exists differs."""

    def __init__(self, accounts: int, reserved: int = 0) -> None:
        self.accounts = accounts
        self._reserved = iter(range(accounts, accounts + reserved))
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def pick(self, kind: str, rng: random.Random) -> str:
        if kind == KNOWN:
            return known_email(rng.randrange(self.accounts))
        return self._unknown(rng)

    def fresh(self, kind: str, rng: random.Random) -> str:
        if kind == KNOWN:
            with self._lock:
                index = next(self._reserved, None)
            if index is None:
                raise SystemExit("bench: out of reserved accounts for the timing test")
            return known_email(index)
        return self._unknown(rng)

    def _unknown(self, rng: random.Random) -> str:
        while True:
            number = rng.getrandbits(32)
            with self._lock:
                if number not in self._seen:
                    self._seen.add(number)
                    return f"n{number:08x}@{DOMAIN}"


# --- the database ---------------------------------------------------------------------------------


def load_accounts(url: str, accounts: int, chunk: int = 1000) -> float:
    """``accounts`` accounts, each with one verified email, through ``AccountService``; seconds."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEYS": "x" * 40})
    started = time.perf_counter()
    with app.app_context():
        try:
            session = db.session
            service = AccountService(session)
            for first in range(0, accounts, chunk):
                records = [
                    AccountRecord.model_validate(
                        {
                            "account_id": f"c{i}",
                            "display_name": f"Klient {i}",
                            "locale": "pl",
                            "identities": [
                                {"kind": "email", "value": known_email(i), "verified": True}
                            ],
                        }
                    )
                    for i in range(first, min(first + chunk, accounts))
                ]
                failed = [o.error for o in service.upsert_many(records) if o.error is not None]
                if failed:
                    raise SystemExit(f"loading accounts failed: {failed[0]}")
                session.commit()
            session.execute(text("ANALYZE"))
            session.commit()
        finally:
            db.session.close()
            db.dispose()
    return time.perf_counter() - started


def scalar(url: str, query: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(query)).scalar_one()
    finally:
        engine.dispose()


#: Requests that flows carry until the worker takes them.
PENDING_REQUESTS = "SELECT count(*) FROM recovery_flow WHERE pending_email IS NOT NULL"


def outbox_counts(url: str) -> dict[str, int]:
    """Outbox rows by what they are: a mail's template, or ``task:<name>``."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT CASE channel WHEN 'task' THEN 'task:' || (payload->>'task') "
                    "ELSE payload->>'template' END, count(*) FROM outbox_message GROUP BY 1"
                )
            )
            return {str(kind): int(count) for kind, count in rows}
    finally:
        engine.dispose()


def run_worker(settings: dict[str, str]) -> tuple[float, str]:
    """``recovery worker --once`` over everything queued: its wall time and its last line."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "recovery"), "worker", "--once"],
        env=process_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"recovery worker --once failed:\n{result.stdout}\n{result.stderr}")
    return seconds, (result.stdout.strip().splitlines() or [""])[-1]


def table_counts(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM recovery_flow), (SELECT count(*) FROM secret), "
                    "(SELECT count(*) FROM secret WHERE account_id IS NULL), "
                    "(SELECT count(*) FROM outbox_message)"
                )
            ).one()
    finally:
        engine.dispose()
    flows, secrets_, decoys, outbox = row
    return (
        f"recovery_flow {flows:,}, secret {secrets_:,} ({decoys:,} codes for no account), "
        f"outbox_message {outbox:,} rows"
    )


# --- the servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gunicorn_binary() -> str:
    venv = ROOT / ".venv" / "bin" / "gunicorn"
    if venv.exists():
        return str(venv)
    found = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which(
        "gunicorn"
    )
    if found is None:
        raise SystemExit("gunicorn is not installed (it is a project dependency)")
    return found


@dataclass
class Server:
    name: str
    app: str  # the WSGI entry, module:variable
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        bind = f"127.0.0.1:{self.port}"
        return [gunicorn_binary(), "-w", str(WORKERS), "-k", "sync", "-b", bind, self.app]

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited early:\n{self.log_tail()}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # gunicorn's master stops its workers on SIGTERM
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def service_env(url: str, public_url: str, storage: str = "memory://") -> dict[str, str]:
    return {
        "RECOVERY_ENV": "development",
        "RECOVERY_DATABASE_URL": url,
        "RECOVERY_SECRET_KEYS": secrets.token_urlsafe(48),
        "RECOVERY_PUBLIC_URL": public_url,
        "RECOVERY_RATELIMIT_STORAGE_URI": storage,
        # The benchmark measures the endpoint, not the limiter's refusals: limits never trigger
        # (they are still checked, so their cost is measured).
        "RECOVERY_RESET_RATE_LIMIT_PER_IP": UNLIMITED,
        "RECOVERY_RESET_RATE_LIMIT_PER_IDENTIFIER": UNLIMITED,
        "RECOVERY_API_RATE_LIMIT": UNLIMITED,
    }


def process_env(settings: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
    return {**inherited, **settings}


# --- the client -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    closed: bool  # the server closed the connection after it


class Client:
    """One connection at a time, reused while the server keeps it alive (gunicorn's sync workers
    close every connection after its response, so then each request opens a new one)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, email: str) -> Answer:
        body = json.dumps({"email": email}).encode()
        try:
            self.connection.request("POST", ENDPOINT, body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        return Answer(response.status, data, response.getheaders(), response.will_close)

    def close(self) -> None:
        self.connection.close()


def template_of(body: bytes) -> bytes | None:
    """The body with its one flow id blanked, or ``None`` if it does not hold exactly one."""
    if len(FLOW_ID.findall(body)) != 1:
        return None
    return FLOW_ID.sub(b'"flow_id":""', body)


@dataclass
class Checker:
    """Checks every answer of one server and counts what the outbox must hold afterwards."""

    server: str
    reference: bytes | None = None  # the service's body template; the thin app's fixed body
    accepted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    mismatched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    examples: list[str] = field(default_factory=list)
    connections_closed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, kind: str, answer: Answer | None, error: str | None = None) -> None:
        with self.lock:
            if answer is None or answer.status != 202:
                self.failures[kind] += 1
                if len(self.examples) < 5:
                    what = error or f"{answer.status if answer else '?'} {answer.body[:300]!r}"  # type: ignore[union-attr]
                    self.examples.append(f"{kind}: {what}")
                return
            self.accepted[kind] += 1
            self.connections_closed += answer.closed
            shape = answer.body if self.server == "thin" else template_of(answer.body)
            if self.reference is None and shape is not None:
                self.reference = shape
            if shape is None or shape != self.reference:
                self.mismatched[kind] += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{kind}: body differs: {answer.body[:300]!r}")

    @property
    def total(self) -> int:
        return sum(self.accepted.values()) + sum(self.failures.values())

    @property
    def ok(self) -> bool:
        return not any(self.failures.values()) and not any(self.mismatched.values())


def compare_pairs(server: Server, addresses: Addresses, checker: Checker, pairs: int) -> list[str]:
    """Known and unknown requests in turn, compared status, headers and body (flow id aside)."""
    problems: list[str] = []
    rng = random.Random(1)
    client = Client(server.port)
    try:
        for _ in range(pairs):
            answers = {}
            for kind in KINDS:
                answer = client.post(addresses.pick(kind, rng))
                checker.check(kind, answer)
                answers[kind] = answer
            known, unknown = answers[KNOWN], answers[UNKNOWN]
            if known.status != unknown.status:
                problems.append(f"status {known.status} (known) != {unknown.status} (unknown)")
            if (
                template_of(known.body) != template_of(unknown.body)
                or template_of(known.body) is None
            ):
                problems.append(f"bodies differ: {known.body!r} / {unknown.body!r}")
            if FLOW_ID.findall(known.body) == FLOW_ID.findall(unknown.body):
                problems.append("the same flow id twice")

            def stable(answer: Answer) -> list[tuple[str, str]]:
                return sorted(
                    (k.lower(), v) for k, v in answer.headers if k.lower() not in VOLATILE_HEADERS
                )

            if stable(known) != stable(unknown):
                problems.append(f"headers differ: {stable(known)} / {stable(unknown)}")
    finally:
        client.close()
    return problems


# --- load -----------------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    requests: int
    seconds: float
    latencies_ms: dict[str, list[float]]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def load(
    server: Server,
    addresses: Addresses,
    checker: Checker,
    concurrency: int,
    duration: float,
    seed: int,
) -> Run:
    """``concurrency`` threads, each sending requests back to back for ``duration`` seconds; half
    known, half unknown addresses at random."""
    barrier = threading.Barrier(concurrency + 1)
    latencies: list[dict[str, list[float]]] = [{k: [] for k in KINDS} for _ in range(concurrency)]
    deadline = 0.0

    def worker(slot: int) -> None:
        rng = random.Random(seed * 1000 + slot)
        client = Client(server.port)
        mine = latencies[slot]
        barrier.wait()
        try:
            while time.perf_counter() < deadline:
                kind = KINDS[rng.getrandbits(1)]
                email = addresses.pick(kind, rng)
                started = time.perf_counter_ns()
                try:
                    answer = client.post(email)
                except (OSError, http.client.HTTPException) as exc:
                    checker.check(kind, None, f"{type(exc).__name__}: {exc}")
                    continue
                mine[kind].append((time.perf_counter_ns() - started) / 1e6)
                checker.check(kind, answer)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline = started + duration
    barrier.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    merged = {k: [x for mine in latencies for x in mine[k]] for k in KINDS}
    return Run(server.name, sum(len(v) for v in merged.values()), seconds, merged)


def sequential(
    server: Server, addresses: Addresses, checker: Checker, samples: int, warmup: int, seed: int
) -> dict[str, list[float]]:
    """One client: ``warmup`` untimed requests, then ``samples`` known and ``samples`` unknown in a
    random order, each timed from sending the request to reading the last byte of the answer."""
    rng = random.Random(seed)
    order = [KNOWN, UNKNOWN] * samples
    rng.shuffle(order)
    warm = [KINDS[rng.getrandbits(1)] for _ in range(warmup)]
    timings: dict[str, list[float]] = {k: [] for k in KINDS}
    client = Client(server.port)
    try:
        for n, kind in enumerate(warm + order):
            email = addresses.fresh(kind, rng)
            started = time.perf_counter_ns()
            answer = client.post(email)
            elapsed = (time.perf_counter_ns() - started) / 1e6
            checker.check(kind, answer)
            if n >= warmup:
                timings[kind].append(elapsed)
    finally:
        client.close()
    return timings


# --- statistics -----------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Gap:
    server: str
    timings: dict[str, list[float]]

    @property
    def median_gap_ms(self) -> float:
        return statistics.median(self.timings[KNOWN]) - statistics.median(self.timings[UNKNOWN])

    @property
    def half_gaps_ms(self) -> list[float]:
        """The median gap of the first and of the second half of the samples, in sending order."""
        gaps = []
        for half in (0, 1):
            known, unknown = (
                self.timings[k][
                    half * len(self.timings[k]) // 2 : (half + 1) * len(self.timings[k]) // 2
                ]
                for k in KINDS
            )
            gaps.append(statistics.median(known) - statistics.median(unknown))
        return gaps

    @property
    def p_value(self) -> float:
        result = mannwhitneyu(
            self.timings[KNOWN], self.timings[UNKNOWN], alternative="two-sided", method="asymptotic"
        )
        return float(result.pvalue)

    @property
    def probability_known_slower(self) -> float:
        """U / (n1 n2): the chance a random known request takes longer than a random unknown one."""
        result = mannwhitneyu(
            self.timings[KNOWN], self.timings[UNKNOWN], alternative="two-sided", method="asymptotic"
        )
        return float(result.statistic) / (len(self.timings[KNOWN]) * len(self.timings[UNKNOWN]))


def load_average() -> str:
    """The machine's load: other work on it competes with the servers, PostgreSQL and the client."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# --- the profile ----------------------------------------------------------------------------------


def profile_in_process(settings: dict[str, str], accounts: int, requests: int, out: str) -> None:
    """The endpoint through Flask's test client, same settings and database, under cProfile."""
    overrides: dict[str, Any] = {k.removeprefix("RECOVERY_"): v for k, v in settings.items()}
    app = create_app(overrides)
    addresses = Addresses(accounts)
    rng = random.Random(7)
    client = app.test_client()
    counts: dict[str, list[int]] = {k: [] for k in KINDS}
    current = [0]
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*args: Any) -> None:
        current[0] += 1

    def one(kind: str) -> None:
        current[0] = 0
        response = client.post(ENDPOINT, json={"email": addresses.pick(kind, rng)})
        if response.status_code != 202:
            raise SystemExit(f"profile: {response.status_code} {response.data[:300]!r}")
        counts[kind].append(current[0])

    for n in range(100):  # warm-up: imports, templates, prepared statements
        one(KINDS[n % 2])
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for n in range(requests):
        one(KINDS[n % 2])
    profile.disable()
    seconds = time.perf_counter() - started
    event.remove(engine, "before_cursor_execute", _count)
    profile.dump_stats(out)
    print(
        f"\nin-process profile: {requests:,} requests (known and unknown in turn) through the "
        f"Flask test client in {seconds:.2f} s = {seconds / requests * 1e3:.2f} ms each under "
        f"cProfile; SQL statements per request: known "
        f"{statistics.mean(counts[KNOWN]):.1f}, unknown {statistics.mean(counts[UNKNOWN]):.1f}"
    )
    for order in ("tottime", "cumulative"):
        print(f"\ntop 30 by {order} (full stats in {out}):")
        pstats.Stats(profile, stream=sys.stdout).sort_stats(order).print_stats(30)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The reset-request endpoint under gunicorn against a thin Flask app: "
        "throughput, latency and the known/unknown timing gap.",
    )
    parser.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS)
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per throughput round (default 10)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds per server")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads for throughput")
    parser.add_argument(
        "--samples", type=int, default=None, help="timed requests per kind at one client"
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed requests at one client")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s rounds, 300 samples")
    parser.add_argument("--database-url", default=ADMIN_URL, help="a PostgreSQL server")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the run folder (env, logs)"
    )
    parser.add_argument("--seed", type=int, default=20251121)
    parser.add_argument(
        "--ratelimit-storage",
        default="memory://",
        help="the service's rate-limit storage (memory://, per worker; or a redis:// URL)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the endpoint in-process")
    parser.add_argument("--profile-requests", type=int, default=2000)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.duration is None:
        args.duration = QUICK_DURATION if quick else DEFAULT_DURATION
    if args.samples is None:
        args.samples = QUICK_SAMPLES if quick else DEFAULT_SAMPLES
    if args.warmup is None:
        args.warmup = QUICK_TIMING_WARMUP if quick else DEFAULT_TIMING_WARMUP
    if min(args.accounts, args.rounds, args.concurrency, args.samples) < 1 or args.duration <= 0:
        parser.error(
            "--accounts, --duration, --rounds, --concurrency and --samples must be positive"
        )
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(
        128 + signum
    )  # unwinds through the finally blocks: servers stop, database goes


@contextmanager
def run_folder(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="recovery-bench-forgot-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept the run folder {path} (service.env, gunicorn logs)")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    admin = server_url(args.database_url)
    name = f"recovery_bench_forgot_{secrets.token_hex(4)}"
    url = admin.set(database=name).render_as_string(hide_password=False)

    admin_execute(admin, f'CREATE DATABASE "{name}"')
    print(f"created database {name} on {admin.host}:{admin.port}", flush=True)
    try:
        with run_folder(args.keep) as folder:
            return run(args, url, folder)
    finally:
        if args.keep:
            print(f"kept database {name}: {url}")
        else:
            admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped database {name}")


def reserved_accounts(args: argparse.Namespace) -> int:
    """Accounts kept for the timing tests (service and thin): one per known request, warm-up too."""
    return 2 * (args.samples + args.warmup)


def run(args: argparse.Namespace, url: str, folder: Path) -> int:
    migrate.upgrade(url)
    seconds = load_accounts(url, args.accounts + reserved_accounts(args))
    print(
        f"migrated; loaded {args.accounts:,} accounts for the load test and "
        f"{reserved_accounts(args):,} for the timing test, with a verified email each, through "
        f"AccountService.upsert_many in {seconds:.1f} s; ANALYZE",
        flush=True,
    )

    service = Server("service", "wsgi:app", free_port(), folder / "service.log")
    thin = Server("thin", "bench.thin_app:app", free_port(), folder / "thin.log")
    settings = service_env(url, f"http://127.0.0.1:{service.port}", args.ratelimit_storage)
    (folder / "service.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    print("service settings (also in service.env of the run folder):")
    for key, value in settings.items():
        shown = "<random, 64 characters>" if key == "RECOVERY_SECRET_KEYS" else value
        print(f"  {key}={shown}")
    print(
        f"  (rate limits raised to {UNLIMITED!r}: the benchmark measures the endpoint, not the "
        "limiter's refusals; RECOVERY_UNKNOWN_ADDRESS_MAIL left at its default, on; no outbox "
        "worker runs while the servers are measured: the requests wait on their flows)"
    )
    env = process_env(settings)
    try:
        for server in (service, thin):
            server.start(env)
        for server in (service, thin):
            server.wait_ready()
            print(f"{server.name}: {' '.join(server.command[1:])} (pid {server.process.pid})")  # type: ignore[union-attr]
        return measure(args, url, service, thin, settings)
    finally:
        for server in (service, thin):
            server.stop()


def measure(
    args: argparse.Namespace, url: str, service: Server, thin: Server, settings: dict[str, str]
) -> int:
    sys.stdout.flush()
    addresses = Addresses(args.accounts, reserved_accounts(args))
    checkers = {"service": Checker("service"), "thin": Checker("thin")}
    servers = {"service": service, "thin": thin}
    failed = False

    # 1. Same answer for known and unknown: status, headers (bar the volatile ones) and body.
    problems = compare_pairs(service, addresses, checkers["service"], pairs=20)
    print(
        "\nknown vs unknown, 20 pairs compared: "
        + ("status, headers and body identical except the flow id" if not problems else "DIFFER")
    )
    for problem in problems[:5]:
        print(f"  {problem}")
    failed |= bool(problems)
    print(
        f"  the body: {checkers['service'].reference.decode() if checkers['service'].reference else '?'}"
    )

    # 2. Throughput, alternating thin and service after a warm-up of each.
    warmup = min(2.0, args.duration / 2)
    for name in ("thin", "service"):
        load(servers[name], addresses, checkers[name], args.concurrency, warmup, args.seed)
    runs: dict[str, list[Run]] = {"thin": [], "service": []}
    print(
        f"\nthroughput: {args.concurrency} client threads, {args.rounds} x {args.duration:g} s per "
        f"server, alternating thin/service after {warmup:g} s of warm-up each; half known, half "
        f"unknown addresses; {load_average()}",
        flush=True,
    )
    for n in range(args.rounds):
        for name in ("thin", "service"):
            result = load(
                servers[name], addresses, checkers[name], args.concurrency, args.duration,
                args.seed + n * 10 + (name == "service"),
            )  # fmt: skip
            runs[name].append(result)
            print(
                f"  round {n + 1} {name:<8} {result.requests:>8,} requests  {result.rate:>8,.0f}/s"
            )

    # 3. The timing gap at one client: the service, then the thin app as a control.
    print(f"\nbefore the timing test: {table_counts(url)}; {load_average()}")
    print(
        f"timing at one client: {args.warmup:,} warm-up, then {args.samples:,} known + "
        f"{args.samples:,} unknown requests in random order, each to an address new to the service",
        flush=True,
    )
    gaps = [
        Gap(name, sequential(servers[name], addresses, checkers[name], args.samples, args.warmup, args.seed + 99))
        for name in ("service", "thin")
    ]  # fmt: skip

    # 4. One request waiting per accepted request; the worker turns each into the right mail.
    accepted = checkers["service"].accepted
    answered = accepted[KNOWN] + accepted[UNKNOWN]
    queued, waiting = outbox_counts(url), scalar(url, PENDING_REQUESTS)
    requests_ok = waiting == answered and not queued
    print(f"\nrunning recovery worker --once over {answered:,} waiting requests ...", flush=True)
    # What autovacuum would do after the burst (this server may run without it): the worker's
    # pick-up and claims are planned from these statistics.
    admin_execute(url, "ANALYZE recovery_flow")
    admin_execute(url, "ANALYZE outbox_message")
    worker_seconds, worker_said = run_worker(settings)
    left = scalar(url, PENDING_REQUESTS)
    mails = {k: v for k, v in outbox_counts(url).items() if not k.startswith("task:")}
    expected = {"reset": accepted[KNOWN], "unknown_address": accepted[UNKNOWN]}
    outbox_ok = mails == expected and left == 0

    # --- summary ---
    summary = summarise(args, runs, gaps)
    print(summary.text)
    print("checks:")
    for name, checker in checkers.items():
        print(
            f"  {name}: {checker.total:,} requests, "
            f"{sum(checker.failures.values())} not 202, "
            + (
                f"{sum(checker.mismatched.values())} bodies differing from the rest (flow id aside)"
                if name == "service"
                else f"{sum(checker.mismatched.values())} bodies differing"
            )
            + f"; server closed the connection after {checker.connections_closed:,} of "
            f"{sum(checker.accepted.values()):,} answers"
        )
        for example in checker.examples:
            print(f"    {example}")
        failed |= not checker.ok
    print(
        f"  after the requests: {waiting:,} flows carry a request, outbox {queued} (expected "
        f"{answered:,} and an empty outbox); " + ("ok" if requests_ok else "MISMATCH")
    )
    failed |= not requests_ok
    print(
        f"  one worker answered them in {worker_seconds:.1f} s = "
        f"{answered / worker_seconds:,.0f} requests/s (lookup, secrets and mail; {worker_said})"
    )
    print(
        f"  outbox mail rows: reset {mails.get('reset', 0):,} (expected {expected['reset']:,} = "
        f"known requests answered), unknown_address {mails.get('unknown_address', 0):,} "
        f"(expected {expected['unknown_address']:,}); requests still waiting {left:,}; "
        + ("ok" if outbox_ok else f"MISMATCH {mails}")
    )
    failed |= not outbox_ok
    print(f"  after the run: {table_counts(url)}; {load_average()}")

    if args.profile:
        profile_in_process(settings, args.accounts, args.profile_requests, args.profile)
    if failed:
        print("FAILED: see the checks above")
        return 1
    return 0


@dataclass
class Summary:
    text: str


def summarise(args: argparse.Namespace, runs: dict[str, list[Run]], gaps: list[Gap]) -> Summary:
    lines = ["", "=" * 96, "summary", "=" * 96]
    rates = {}
    header = (
        f"{'throughput':<10} {'requests':>9} {'req/s':>8} {'rounds req/s':>18}  "
        f"{'known p50/p99 ms':>17}  {'unknown p50/p99 ms':>18}"
    )
    lines += [header, "-" * len(header)]
    for name in ("thin", "service"):
        requests = sum(r.requests for r in runs[name])
        seconds = sum(r.seconds for r in runs[name])
        rates[name] = requests / seconds
        known = [x for r in runs[name] for x in r.latencies_ms[KNOWN]]
        unknown = [x for r in runs[name] for x in r.latencies_ms[UNKNOWN]]
        per_round = " ".join(f"{r.rate:,.0f}" for r in runs[name])
        lines.append(
            f"{name:<10} {requests:>9,} {rates[name]:>8,.0f} {per_round:>18}  "
            f"{percentile(known, 0.5):>8.2f}/{percentile(known, 0.99):<8.2f}  "
            f"{percentile(unknown, 0.5):>9.2f}/{percentile(unknown, 0.99):<8.2f}"
        )
    ratio = rates["service"] / rates["thin"]
    lines.append(
        f"service / thin = {ratio:.2f}x (target >= {TARGET_RATIO}x): {verdict(ratio >= TARGET_RATIO)}"
        f"   [{args.concurrency} client threads, gunicorn -w {WORKERS} -k sync each]"
    )
    lines.append("")
    header = (
        f"{'one client':<15} {'n':>5} {'known p50/p99 ms':>17}  {'unknown p50/p99 ms':>18}  "
        f"{'median gap ms':>13}  {'P(known>unk)':>12}  {'Mann-Whitney p':>14}"
    )
    lines += [header, "-" * len(header)]
    for gap in gaps:
        known, unknown = gap.timings[KNOWN], gap.timings[UNKNOWN]
        label = gap.server if gap.server == "service" else "thin (control)"
        lines.append(
            f"{label:<15} {len(known):>5} "
            f"{percentile(known, 0.5):>8.2f}/{percentile(known, 0.99):<8.2f}  "
            f"{percentile(unknown, 0.5):>9.2f}/{percentile(unknown, 0.99):<8.2f}  "
            f"{gap.median_gap_ms:>+13.3f}  {gap.probability_known_slower:>12.3f}  "
            f"{gap.p_value:>14.3g}"
        )
    service = gaps[0]
    gap_ok = abs(service.median_gap_ms) < TARGET_GAP_MS
    p_ok = service.p_value > TARGET_P
    lines.append(
        f"service: |median gap| {abs(service.median_gap_ms):.3f} ms (target < {TARGET_GAP_MS} ms): "
        f"{verdict(gap_ok)}; Mann-Whitney p {service.p_value:.3g} (target > {TARGET_P}): "
        f"{verdict(p_ok)}"
    )
    halves = ", ".join(f"{gap:+.3f}" for gap in service.half_gaps_ms)
    lines.append(
        f"service median gap in the first / second half of the samples: {halves} ms "
        "(drift shows up here)"
    )
    lines.append("(gap = known - unknown; P(known>unk) = U/(n1 n2), 0.5 when indistinguishable)")
    lines.append("=" * 96)
    return Summary("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
