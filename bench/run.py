"""The benchmark of issue 5: the tap at Gong's speed limit, against a bare loop, and at scale.

Run from the repository root with the project's environment (`bin/setup` creates `.venv`):

    .venv/bin/python -m bench.run              # everything, 2 to 3 minutes on 2 cores
    .venv/bin/python -m bench.run --quick      # smaller worlds, one try each, under a minute
    .venv/bin/python -m bench.run --profile    # also cProfile the tap's main thread

The Gong stand-in (tests/gong_standin.py) runs in this process, which does nothing else while a
run lasts but read the child's peak memory every 20 ms. The tap (`python -m tap_gong_flows
--config ...`) and the bare loop (bench/bare_loop.py) each run as their own subprocess with
stdout to a file; their CPU time (user + sys, every thread) comes from os.wait4, their peak RSS
from /proc, so the stand-in's CPU and memory never count.
CPU figures take the least of --repeat tries: other work on the machine only ever adds to them.
It prints one table, each figure beside its goal (issues 5 and 12), and exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from tests.gong_standin import GongStandIn, World, make_world  # noqa: E402

GONG_CALLS_PER_SECOND = 3  # Gong's default limit, which the stand-in enforces in part 1
FLOWS_PER_PAGE = 100  # the stand-in's page size, and Gong's
GOAL_OWNERS = 5000  # where issue 5 sets the STATE and per-owner goals
# Issue 12: within twice the bare loop's CPU per record, on the SDK's own record path. (Issue 5
# asked 1.5, met with a private SDK override, dropped because at Gong's 300 records a second the
# difference is about 1 ms of CPU a second.)
RECORD_CPU_GOAL = 2.0
FAST = {"max_requests_per_second": 1000}  # parts 2-4 measure CPU, not the rate limit

# Python's default buffering in every child, so a shell's PYTHONUNBUFFERED=1 (common in
# containers) does not turn the bare loop's every line into a write() and skew the comparison.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@dataclass
class Child:
    """One finished subprocess, as the kernel accounted for it."""

    wall: float  # seconds from spawn to exit
    cpu: float  # user + sys seconds, every thread included
    peak_rss_mb: float
    started: float  # time.monotonic() at spawn, to line up with the stand-in's request log
    stdout: Path


def peak_rss_kib(pid: int) -> int:
    """The process's VmHWM so far, 0 once it is gone.

    Not ru_maxrss: Linux carries the parent's high-water mark into a child across fork and
    exec, so ru_maxrss would report this process (stand-in, request log) instead of the tap.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_child(command: list[str], workdir: Path, name: str) -> Child:
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    peak = 0
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.monotonic()
        # Popen returns once the child has exec'd, so every VmHWM read is the child's own.
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT, env=CHILD_ENV)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, peak_rss_kib(process.pid))  # it only grows: the last read is the peak
            time.sleep(0.02)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        log = err.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} exited with {process.returncode}; the end of its log:\n{log}")
    return Child(wall, usage.ru_utime + usage.ru_stime, peak / 1024, started, out)


def owners_of(world: World) -> list[str]:
    return [u["emailAddress"] for u in world.users if u.get("emailAddress")]


def company_world(owners: int, flows: int) -> World:
    """Every owner sees the same `flows` Company flows: the stand-in's work per page stays small."""
    return make_world(owners=owners, company_flows=flows, personal_per_owner=0, shared_per_owner=0)


def write_config(gong: GongStandIn, owners: list[str], path: Path, **settings: object) -> Path:
    config = {
        "access_key": gong.access_key,
        "access_key_secret": gong.access_key_secret,
        "api_url": gong.url,
        "flow_owner_emails": owners,
        **settings,
    }
    path.write_text(json.dumps(config))
    return path


def run_tap(
    gong: GongStandIn, owners: list[str], workdir: Path, name: str, **settings: object
) -> Child:
    config = write_config(gong, owners, workdir / f"{name}.json", **settings)
    command = [sys.executable, "-m", "tap_gong_flows", "--config", str(config)]
    return run_child(command, workdir, name)


def run_bare(gong: GongStandIn, owners: list[str], workdir: Path, name: str) -> Child:
    config = write_config(gong, owners, workdir / f"{name}.json")
    command = [sys.executable, "-m", "bench.bare_loop", "--config", str(config)]
    return run_child(command, workdir, name)


@dataclass
class Output:
    records: int
    states: int
    last_state_bytes: int
    largest_state_bytes: int


def read_output(path: Path) -> Output:
    """Count the tap's RECORD and STATE messages and measure its STATE lines, newline excluded."""
    records = states = last = largest = 0
    with path.open("rb") as lines:
        for line in lines:
            kind = line[:20]
            if b'"RECORD"' in kind:
                records += 1
            elif b'"STATE"' in kind:
                states += 1
                last = len(line.rstrip(b"\n"))
                largest = max(largest, last)
    return Output(records, states, last, largest)


