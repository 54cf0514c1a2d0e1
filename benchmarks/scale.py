"""Regions planned in parallel on the task queue: `python -m benchmarks.scale [--quick]`.

Generated regions (the sample generator, a seed each) on PostgreSQL, every region planned
over a week as the night does (`fieldplan plan --all-regions`: one optimisation run per
region on the queue), once with one `fieldplan worker` process and once with two, each on a
database of its own seeded alike. Reported: wall time from handing the runs over until the
last one ended, jobs planned, and the speed-up. Then, while the two workers plan every region
again, `--clients` customers book through `uvicorn --workers 2` (the booking load benchmark's
clients), and afterwards nothing acknowledged may be lost and the stored plans must pass the
integrity check.

Bars (issue 20): speed-up >= 1.7 x with 2 workers on this 2-core machine; booking p95 <=
300 ms through the HTTP API; no booking lost; no plan defect. `--quick`: two smaller regions.
`--csv PATH` writes `metric,value` rows (`speedup_2_workers`, `booking_p95_ms`,
`bookings_lost`, ...).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from api.worker import QueueExecutor, drop_queue, make_queue
from benchmarks import booking_load
from benchmarks.databases import scratch_database, work_folder
from benchmarks.report import console, verdict
from fieldplan import importing, runs
from fieldplan.accounts import Role, create_account
from fieldplan.catalogue import load_catalogue
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.gazetteer import Gazetteer
from fieldplan.migrate import upgrade
from fieldplan.plans import Route, Stop, StopKind
from fieldplan.region_setup import load_region
from fieldplan.regions import Region
from fieldplan.sample_region import SampleSpec, write_sample
from fieldplan.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
BROKER = os.environ.get("FIELDPLAN_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
SPEEDUP_BAR = 1.7


@dataclass(frozen=True)
class Scale:
    regions: int
    technicians: int
    orders: int  # per region
    days: int
    time_limit_s: float


FULL = Scale(regions=10, technicians=40, orders=950, days=5, time_limit_s=30.0)  # 2,000 jobs each
QUICK = Scale(regions=2, technicians=16, orders=300, days=5, time_limit_s=10.0)


def seed(url: str, scale: Scale, folder: Path) -> tuple[str, date]:
    """The regions, their orders imported; returns a planner of all of them and the first
    day to plan."""
    engine = make_engine(url)
    upgrade(engine)
    gazetteer = Gazetteer.from_directory(SAMPLE)
    first = SampleSpec().planning_start
    with unit_of_work(session_factory(engine)) as session:
        load_catalogue(session, SAMPLE / "catalogue.json")
        regions = []
        for k in range(scale.regions):
            spec = SampleSpec(
                seed=20261123 + k,
                technicians=scale.technicians,
                orders=scale.orders,
                region_code=f"R{k:02d}",
                region_name=f"Regio {k}",
            )
            region_file, orders_file = write_sample(spec, gazetteer, folder / spec.region_code)
            _own_codes(region_file, orders_file, spec.region_code)
            region = load_region(session, region_file, gazetteer)
            importing.import_rows(
                session,
                importing.read_rows(orders_file),
                region=region,
                gazetteer=gazetteer,
                today=spec.planning_start - timedelta(days=1),
            )
            regions.append(region)
        _, api_key = create_account(session, "scale", Role.PLANNER, "scale-password", regions)
    engine.dispose()
    return api_key, first


def _own_codes(region_file: Path, orders_file: Path, code: str) -> None:
    """The generator names one region's stores, technicians and orders alike whatever its
    code: prefix them with the region's, so that regions side by side keep theirs apart."""
    region = json.loads(region_file.read_text("utf-8"))
    stores = {loc["code"]: f"{code}-{loc['code']}" for loc in region["locations"]}
    for loc in region["locations"]:
        loc["code"] = stores[loc["code"]]
    for technician in region["technicians"]:
        technician["code"] = f"{code}-{technician['code']}"
    region_file.write_text(json.dumps(region, ensure_ascii=False), "utf-8")
    with orders_file.open(newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    for row in rows:
        row["order_number"] = f"{code}-{row['order_number']}"
        row["store"] = stores.get(row["store"], row["store"])
    with orders_file.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _workers(url: str, queue_name: str, count: int, folder: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "FIELDPLAN_DATABASE_URL": url,
        "FIELDPLAN_BROKER_URL": BROKER,
        "FIELDPLAN_QUEUE_NAME": queue_name,
        "FIELDPLAN_OUTBOX_DIR": str(folder / "outbox"),
    }
    started = []
    for k in range(count):
        log = (folder / f"worker-{queue_name}-{k}.log").open("wb")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "fieldplan", "worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 60
    for k in range(count):  # each says "ready" once it consumes the queue
        path = folder / f"worker-{queue_name}-{k}.log"
        while b"ready" not in path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.2)
    return started


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.wait(60)


@dataclass(frozen=True)
class Planned:
    wall_s: float
    runs_done: int
    runs: int
    jobs_planned: int


