"""Benchmark: bulk NDJSON import, then exact identity resolution, on a throwaway PostgreSQL database.

What it measures:

1. **Import rate** - a seeded, deterministic NDJSON file of accounts (e-mail, Polish mobile and, for
   about one in ten, a PayPal payer id) followed by orders (account, guest-with-account-contact and pure
   guest orders) is written to a temporary file first, so generating it is *not* timed. Every line then
   goes through ``recovery.ingest.services.Importer`` with the app's session, committing after each
   yielded batch exactly like ``recovery import`` does. The rate is lines per second of wall time.
2. **Exact lookup latency** - after ``ANALYZE``, ``ResolutionService(db.session).resolve(Hints(...))``
   for an e-mail, a phone and an order number that exist ("hit") and that do not ("miss"): a warm-up,
   then random keys, reported as p50/p99/max in milliseconds. ``Hints`` are validated before the clock
   starts; each lookup runs in its own transaction like one API request, so the timed part includes
   checking the connection out of the pool (its pre-ping) and BEGIN, while the closing ROLLBACK is not
   timed. Every answer is checked: a hit must rank the right account first, a miss must find nobody.

Targets (from the issue): import >= 20,000 rows/s and exact lookup p99 <= 5 ms.

Run it with ``make bench`` (which runs ``python bench/resolve.py``), or for instance::

    .venv/bin/python bench/resolve.py --quick          # 20,000 accounts / 40,000 orders smoke run
    .venv/bin/python bench/resolve.py                  # 1,000,000 accounts / 2,000,000 orders
    .venv/bin/python bench/resolve.py --database-url postgresql://postgres@db:5432/postgres --keep

The database (``recovery_bench_<random>``) is created on the server of ``--database-url``, migrated to
head and dropped at the end unless ``--keep`` is given. ``--profile FILE`` profiles the import loop
with cProfile, writes the stats to FILE and prints the top entries.
"""

from __future__ import annotations

import argparse
import array
import cProfile
import datetime as dt
import json
import math
import os
import pstats
import random
import secrets
import signal
import string
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app
from pgadmin import admin_execute, server_url
from sqlalchemy import text

from recovery import create_app, migrate
from recovery.config import DEFAULTS
from recovery.db import db
from recovery.identity.schemas import Hints
from recovery.identity.services import ResolutionService
from recovery.ingest.services import Importer, Summary, bounded_lines

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_ACCOUNTS = 1_000_000
DEFAULT_ORDERS = 2_000_000
QUICK_ACCOUNTS = 20_000
QUICK_ORDERS = 40_000
TARGET_ROWS_PER_SECOND = 20_000
TARGET_P99_MS = 5.0

FIRST_NAMES = (
    "Anna", "Maria", "Katarzyna", "Małgorzata", "Agnieszka", "Barbara", "Ewa", "Krystyna",
    "Elżbieta", "Zofia", "Joanna", "Magdalena", "Aleksandra", "Żaneta", "Jan", "Andrzej", "Piotr",
    "Krzysztof", "Stanisław", "Tomasz", "Paweł", "Józef", "Marcin", "Łukasz", "Michał", "Grzegorz",
    "Jakub", "Wojciech", "Zbigniew", "Jerzy",
)  # fmt: skip
LAST_NAMES = (
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
    "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur",
    "Kwiatkowski", "Krawczyk", "Piotrowski", "Grabowski", "Nowakowski", "Pawłowski", "Michalski",
    "Król", "Wieczorek", "Jabłoński", "Wróbel", "Nowicki", "Majewski", "Olszewski", "Stępień",
    "Malinowski", "Jaworski", "Adamczyk", "Dudek", "Pawlak", "Górski", "Sikora", "Walczak", "Baran",
    "Rutkowski", "Szewczyk", "Ostrowski", "Tomaszewski", "Pietrzak", "Zalewski", "Marciniak",
    "Jasiński", "Zawadzki", "Bąk", "Sadowski", "Duda", "Włodarczyk",
)  # fmt: skip
DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "wp.pl", "wp.pl", "onet.pl", "o2.pl", "interia.pl",
    "op.pl", "outlook.com", "yahoo.com",
)  # fmt: skip
PAYMENT_METHODS = ("card", "blik", "paypal", "bank_transfer", "cash_on_delivery", "other")
PAYMENT_WEIGHTS = (45, 25, 15, 8, 5, 2)
PAYER_ALPHABET = string.ascii_uppercase + string.digits