# Part 1: wall time over the floor, with Gong's limit enforced


@dataclass
class WallRun:
    latency: float
    minimum: int  # pages x owners
    floor: float  # minimum / 3 s
    child: Child
    requests: int
    rate_limited: int  # 429s
    startup: float  # spawn to the first request reaching Gong
    span: float  # first request to the last, as Gong saw them arrive
    tightest_window: float  # least time from request n to n+3: under 1 s, Gong answers 429
    in_flight: int  # most requests open at once


def wall_run(latency: float, owners: int, workdir: Path) -> WallRun:
    world = make_world(owners=owners)  # the world: under 100 flows, one page an owner
    with GongStandIn(world, latency=latency, rate_limit=GONG_CALLS_PER_SECOND) as gong:
        child = run_tap(gong, owners_of(world), workdir, f"wall-{latency}")  # tap defaults
        log = list(gong.requests)
    arrivals = sorted(r.time for r in log)
    windows = [b - a for a, b in zip(arrivals, arrivals[GONG_CALLS_PER_SECOND:], strict=False)]
    # a request is open from its arrival until the stand-in answers, `latency` later
    events = sorted([(t, 1) for t in arrivals] + [(t + latency, -1) for t in arrivals])
    open_now = in_flight = 0
    for _, step in events:
        open_now += step
        in_flight = max(in_flight, open_now)
    return WallRun(
        latency=latency,
        minimum=owners,
        floor=owners / GONG_CALLS_PER_SECOND,
        child=child,
        requests=len(log),
        rate_limited=sum(r.status == 429 for r in log),
        startup=arrivals[0] - child.started,
        span=arrivals[-1] - arrivals[0],
        tightest_window=min(windows, default=float("inf")),
        in_flight=in_flight,
    )


# Parts 2 to 4: the tap and the bare loop over the same pages, no latency, no limit


@dataclass
class Pair:
    """The tap and the bare loop over the same owners: the least CPU of `repeat` tries each."""

    owners: int
    records: int
    tap: Child
    bare: Child
    out: Output  # what the tap wrote, from its last try


def pair(
    gong: GongStandIn,
    owners: list[str],
    workdir: Path,
    name: str,
    *,
    flows: int,
    repeat: int,
    bare_of: Pair | None = None,
    **settings: t.Any,
) -> Pair:
    """`bare_of`: reuse that pair's bare-loop runs (same owners) instead of running them again."""
    taps, bares = [], []
    for n in range(repeat):
        taps.append(run_tap(gong, owners, workdir, f"{name}-tap{n}", **FAST, **settings))
        if bare_of is None:
            bares.append(run_bare(gong, owners, workdir, f"{name}-bare{n}"))
    if bare_of is not None:
        return Pair(
            len(owners),
            bare_of.records,
            min(taps, key=lambda c: c.cpu),
            bare_of.bare,
            read_output(taps[-1].stdout),
        )
    tap = min(taps, key=lambda c: c.cpu)
    bare = min(bares, key=lambda c: c.cpu)
    tap.peak_rss_mb = max(c.peak_rss_mb for c in taps)
    out = read_output(taps[-1].stdout)
    with bares[-1].stdout.open("rb") as lines:
        bare_records = sum(1 for _ in lines)
    expected = len(owners) * flows
    if out.records != expected or bare_records != expected:
        raise SystemExit(
            f"{name}: expected {expected} records, the tap emitted {out.records} and the bare "
            f"loop {bare_records}"
        )
    return Pair(len(owners), expected, tap, bare, out)


def per_unit(high: float, low: float, units: int) -> float:
    """The cost of one more unit: start-up and other fixed costs cancel out."""
    return (high - low) / units


def profile_tap(gong: GongStandIn, owners: list[str], workdir: Path, name: str) -> None:
    """cProfile the tap's main thread: records, messages, STATE (not the fetching threads)."""
    config = write_config(gong, owners, workdir / f"{name}.json", **FAST)
    stats = workdir / f"{name}.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "tap_gong_flows"]
    run_child([*command, "--config", str(config)], workdir, name)
    for order in ("tottime", "cumulative"):
        print(f"\n--- cProfile of the tap's main thread, {name}, by {order} ---")
        pstats.Stats(str(stats), stream=sys.stdout).sort_stats(order).print_stats(25)


# Presentation


@dataclass
class Figure:
    name: str
    measured: str
    goal: str = ""
    passed: bool | None = None  # None: a figure without a goal


