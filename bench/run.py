"""The benchmark of issues 5, 12 and 20: the tap at Gong's speed limit, against a bare loop.

Run from the repository root with the project's environment (`bin/setup` creates `.venv`):

    .venv/bin/python -m bench.run              # everything, 4 to 5 minutes on 2 cores
    .venv/bin/python -m bench.run --quick      # smaller worlds, one try each, under a minute
    .venv/bin/python -m bench.run --profile    # also cProfile the tap's main thread
    .venv/bin/python -m bench.run --part instances  # part 4 (issue 20) alone, about 2.5 minutes

Parts 1 to 3 (issues 5 and 12) sync flows by owner; part 4 (issue 20) syncs flow_instances and
flow_instance_changes over 100,000 CRM ids (--quick: 10,000): STATE bytes per open instance,
STATE messages carrying the instance sets, CPU per instance record against a bare loop, calls.

The Gong stand-in (tests/gong_standin.py) runs in this process, which does nothing else while a
run lasts but read the child's peak memory every 20 ms. The tap (`python -m tap_gong_flows
--config ...`) and the bare loop (bench/bare_loop.py) each run as their own subprocess with
stdout to a file; their CPU time (user + sys, every thread) comes from os.wait4, their peak RSS
from /proc, so the stand-in's CPU and memory never count.
CPU figures take the least of --repeat tries: other work on the machine only ever adds to them.
It prints one table, each figure beside its goal (issues 5, 12 and 20), and exits 1 if a goal is
missed.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from tap_gong_flows import instance_state  # noqa: E402
from tests.gong_standin import PROSPECTS, GongStandIn, World, add_engage, make_world  # noqa: E402

GONG_CALLS_PER_SECOND = 3  # Gong's default limit, which the stand-in enforces in part 1
FLOWS_PER_PAGE = 100  # the stand-in's page size, and Gong's
GOAL_OWNERS = 5000  # where issue 5 sets the STATE and per-owner goals
# Issue 12: within twice the bare loop's CPU per record, on the SDK's own record path. (Issue 5
# asked 1.5, met with a private SDK override, dropped because at Gong's 300 records a second the
# difference is about 1 ms of CPU a second.)
RECORD_CPU_GOAL = 2.0
# Parts 2 to 4 measure CPU, not the rate limit
FAST: dict[str, t.Any] = {"max_requests_per_second": 1000}
# Issue 20: the flow_instances bookmark at 100,000 CRM ids (one open instance each)
GOAL_CRM_IDS = 100_000
INSTANCE_STREAMS = ("flow_instances", "flow_instance_changes")
IDS_PER_CALL = 100  # the tap's CRM ids a POST /v2/flows/prospects (id_batches.FIRST_SIZE)
STATE_BYTES_GOAL = 40  # len(json.dumps(bookmark)) per open instance it tracks
SETS_STATES_GOAL = 2  # STATE messages with the instance sets: the pass's end, the run's last

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


def tap_args(config: Path, catalog: Path | None) -> list[str]:
    return ["--config", str(config), *(["--catalog", str(catalog)] if catalog else [])]


def run_tap(
    gong: GongStandIn,
    owners: list[str],
    workdir: Path,
    name: str,
    *,
    catalog: Path | None = None,
    **settings: object,
) -> Child:
    """`catalog`: the streams to sync (None: the tap's defaults)."""
    config = write_config(gong, owners, workdir / f"{name}.json", **settings)
    command = [sys.executable, "-m", "tap_gong_flows", *tap_args(config, catalog)]
    return run_child(command, workdir, name)


def run_bare(
    gong: GongStandIn,
    owners: list[str],
    workdir: Path,
    name: str,
    *,
    instances: bool = False,
    **settings: object,
) -> Child:
    """`instances`: the prospects endpoint over `crm_prospect_ids_file` instead of flows."""
    config = write_config(gong, owners, workdir / f"{name}.json", **settings)
    command = [sys.executable, "-m", "bench.bare_loop", "--config", str(config)]
    return run_child([*command, *(["--instances"] if instances else [])], workdir, name)


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


def profile_tap(
    gong: GongStandIn,
    owners: list[str],
    workdir: Path,
    name: str,
    *,
    catalog: Path | None = None,
    **settings: object,
) -> None:
    """cProfile the tap's main thread: records, messages, STATE (not the fetching threads)."""
    config = write_config(gong, owners, workdir / f"{name}.json", **FAST, **settings)
    stats = workdir / f"{name}.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "tap_gong_flows"]
    run_child([*command, *tap_args(config, catalog)], workdir, name)
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


Report = tuple[list[Figure], list[str]]  # a part's figures, and the notes under the table


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


def flows_parts(quick: bool, repeat: int, profile: bool, workdir: Path) -> Report:  # noqa: PLR0915
    """Parts 1 to 3 (issues 5 and 12): the figures, and the notes printed under the table."""
    record_owners = (100, 500) if quick else (100, 2000)  # x 100 flows: 10,000 and 200,000
    owner_counts = (100, 1000) if quick else (100, GOAL_OWNERS)  # x 1 flow
    wall_owners = 30
    print("1/4 wall time at 50 ms and 600 ms latency, Gong's 3 calls/s enforced", flush=True)
    walls = [wall_run(latency, wall_owners, workdir) for latency in (0.05, 0.6)]

    few, many = record_owners
    print(f"2/4 CPU per record and peak memory: {few} and {many} owners x 100 flows", flush=True)
    with GongStandIn(company_world(many, FLOWS_PER_PAGE)) as gong:
        owners = owners_of(gong.world)
        rec_low = pair(
            gong, owners[:few], workdir, "records-low", flows=FLOWS_PER_PAGE, repeat=repeat
        )
        rec_high = pair(gong, owners, workdir, "records-high", flows=FLOWS_PER_PAGE, repeat=repeat)
        if profile:
            profile_tap(gong, owners[:500], workdir, "500-owners-x-100-flows")

    low_owners, high_owners = owner_counts
    print(
        f"3/4 STATE and per-owner CPU: {low_owners} and {high_owners} owners x 1 flow",
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
        if profile:
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

    notes: list[str] = []
    notes.append(
        f"Wall (part 1): {wall_owners} owners x 1 page (make_world), stand-in rate_limit=3, tap "
        "defaults\n(max_requests_per_second 3, max_concurrent_requests 4). Floor = minimum "
        "requests / 3 s.\nWall = the tap process from spawn to exit, start-up included:"
    )
    for w in walls:
        exit_time = w.child.wall - w.startup - w.span - w.latency
        notes.append(
            f"  {w.latency * 1000:3.0f} ms: {w.startup:.2f} s start-up to the first request + "
            f"{w.span:.2f} s to the last + {w.latency:.2f} s its answer + {exit_time:.2f} s to "
            f"exit; 4 requests at least {w.tightest_window:.3f} s apart (under 1 s: a 429); "
            f"at most {w.in_flight} in flight"
        )
    notes.append(
        "CPU per record (part 2): the tap against bench/bare_loop.py (requests.Session().get, "
        ".json(),\none JSON line per record) over the same pages, no latency, no limit, tap "
        "max_requests_per_second\n1000. Per record = CPU difference between the two worlds / "
        f"{extra_records:,} records, so start-up cancels\nout; it includes one request per "
        f"{FLOWS_PER_PAGE} records. Least CPU of {repeat} tr{'y' if repeat == 1 else 'ies'}:"
    )
    for run in (rec_low, rec_high):
        notes.append(
            f"  {run.records:>7,} flows: tap {run.tap.cpu:6.2f} s CPU, {run.tap.wall:6.2f} s wall, "
            f"{run.tap.peak_rss_mb:5.1f} MB peak RSS; bare loop {run.bare.cpu:5.2f} s CPU"
        )
    notes.append(
        f"  whole runs at {rec_high.records:,} flows, start-up included: tap / bare loop = "
        f"{rec_high.tap.cpu / rec_high.bare.cpu:.2f}"
    )
    notes.append(
        f"Owners (part 3): 1 flow each. Overhead = (tap CPU at {own_high.owners} owners - at "
        f"{own_low.owners}) - (the same\ndifference for the bare loop): what the tap spends on "
        "each owner beyond its request and record."
    )
    for run in (own_low, own_high):
        notes.append(
            f"  {run.owners:>5,} owners: tap {run.tap.cpu:6.2f} s CPU, {run.tap.wall:6.2f} s wall; "
            f"bare loop {run.bare.cpu:5.2f} s CPU; last STATE {run.out.last_state_bytes} bytes"
        )
    notes.append(
        f"  each further owner: tap {tap_extra / extra_owners * 1000:.2f} ms CPU, bare loop "
        f"{bare_extra / extra_owners * 1000:.2f} ms"
    )
    return figures, notes


# Part 4 (issue 20): the instance pass over CRM ids, no latency, no limit


@dataclass
class TimedWorld(World):
    """The stand-in's world, adding up the time its answers to POST /v2/flows/prospects take.

    The stand-in scans every instance for each call (about 10 ms at 100,000 prospects): time in
    which the tap waits, which its wall time includes and its CPU time does not.
    """

    answer_seconds: float = 0.0

    @classmethod
    def of(cls, world: World) -> TimedWorld:
        return cls(**{f.name: getattr(world, f.name) for f in dataclasses.fields(World)})

    def prospects_assigned(
        self, *, crm_ids: list[str] | None = None, instance_ids: list[str] | None = None
    ) -> list[dict[str, t.Any]]:
        started = time.perf_counter()
        try:
            return super().prospects_assigned(crm_ids=crm_ids, instance_ids=instance_ids)
        finally:
            self.answer_seconds += time.perf_counter() - started


def engage_world(prospects: int) -> TimedWorld:
    """One owner and one Company flow, then add_engage's prospects: prospect i has CRM id
    crm{i:06d} and one open instance (every 3rd also a finished one, which a query by CRM id
    does not answer), so a first pass finds as many open instances as CRM ids. add_engage also
    makes their tasks, which the instance streams never ask for."""
    world = make_world(
        owners=1, company_flows=1, personal_per_owner=0, shared_per_owner=0, workspaces=1
    )
    return TimedWorld.of(add_engage(world, prospects=prospects))


def instance_catalog(workdir: Path) -> Path:
    """The tap's --discover catalog with only the instance streams selected, as `meltano select`
    (and tests.conftest.selecting) does."""
    done = subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", "--discover"],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env=CHILD_ENV,
    )
    catalog = json.loads(done.stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in INSTANCE_STREAMS
    path = workdir / "instances-catalog.json"
    path.write_text(json.dumps(catalog))
    return path


@dataclass
class InstanceOutput:
    instances: int  # flow_instances records
    changes: int  # flow_instance_changes records
    states: int
    sets_states: int  # STATE messages whose flow_instances bookmark carries its "sets"
    largest_small_state: int  # bytes of the largest STATE message without them
    bookmark_bytes: int  # len(json.dumps()) of the last STATE's bookmarks.flow_instances
    tracked: int  # the open instances in that bookmark's sets

    @property
    def records(self) -> int:
        return self.instances + self.changes


def read_instance_output(path: Path) -> InstanceOutput:
    """Count the records of each instance stream and read every STATE (a few a run)."""
    instances = changes = states = sets_states = largest_small = 0
    last: dict[str, t.Any] = {}
    with path.open("rb") as lines:
        for line in lines:
            head = line[:60]
            if b'"RECORD"' in head:
                instances += b'"stream":"flow_instances"' in head
                changes += b'"stream":"flow_instance_changes"' in head
            elif b'"STATE"' in head:
                states += 1
                last = json.loads(line)["value"].get("bookmarks", {}).get("flow_instances", {})
                if "sets" in last:
                    sets_states += 1
                else:
                    largest_small = max(largest_small, len(line.rstrip(b"\n")))
    tracked = len(instance_state.decode(last["sets"])[0]) if "sets" in last else 0
    return InstanceOutput(
        instances, changes, states, sets_states, largest_small, len(json.dumps(last)), tracked
    )


@dataclass
class InstanceTry:
    child: Child
    calls: int  # POST /v2/flows/prospects requests Gong received
    answer_seconds: float  # the stand-in's time answering them


@dataclass
class InstanceRun:
    """The tap and the bare loop over the same CRM ids: the least CPU of `repeat` tries each."""

    ids: int
    tap: InstanceTry
    bare: Child
    out: InstanceOutput  # what the tap wrote, from its last try

    @property
    def expected_calls(self) -> int:
        return -(-self.ids // IDS_PER_CALL)


def instance_run(
    gong: GongStandIn, ids: list[str], workdir: Path, name: str, *, catalog: Path, repeat: int
) -> InstanceRun:
    world = t.cast("TimedWorld", gong.world)
    owners = owners_of(world)
    ids_file = workdir / f"{name}-ids.txt"
    ids_file.write_text("".join(f"{crm_id}\n" for crm_id in ids))
    settings = {"crm_prospect_ids_file": str(ids_file)}
    taps, bares = [], []
    for n in range(repeat):
        gong.reset_log()
        world.answer_seconds = 0.0
        child = run_tap(
            gong, owners, workdir, f"{name}-tap{n}", catalog=catalog, **FAST, **settings
        )
        calls = sum(r.path == PROSPECTS for r in gong.requests)
        taps.append(InstanceTry(child, calls, world.answer_seconds))
        bares.append(run_bare(gong, owners, workdir, f"{name}-bare{n}", instances=True, **settings))
    out = read_instance_output(taps[-1].child.stdout)
    with bares[-1].stdout.open("rb") as lines:
        bare_records = sum(1 for _ in lines)
    # a first pass: every open instance is new, so it has a change row
    if {out.instances, out.changes, out.tracked, bare_records // 2} != {len(ids)}:
        raise SystemExit(
            f"{name}: expected {len(ids)} instances, change rows and tracked open instances; "
            f"the tap emitted {out.instances} and {out.changes} and tracks {out.tracked}, the "
            f"bare loop wrote {bare_records} records"
        )
    tap = min(taps, key=lambda each: each.child.cpu)
    tap.child.peak_rss_mb = max(each.child.peak_rss_mb for each in taps)
    return InstanceRun(len(ids), tap, min(bares, key=lambda c: c.cpu), out)


def instance_part(quick: bool, repeat: int, profile: bool, workdir: Path) -> Report:
    """Part 4 (issue 20): the figures, and the notes printed under the table."""
    few, many = (1_000, 10_000) if quick else (10_000, GOAL_CRM_IDS)
    print(
        f"4/4 flow instances: {few:,} and {many:,} CRM ids, one open instance each (building the "
        f"world takes about {many // 7500} s)",
        flush=True,
    )
    world = engage_world(many)
    ids = world.crm_ids()
    catalog = instance_catalog(workdir)
    with GongStandIn(world) as gong:
        low = instance_run(
            gong, ids[:few], workdir, "instances-low", catalog=catalog, repeat=repeat
        )
        high = instance_run(gong, ids, workdir, "instances-high", catalog=catalog, repeat=repeat)
        if profile:
            ids_file = str(workdir / "instances-high-ids.txt")
            profile_tap(
                gong,
                owners_of(world),
                workdir,
                f"{many}-crm-ids",
                catalog=catalog,
                crm_prospect_ids_file=ids_file,
            )

    at = f"at {high.ids:,} CRM ids"
    out = high.out
    per_open = out.bookmark_bytes / out.tracked
    extra = high.out.records - low.out.records
    tap_per_record = per_unit(high.tap.child.cpu, low.tap.child.cpu, extra)
    bare_per_record = per_unit(high.bare.cpu, low.bare.cpu, extra)
    whole_tap = high.tap.child.cpu / out.records
    whole_bare = high.bare.cpu / out.records
    figures = [
        Figure(
            f"STATE bytes per open instance {at}",
            f"{per_open:.1f} ({out.bookmark_bytes:,} bytes / {out.tracked:,} open instances)",
            f"<= {STATE_BYTES_GOAL}",
            per_open <= STATE_BYTES_GOAL,
        ),
        Figure(
            f"  STATE messages carrying the instance sets {at}",
            f"{out.sets_states} (of {out.states} STATEs)",
            f"<= {SETS_STATES_GOAL}",
            out.sets_states <= SETS_STATES_GOAL,
        ),
        Figure(
            f"  largest STATE message without the sets {at}",
            f"{out.largest_small_state} bytes",
            "< 1 KB",
            out.largest_small_state < 1024,
        ),
        Figure(
            "CPU per instance record, tap / bare loop",
            f"{tap_per_record / bare_per_record:.2f} "
            f"({us(tap_per_record)} / {us(bare_per_record)})",
        ),
        Figure(
            f"  whole run {at}: CPU / records, tap / bare loop",
            f"{whole_tap / whole_bare:.2f} ({us(whole_tap)} / {us(whole_bare)})",
        ),
        Figure(
            f"POST /v2/flows/prospects calls {at}",
            f"{high.tap.calls:,}",
            f"= {high.expected_calls:,}",
            high.tap.calls == high.expected_calls,
        ),
        Figure(
            f"  wall time {at}",
            f"{high.tap.child.wall:.2f} s (the stand-in's answers {high.tap.answer_seconds:.2f} s, "
            f"the tap's CPU {high.tap.child.cpu:.2f} s)",
        ),
    ]
    tries = f"{repeat} tr{'y' if repeat == 1 else 'ies'}"
    notes = [
        f"Instances (part 4): add_engage over make_world(owners=1, company_flows=1), {many:,} "
        "prospects,\none open instance each. The tap syncs only flow_instances and "
        "flow_instance_changes from\ncrm_prospect_ids_file, with no state (a first pass: a "
        "change row per instance) and\nmax_requests_per_second 1000; the bare loop "
        "(bench/bare_loop.py --instances) posts the same\n"
        f"{IDS_PER_CALL} ids a call and writes each instance and its change row as a JSON line. "
        f"Per record = CPU\ndifference between {low.ids:,} and {high.ids:,} ids / {extra:,} "
        "records, so start-up cancels out. STATE\nbytes = len(json.dumps()) of the last STATE's "
        "bookmarks.flow_instances, over the open\ninstances its sets hold. Least CPU of "
        f"{tries}:"
    ]
    for run in (low, high):
        notes.append(
            f"  {run.ids:>7,} ids: tap {run.tap.child.cpu:6.2f} s CPU, {run.tap.child.wall:6.2f} s "
            f"wall ({run.tap.answer_seconds:5.2f} s the stand-in's answers), "
            f"{run.tap.child.peak_rss_mb:5.1f} MB peak RSS, {run.tap.calls:,} calls; bare loop "
            f"{run.bare.cpu:5.2f} s CPU"
        )
    return figures, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller worlds, one try each")
    parser.add_argument("--repeat", type=int, help="tries of each CPU run (default 2, quick 1)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the tap")
    parser.add_argument(
        "--part",
        choices=("all", "flows", "instances"),
        default="all",
        help="flows: parts 1 to 3 (issues 5 and 12); instances: part 4 (issue 20)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = args.repeat or (1 if quick else 2)
    started = time.monotonic()

    print(
        f"tap-gong-flows benchmark{' --quick' if quick else ''}: Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (other work inflates CPU "
        f"figures), {repeat} tr{'y' if repeat == 1 else 'ies'} per CPU figure.",
        flush=True,
    )
    figures: list[Figure] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        parts = [flows_parts, instance_part]
        if args.part != "all":
            parts = [flows_parts if args.part == "flows" else instance_part]
        for part in parts:
            part_figures, part_notes = part(quick, repeat, args.profile, workdir)
            figures += part_figures
            notes += part_notes

    print()
    print_table(figures)
    print()
    for note in notes:
        print(note)
    print(f"Benchmark took {time.monotonic() - started:.0f} s.")
    return 0 if all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