# Polish mobile ranges libphonenumber accepts in full: accounts use 60/66/69 ("+48 6xx xxx xxx"),
# guests without an account 50/51/53, and the "miss" lookups 72/73, which are never generated.
ACCOUNT_PREFIXES = ("60", "66", "69")
GUEST_PREFIXES = ("50", "51", "53")
MISS_PREFIXES = ("72", "73")
PHONE_BLOCK = 10**7  # seven digits after each two-digit prefix
PHONE_SPACE = len(ACCOUNT_PREFIXES) * PHONE_BLOCK
PHONE_STRIDE = 10_000_019  # coprime with PHONE_SPACE (2^7 * 3 * 5^7): i -> phone is a bijection

# What an order is, for picking "order number hit" keys that must resolve to their account.
NO_ACCOUNT = -1
_CET = dt.timezone(dt.timedelta(hours=1))
_YEAR_START = dt.datetime(2025, 1, 1, tzinfo=_CET)
_FOLD = str.maketrans({"ł": "l", "Ł": "L"})


# --- synthetic data --------------------------------------------------------------------------------


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def spaced_phone(digits: str) -> str:
    """``600100200`` -> ``+48 600 100 200``."""
    return f"+48 {digits[0:3]} {digits[3:6]} {digits[6:9]}"


def account_phone_digits(index: int, offset: int) -> str:
    """The national number of account ``index``: unique per account (an affine bijection)."""
    slot = (PHONE_STRIDE * index + offset) % PHONE_SPACE
    block, rest = divmod(slot, PHONE_BLOCK)
    return f"{ACCOUNT_PREFIXES[block]}{rest:07d}"


def order_number(index: int) -> str:
    return f"PL-2025-{index + 1:08d}"


@dataclass(slots=True)
class Dataset:
    """What the lookups need to know about the generated data (the rest lives in the file only)."""

    accounts: int
    orders: int
    phone_offset: int
    emails: list[str]  # normalised (lower case), by account index
    order_accounts: array.array[int]  # account index of each order, NO_ACCOUNT for guests

    def phone(self, index: int) -> str:
        return spaced_phone(account_phone_digits(index, self.phone_offset))