def print_table(figures: list[Figure]) -> None:
    rows = [("Figure", "Measured", "Goal", "Result")]
    for f in figures:
        result = "" if f.passed is None else ("PASS" if f.passed else "FAIL")
        rows.append((f.name, f.measured, f.goal, result))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


def wall_figures(w: WallRun) -> list[Figure]:
    at = f"at {w.latency * 1000:.0f} ms"
    ratio = w.child.wall / w.floor
    return [
        Figure(
            f"wall / floor {at}",
            f"{ratio:.3f} ({w.child.wall:.2f} s / {w.floor:.1f} s)",
            "<= 1.05",
            ratio <= 1.05,
        ),
        Figure(
            f"  first request to last answer / floor {at}",
            f"{(w.span + w.latency) / w.floor:.3f} (start-up and exit left out)",
        ),
        Figure(
            f"  429s received {at}", f"{w.rate_limited} of {w.requests}", "0", w.rate_limited == 0
        ),
        Figure(
            f"  requests over the minimum {at}",
            f"{w.requests - w.minimum} (minimum {w.minimum})",
            "0",
            w.requests == w.minimum,
        ),
    ]


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one report, in order
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller worlds, one try each")
    parser.add_argument("--repeat", type=int, help="tries of each CPU run (default 2, quick 1)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the tap")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = args.repeat or (1 if quick else 2)
    record_owners = (100, 500) if quick else (100, 2000)  # x 100 flows: 10,000 and 200,000
    owner_counts = (100, 1000) if quick else (100, GOAL_OWNERS)  # x 1 flow
    wall_owners = 30
    started = time.monotonic()

    print(
        f"tap-gong-flows benchmark{' --quick' if quick else ''}: Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs, {repeat} tr{'y' if repeat == 1 else 'ies'} per CPU figure.",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)

        print("1/3 wall time at 50 ms and 600 ms latency, Gong's 3 calls/s enforced", flush=True)
        walls = [wall_run(latency, wall_owners, workdir) for latency in (0.05, 0.6)]

        few, many = record_owners
        print(
            f"2/3 CPU per record and peak memory: {few} and {many} owners x 100 flows", flush=True
        )
        with GongStandIn(company_world(many, FLOWS_PER_PAGE)) as gong:
            owners = owners_of(gong.world)
            rec_low = pair(
                gong, owners[:few], workdir, "records-low", flows=FLOWS_PER_PAGE, repeat=repeat
            )
            rec_high = pair(
                gong, owners, workdir, "records-high", flows=FLOWS_PER_PAGE, repeat=repeat
            )
            if args.profile:
                profile_tap(gong, owners[:500], workdir, "500-owners-x-100-flows")

        low_owners, high_owners = owner_counts
        print(
            f"3/3 STATE and per-owner CPU: {low_owners} and {high_owners} owners x 1 flow",
            flush=True,
        )
        with GongStandIn(company_world(high_owners, 1)) as gong:
            owners = owners_of(gong.world)
            own_low = pair(gong, owners[:low_owners], workdir, "owners-low", flows=1, repeat=repeat)
            own_high = pair(gong, owners, workdir, "owners-high", flows=1, repeat=repeat)
            # the same with one request at a time: the tap then fetches without threads
            one = {"max_concurrent_requests": 1}
            seq_low = pair(
                gong,
                owners[:low_owners],
                workdir,
                "seq-low",
                flows=1,
                repeat=repeat,
                bare_of=own_low,
                **one,
            )
            seq_high = pair(
                gong, owners, workdir, "seq-high", flows=1, repeat=repeat, bare_of=own_high, **one
            )
            if args.profile:
                profile_tap(gong, owners[:2000], workdir, "2000-owners-x-1-flow")

    extra_records = rec_high.records - rec_low.records
    tap_per_record = per_unit(rec_high.tap.cpu, rec_low.tap.cpu, extra_records)
    bare_per_record = per_unit(rec_high.bare.cpu, rec_low.bare.cpu, extra_records)
    record_ratio = tap_per_record / bare_per_record
    growth = rec_high.tap.peak_rss_mb - rec_low.tap.peak_rss_mb
    extra_owners = own_high.owners - own_low.owners
    tap_extra = own_high.tap.cpu - own_low.tap.cpu
    bare_extra = own_high.bare.cpu - own_low.bare.cpu
    overhead = tap_extra - bare_extra
    goal_extra = GOAL_OWNERS - own_low.owners
    scaled = overhead * goal_extra / extra_owners  # the same figure when --quick ran fewer owners

    figures = [*wall_figures(walls[0]), *wall_figures(walls[1])]
    figures.append(
        Figure(
            "CPU per record, tap / bare loop",
            f"{record_ratio:.2f} ({us(tap_per_record)} / {us(bare_per_record)})",
            f"<= {RECORD_CPU_GOAL}",
            record_ratio <= RECORD_CPU_GOAL,
        )
    )
    figures.append(
        Figure(
            f"peak RSS at {rec_high.records:,} minus {rec_low.records:,} flows",
            f"{growth:+.1f} MB ({rec_high.tap.peak_rss_mb:.1f} - {rec_low.tap.peak_rss_mb:.1f})",
            "< 20 MB",
            growth < 20,
        )
    )
    for run in (own_low, own_high):
        size = run.out.largest_state_bytes
        figures.append(
            Figure(
                f"largest STATE message at {run.owners:,} owners",
                f"{size} bytes (of {run.out.states} STATEs)",
                "< 1 KB" if run is own_high else "",
                size < 1024 if run is own_high else None,
            )
        )
    if extra_owners == goal_extra:
        figures.append(
            Figure(
                f"tap CPU for {extra_owners:,} more owners, beyond the bare loop's",
                f"{overhead:.2f} s ({tap_extra:.2f} - {bare_extra:.2f})",
                "< 2 s",
                overhead < 2,
            )
        )
    else:
        figures.append(
            Figure(
                f"tap CPU for {goal_extra:,} more owners, beyond the bare loop's, "
                f"scaled from {extra_owners:,}",
                f"{scaled:.2f} s ({overhead:.2f} s measured)",
                "< 2 s",
                scaled < 2,
            )
        )

    seq_overhead = (seq_high.tap.cpu - seq_low.tap.cpu) - bare_extra
    figures.append(
        Figure(
            f"  the same with max_concurrent_requests 1 (no threads), scaled to {goal_extra:,}",
            f"{seq_overhead * goal_extra / extra_owners:.2f} s "
            f"({seq_high.tap.cpu - seq_low.tap.cpu:.2f} - {bare_extra:.2f})",
            "",
            None,
        )
    )

    print()
    print_table(figures)
    print()
    print(
        f"Wall (part 1): {wall_owners} owners x 1 page (make_world), stand-in rate_limit=3, tap "
        "defaults\n(max_requests_per_second 3, max_concurrent_requests 4). Floor = minimum "
        "requests / 3 s.\nWall = the tap process from spawn to exit, start-up included:"
    )
    for w in walls:
        exit_time = w.child.wall - w.startup - w.span - w.latency
        print(
            f"  {w.latency * 1000:3.0f} ms: {w.startup:.2f} s start-up to the first request + "
            f"{w.span:.2f} s to the last + {w.latency:.2f} s its answer + {exit_time:.2f} s to "
            f"exit; 4 requests at least {w.tightest_window:.3f} s apart (under 1 s: a 429); "
            f"at most {w.in_flight} in flight"
        )
    print(
        "CPU per record (part 2): the tap against bench/bare_loop.py (requests.Session().get, "
        ".json(),\none JSON line per record) over the same pages, no latency, no limit, tap "
        "max_requests_per_second\n1000. Per record = CPU difference between the two worlds / "
        f"{extra_records:,} records, so start-up cancels\nout; it includes one request per "
        f"{FLOWS_PER_PAGE} records. Least CPU of {repeat} tr{'y' if repeat == 1 else 'ies'}:"
    )
    for run in (rec_low, rec_high):
        print(
            f"  {run.records:>7,} flows: tap {run.tap.cpu:6.2f} s CPU, {run.tap.wall:6.2f} s wall, "
            f"{run.tap.peak_rss_mb:5.1f} MB peak RSS; bare loop {run.bare.cpu:5.2f} s CPU"
        )
    print(
        f"  whole runs at {rec_high.records:,} flows, start-up included: tap / bare loop = "
        f"{rec_high.tap.cpu / rec_high.bare.cpu:.2f}"
    )
    print(
        f"Owners (part 3): 1 flow each. Overhead = (tap CPU at {own_high.owners} owners - at "
        f"{own_low.owners}) - (the same\ndifference for the bare loop): what the tap spends on "
        "each owner beyond its request and record."
    )
    for run in (own_low, own_high):
        print(
            f"  {run.owners:>5,} owners: tap {run.tap.cpu:6.2f} s CPU, {run.tap.wall:6.2f} s wall; "
            f"bare loop {run.bare.cpu:5.2f} s CPU; last STATE {run.out.last_state_bytes} bytes"
        )
    print(
        f"  each further owner: tap {tap_extra / extra_owners * 1000:.2f} ms CPU, bare loop "
        f"{bare_extra / extra_owners * 1000:.2f} ms"
    )
    print(f"Benchmark took {time.monotonic() - started:.0f} s.")
    return 0 if all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