def plan_all(url: str, queue_name: str, first: date, scale: Scale) -> Planned:
    """Every region one run on the queue, handed over at once; wall time until all ended."""
    settings = Settings(database_url=url, broker_url=BROKER, queue_name=queue_name)
    queue_executor = QueueExecutor(make_queue(settings))
    engine = make_engine(url)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        started = [
            runs.start(
                session,
                region,
                first,
                scale.days,
                scale.time_limit_s,
                today=first - timedelta(days=1),
                started_by="benchmarks.scale",
            )
            for region in session.scalars(select(Region).order_by(Region.id))
        ]
        ids = [run.id for run in started]
    began = time.monotonic()
    for run_id in ids:
        queue_executor.submit(run_id)
    while True:
        with sessions() as session:
            found = list(
                session.scalars(
                    select(runs.OptimisationRun).where(runs.OptimisationRun.id.in_(ids))
                )
            )
            if all(run.outcome[0] != runs.RunStatus.RUNNING for run in found):
                break
        time.sleep(0.25)
    wall = time.monotonic() - began
    with sessions() as session:
        plan_ids = [p for run in found for p in run.plan_ids]
        planned = session.scalar(
            select(func.count())
            .select_from(Stop)
            .join(Route, Stop.route_id == Route.id)
            .where(Route.plan_id.in_(plan_ids), Stop.kind == StopKind.JOB, ~Stop.second_person)
        )
    done = sum(run.status == runs.RunStatus.DONE for run in found)
    engine.dispose()
    return Planned(wall, done, len(ids), int(planned or 0))


def main(
    quick: Annotated[bool, typer.Option(help="two smaller regions")] = False,
    regions: Annotated[int | None, typer.Option(min=1, help="this many regions")] = None,
    clients: Annotated[int, typer.Option(min=1)] = 50,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write metric,value rows.")] = None,
    bars: Annotated[bool, typer.Option(help="exit non-zero on a missed bar")] = True,
) -> None:
    scale = QUICK if quick else FULL
    if regions is not None:
        scale = replace(scale, regions=regions)
    folder = work_folder("scale")
    planned: dict[int, Planned] = {}
    load: booking_load.LoadResult | None = None
    for workers in (1, 2):
        queue_name = f"fieldplan-scale-{uuid.uuid4().hex[:8]}"
        with scratch_database("postgresql", folder / str(workers)) as url:
            (folder / str(workers)).mkdir(exist_ok=True)
            api_key, first = seed(url, scale, folder / str(workers))
            started = _workers(url, queue_name, workers, folder)
            try:
                planned[workers] = plan_all(url, queue_name, first, scale)
                if workers == 2:
                    # The night's second pass on both workers while customers book.
                    again = threading.Thread(
                        target=plan_all, args=(url, queue_name, first, scale), daemon=True
                    )
                    again.start()
                    load = booking_load.run(
                        url, api_key, clients=clients, workers=2, log=folder / "server.log"
                    )
                    again.join(scale.time_limit_s * scale.regions + 120)
            finally:
                _stop(started)
                drop_queue(Settings(broker_url=BROKER, queue_name=queue_name))
    one, two = planned[1], planned[2]
    speedup = one.wall_s / two.wall_s if two.wall_s > 0 else float("nan")
    assert load is not None
    table = Table("measure", "1 worker", "2 workers", "bar", title=f"{scale}")
    table.add_row("wall time", f"{one.wall_s:.1f} s", f"{two.wall_s:.1f} s", "")
    table.add_row("runs done", f"{one.runs_done}/{one.runs}", f"{two.runs_done}/{two.runs}", "")
    table.add_row("jobs planned", str(one.jobs_planned), str(two.jobs_planned), "")
    table.add_row("speed-up", "", f"{speedup:.2f} x", f">= {SPEEDUP_BAR} x")
    table.add_row("booking p95 (while planning)", "", f"{load.p95_s() * 1000:.0f} ms", "<= 300 ms")
    table.add_row("bookings acknowledged", "", str(len(load.acknowledged)), "")
    table.add_row("5xx", "", str(load.server_errors), "0")
    table.add_row("bookings lost", "", str(len(load.lost)), "0")
    table.add_row("plan defects", "", str(len(load.defects)), "0")
    console.print(table)
    metrics = {
        "wall_s_1_worker": round(one.wall_s, 2),
        "wall_s_2_workers": round(two.wall_s, 2),
        "speedup_2_workers": round(speedup, 3),
        "jobs_planned_1_worker": one.jobs_planned,
        "jobs_planned_2_workers": two.jobs_planned,
        "booking_p95_ms": round(load.p95_s() * 1000),
        "bookings_acknowledged": len(load.acknowledged),
        "bookings_lost": len(load.lost),
        "server_errors": load.server_errors,
        "plan_defects": len(load.defects),
    }
    if csv_path is not None:
        with csv_path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["metric", "value"])
            writer.writerows(metrics.items())
    missed = (
        not speedup >= SPEEDUP_BAR
        or not load.p95_s() <= booking_load.P95_BAR_S
        or bool(load.lost)
        or bool(load.defects)
        or load.server_errors > 0
    )
    verdict(missed, bars=bars)


if __name__ == "__main__":
    typer.run(main)