def generate(path: Path, accounts: int, orders: int, seed: int) -> Dataset:
    """Write ``accounts`` account lines, then ``orders`` order lines, to ``path``; deterministic."""
    if accounts > PHONE_SPACE:
        raise SystemExit(f"at most {PHONE_SPACE:,} accounts (unique phone numbers)")
    rng = random.Random(seed)
    phone_offset = rng.randrange(PHONE_SPACE)
    emails: list[str] = []
    payers: dict[int, str] = {}
    seen_payers: set[str] = set()
    email: str | None
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def new_payer() -> str:
        while True:
            payer = "".join(rng.choices(PAYER_ALPHABET, k=13))
            if payer not in seen_payers:
                seen_payers.add(payer)
                return payer

    with path.open("w", encoding="utf-8") as out:
        for i in range(accounts):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            f, lname, domain = ascii_fold(first), ascii_fold(last), rng.choice(DOMAINS)
            local = rng.choice(
                (f"{f}.{lname}{i}", f"{f}{lname}.{i}", f"{f[0]}.{lname}.{i}", f"{lname}_{f}{i}")
            )
            address = f"{local}@{domain}"
            emails.append(address)
            shown = address if rng.random() < 0.9 else address.capitalize()  # normalised on import
            identities: list[dict[str, Any]] = [
                {"kind": "email", "value": shown, "verified": True},
                {
                    "kind": "phone",
                    "value": spaced_phone(account_phone_digits(i, phone_offset)),
                    "verified": True,
                },
            ]
            if rng.random() < 0.1:
                payers[i] = new_payer()
                identities.append({"kind": "paypal", "value": payers[i], "verified": True})
            line: dict[str, Any] = {
                "type": "account",
                "account_id": f"c{i}",
                "display_name": f"{first} {last}",
                "locale": "pl" if rng.random() < 0.9 else "en",
                "identities": identities,
            }
            out.write(dumps(line) + "\n")

        order_accounts = array.array("i", [NO_ACCOUNT]) * orders
        for j in range(orders):
            placed = _YEAR_START + dt.timedelta(seconds=rng.randrange(365 * 86_400))
            method = rng.choices(PAYMENT_METHODS, PAYMENT_WEIGHTS)[0]
            kind = rng.random()
            payer: str | None
            if kind < 0.85:  # someone with an account: signed in (70%) or checking out as a guest
                i = rng.randrange(accounts)
                email = emails[i] if rng.random() < 0.9 else None
                if email is not None and rng.random() < 0.05:
                    name, _, host = email.partition("@")
                    email = f"{name}+sklep@{host}"  # a +tag: only the fuzzy key matches
                digits = account_phone_digits(i, phone_offset)
                phone = rng.choice((digits, f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"))
                phone_or_none = phone if rng.random() < 0.7 else None
                signed_in = kind < 0.70
                payer = payers.get(i)
                if signed_in:
                    order_accounts[j] = i
            else:  # a guest the shop has no account for
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                email = f"{ascii_fold(first)}.{ascii_fold(last)}.g{j}@{rng.choice(DOMAINS)}"
                prefix = rng.choice(GUEST_PREFIXES)
                phone_or_none = spaced_phone(f"{prefix}{rng.randrange(PHONE_BLOCK):07d}")
                signed_in = False
                payer = None
            line = {
                "type": "order",
                "order_number": order_number(j),
                "placed_at": placed.isoformat(),
                "email": email,
                "phone": phone_or_none,
                "payment_method": method,
                "guest": not signed_in,
                "account_id": f"c{order_accounts[j]}" if signed_in else None,
            }
            if method == "paypal":
                line["paypal_payer_id"] = payer or new_payer()
                line["paypal_email"] = email
            out.write(dumps(line) + "\n")
    return Dataset(accounts, orders, phone_offset, emails, order_accounts)


# --- the database ---------------------------------------------------------------------------------


# --- the import -----------------------------------------------------------------------------------


class AutoAnalyze:
    """Stands in for autovacuum's ANALYZE on a server that runs with ``autovacuum = off``.

    Without fresh statistics the importer's ``IN (...)`` look-ups get generic plans that scan every
    identity of a kind per batch, and the import slows down quadratically. A production server has
    autovacuum on; this does what its launcher would: every ``autovacuum_naptime``, ANALYZE each table
    with more than ``threshold + scale_factor * reltuples`` rows changed since its last ANALYZE. It
    runs in the import loop, so its time counts in the import's wall time (and is reported apart).
    """

    def __init__(self) -> None:
        session = db.session
        rows = session.execute(
            text(
                "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum_naptime', "
                "'autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor')"
            )
        )
        settings = {str(name): str(setting) for name, setting in rows}
        session.rollback()
        self.naptime = float(settings["autovacuum_naptime"])
        self.threshold = float(settings["autovacuum_analyze_threshold"])
        self.scale_factor = float(settings["autovacuum_analyze_scale_factor"])
        self.next_run = time.perf_counter() + self.naptime
        self.runs = 0
        self.seconds = 0.0

    def __call__(self, now: float) -> None:
        if now < self.next_run:
            return
        session = db.session
        stale = session.execute(
            text(
                "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                "WHERE s.n_mod_since_analyze > :threshold + :scale * greatest(c.reltuples, 0)"
            ),
            {"threshold": self.threshold, "scale": self.scale_factor},
        ).scalars()
        for table in list(stale):
            session.execute(text(f'ANALYZE "{table}"'))
            self.runs += 1
        session.commit()
        done = time.perf_counter()
        self.seconds += done - now
        self.next_run = done + self.naptime


@dataclass(slots=True)
class ImportResult:
    summary: Summary
    seconds: float
    account_seconds: float  # until the first batch past the last account line
    autoanalyze: AutoAnalyze | None


def run_import(
    path: Path,
    total: int,
    accounts: int,
    batch_size: int,
    workers: int,
    autoanalyze: AutoAnalyze | None,
) -> ImportResult:
    """Import the file as ``recovery import`` does: commit after every yielded batch."""
    session = db.session
    importer = Importer(session, batch_size, workers)
    started = last_report = time.perf_counter()
    account_seconds = 0.0
    with path.open("rb") as lines:
        for summary in importer.run(bounded_lines(lines)):  # the CLI's reader
            session.commit()  # a batch boundary: durable progress, flat memory
            now = time.perf_counter()
            if autoanalyze is not None:
                autoanalyze(now)
            if not account_seconds and summary.lines >= accounts:
                account_seconds = now - started
            if now - last_report >= 15:
                last_report = now
                rate = summary.lines / (now - started)
                print(
                    f"  ... {summary.lines:>10,} / {total:,} lines, {rate:,.0f} rows/s so far",
                    flush=True,
                )
    return ImportResult(
        importer.summary, time.perf_counter() - started, account_seconds, autoanalyze
    )


def print_profile(profile: cProfile.Profile, destination: str) -> None:
    profile.dump_stats(destination)
    for order in ("tottime", "cumulative"):
        print(f"\nimport profile, top 30 by {order} (full stats in {destination}):")
        pstats.Stats(profile, stream=sys.stdout).sort_stats(order).print_stats(30)


# --- the lookups ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Probe:
    hints: Hints
    expected: str | None  # the shop id of the account that must rank first; None: no candidate


@dataclass(slots=True)
class Scenario:
    name: str
    probe: Callable[[random.Random], Probe]


def scenarios(data: Dataset) -> list[Scenario]:
    def email_hit(rng: random.Random) -> Probe:
        i = rng.randrange(data.accounts)
        return Probe(Hints(emails=[data.emails[i]]), f"c{i}")

    def email_miss(rng: random.Random) -> Probe:
        return Probe(
            Hints(emails=[f"brak.konta.{rng.randrange(10**9)}@{rng.choice(DOMAINS)}"]), None
        )

    def phone_hit(rng: random.Random) -> Probe:
        i = rng.randrange(data.accounts)
        return Probe(Hints(phones=[data.phone(i)]), f"c{i}")

    def phone_miss(rng: random.Random) -> Probe:
        digits = f"{rng.choice(MISS_PREFIXES)}{rng.randrange(PHONE_BLOCK):07d}"
        return Probe(Hints(phones=[spaced_phone(digits)]), None)

    def order_hit(rng: random.Random) -> Probe:
        while True:  # an order placed signed in, so it must lead to its account
            j = rng.randrange(data.orders)
            if data.order_accounts[j] != NO_ACCOUNT:
                return Probe(Hints(order_numbers=[order_number(j)]), f"c{data.order_accounts[j]}")

    def order_miss(rng: random.Random) -> Probe:
        return Probe(Hints(order_numbers=[f"PL-2024-{rng.randrange(10**8):08d}"]), None)

    return [
        Scenario("email hit", email_hit),
        Scenario("email miss", email_miss),
        Scenario("phone hit", phone_hit),
        Scenario("phone miss", phone_miss),
        Scenario("order number hit", order_hit),
        Scenario("order number miss", order_miss),
    ]


@dataclass(slots=True)
class Timing:
    name: str
    samples_ms: list[float]
    correct: int

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def measure(scenario: Scenario, rng: random.Random, lookups: int, warmup: int) -> Timing:
    session = db.session
    samples: list[float] = []
    correct = 0
    for n in range(warmup + lookups):
        probe = scenario.probe(rng)
        started = time.perf_counter_ns()
        candidates = ResolutionService(session).resolve(probe.hints)
        elapsed_ms = (time.perf_counter_ns() - started) / 1e6
        session.rollback()  # one transaction per lookup, like one API request
        if n < warmup:
            continue
        samples.append(elapsed_ms)
        if probe.expected is None:
            correct += not candidates
        else:
            correct += bool(candidates) and candidates[0].account.external_id == probe.expected
    return Timing(scenario.name, samples, correct)


def autovacuum_workers() -> int:
    """Autovacuum workers busy in this database now: they compete with the lookups for the CPUs."""
    session = db.session
    busy = session.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'autovacuum worker' AND datname = current_database()"
        )
    ).scalar_one()
    session.rollback()
    return int(busy)


def print_timings(timings: list[Timing]) -> None:
    header = f"{'lookup':<18} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  {'as expected':>11}  p99"
    print(header)
    print("-" * len(header))
    for timing in timings:
        p99 = timing.percentile(0.99)
        verdict = "ok" if p99 <= TARGET_P99_MS else "SLOW"
        print(
            f"{timing.name:<18} {len(timing.samples_ms):>6} {timing.percentile(0.50):>8.2f} "
            f"{p99:>8.2f} {max(timing.samples_ms):>8.2f}  "
            f"{timing.correct:>5}/{len(timing.samples_ms):<5}  {verdict}"
        )


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Import synthetic accounts and orders into a fresh PostgreSQL database, then "
        "time exact identity resolution.",
    )
    parser.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS)
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_ACCOUNTS:,} accounts and {QUICK_ORDERS:,} orders",
    )
    parser.add_argument("--lookups", type=int, default=2000, help="timed lookups per kind")
    parser.add_argument("--warmup", type=int, default=200, help="untimed lookups per kind first")
    parser.add_argument("--batch-size", type=int, default=int(DEFAULTS["IMPORT_BATCH_SIZE"]))
    parser.add_argument(
        "--workers",
        type=int,
        help="processes validating lines (RECOVERY_IMPORT_WORKERS; default: CPUs, at most 4)",
    )
    parser.add_argument(
        "--database-url",
        default=ADMIN_URL,
        help="a PostgreSQL server (any database on it); the bench database is created next to it",
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--no-autoanalyze",
        action="store_true",
        help="on a server with autovacuum off, do not stand in for it during the import",
    )
    parser.add_argument("--seed", type=int, default=20251121)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the import; stats to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.orders = QUICK_ACCOUNTS, QUICK_ORDERS
    if args.accounts < 1 or args.orders < 0 or args.lookups < 1 or args.batch_size < 1:
        parser.error("--accounts, --lookups and --batch-size must be positive, --orders >= 0")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: the database is dropped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    admin = server_url(args.database_url)
    name = f"recovery_bench_{secrets.token_hex(4)}"
    url = admin.set(database=name).render_as_string(hide_password=False)
    total = args.accounts + args.orders

    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
        path = Path(tmp) / "import.ndjson"
        started = time.perf_counter()
        data = generate(path, args.accounts, args.orders, args.seed)
        print(
            f"generated {args.accounts:,} accounts + {args.orders:,} orders = {total:,} lines "
            f"({path.stat().st_size / 2**20:,.0f} MiB, seed {args.seed}) into a temporary file "
            f"in {time.perf_counter() - started:.1f} s (not timed below)",
            flush=True,
        )

        admin_execute(admin, f'CREATE DATABASE "{name}"')
        print(f"created database {name} on {admin.host}:{admin.port}", flush=True)
        try:
            migrate.upgrade(url)
            return run(args, url, path, data)
        finally:
            if args.keep:
                print(f"kept database {name}: {url}")
            else:
                admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                print(f"dropped database {name}")


def run(args: argparse.Namespace, url: str, path: Path, data: Dataset) -> int:
    total = data.accounts + data.orders
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEYS": "x" * 40,
            "IMPORT_BATCH_SIZE": args.batch_size,
            "IMPORT_WORKERS": args.workers,
        }
    )
    with app.app_context():
        try:
            return _run(args, path, data, total)
        finally:
            db.session.close()
            db.dispose()


def _run(args: argparse.Namespace, path: Path, data: Dataset, total: int) -> int:
    session = db.session
    version = session.execute(text("SHOW server_version")).scalar_one()
    shared_buffers = session.execute(text("SHOW shared_buffers")).scalar_one()
    session.rollback()
    autovacuum = session.execute(text("SHOW autovacuum")).scalar_one()
    session.rollback()
    print(
        f"PostgreSQL {version}, shared_buffers {shared_buffers}, autovacuum {autovacuum}, "
        f"batch size {args.batch_size}, {current_app.config['IMPORT_WORKERS']} validation workers"
    )
    autoanalyze = None
    if autovacuum == "off" and not args.no_autoanalyze:
        autoanalyze = AutoAnalyze()
        print(
            f"autovacuum is off on this server: the import runs autovacuum's ANALYZE itself every "
            f"{autoanalyze.naptime:.0f} s (--no-autoanalyze to leave the statistics stale)"
        )

    print(f"\nimporting {total:,} lines ...", flush=True)
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    workers = current_app.config["IMPORT_WORKERS"]
    result = run_import(path, total, data.accounts, args.batch_size, workers, autoanalyze)
    if profile is not None:
        profile.disable()
    summary = result.summary
    rate = summary.lines / result.seconds
    print(
        f"import: {summary.lines:,} lines in {result.seconds:.1f} s = {rate:,.0f} rows/s "
        f"(target >= {TARGET_ROWS_PER_SECOND:,}: "
        f"{'ok' if rate >= TARGET_ROWS_PER_SECOND else 'BELOW TARGET'})"
    )
    if autoanalyze is not None:
        print(
            f"  including {autoanalyze.runs} ANALYZE runs standing in for autovacuum: "
            f"{autoanalyze.seconds:.1f} s"
        )
    if result.account_seconds and data.orders:
        order_seconds = result.seconds - result.account_seconds
        print(
            f"  account lines {data.accounts / result.account_seconds:,.0f} rows/s, "
            f"order lines {data.orders / order_seconds:,.0f} rows/s (split at the batch boundary)"
        )
    print(f"  load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"  {summary.accepted:,} accepted ({summary.created:,} created, {summary.updated:,} "
        f"updated, {summary.unchanged:,} unchanged), {summary.rejected:,} rejected"
    )
    if profile is not None:
        print_profile(profile, args.profile)
    if summary.rejected:
        for error in summary.errors[:20]:
            print(f"  line {error.line}: {error.error.code}: {error.error.detail}")
        print("FAILED: the synthetic data must import without rejections")
        return 1

    started = time.perf_counter()
    session.execute(text("ANALYZE"))
    session.commit()
    counts = {
        table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in ("account", "identity", "shop_order")
    }
    size = session.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
    print(
        f"ANALYZE in {time.perf_counter() - started:.1f} s; "
        + ", ".join(f"{table} {count:,}" for table, count in counts.items())
        + f" rows; database {size.scalar_one()}"
    )
    session.rollback()

    print(f"\nexact resolution: {args.warmup} warm-up + {args.lookups:,} timed lookups each")
    vacuuming_before = autovacuum_workers()
    rng = random.Random(args.seed + 1)
    timings = [measure(s, rng, args.lookups, args.warmup) for s in scenarios(data)]
    print_timings(timings)
    print(
        f"(autovacuum workers busy in this database: {vacuuming_before} before the lookups, "
        f"{autovacuum_workers()} after; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs)"
    )
    unexpected = [t.name for t in timings if t.correct != len(t.samples_ms)]
    if unexpected:
        print(f"FAILED: unexpected candidates for {', '.join(unexpected)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
