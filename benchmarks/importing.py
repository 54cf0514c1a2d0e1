"""A retailer's nightly order file: `python -m benchmarks.importing [--database sqlite]`.

50,000 order lines of 10,000 customers (each with several orders of two lines), generated from
the sample region's own order generator, imported through `importing.import_rows` as the
API and the CLI do, into the migrated sample region. Then the same file with one bad row at
its very end must change nothing: all or nothing holds at this size too.

Bar (issue 22): the import takes <= 60 s on this machine, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from benchmarks.databases import scratch_database, work_folder
from benchmarks.report import console
from fieldplan import importing
from fieldplan.catalogue import load_catalogue
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import Job
from fieldplan.migrate import upgrade
from fieldplan.orders import Order
from fieldplan.region_setup import load_region
from fieldplan.regions import Region
from fieldplan.sample_region import SampleSpec, build_orders

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
BAR_S = 60.0
TODAY = date(2026, 11, 23)


def nightly_rows(lines: int, customers: int) -> list[importing.RawRow]:
    """`lines` order lines, two per order, of `customers` customers: the customers and the
    lines come from the sample generator, recombined so each customer orders several times."""
    people = build_orders(SampleSpec(orders=customers, seed=7), Gazetteer.from_directory(SAMPLE))
    heads = {r["order_number"]: r for r in people}
    owners = list(heads.values())
    rows: list[importing.RawRow] = []
    for k in range(lines):
        order, line_number = divmod(k, 2)
        owner = owners[order % len(owners)]
        item = people[(k * 7919) % len(people)]
        values = {
            **{f: owner[f] for f in importing.ORDER_FIELDS},
            "order_number": f"NIGHT-{order:07d}",
            "order_date": (TODAY - timedelta(days=1 + order % 5)).isoformat(),
            "wanted_from": (TODAY + timedelta(days=2 + order % 9)).isoformat(),
            "line_number": str(line_number + 1),
            **{f: item[f] for f in ("sku", "quantity", "services", "missing_parts")},
        }
        rows.append(importing.RawRow(f"line {k + 2}", values))
    return rows


@dataclass
class Measured:
    seconds: float
    orders: int
    jobs: int
    unchanged_after_bad_file: bool


def measure(url: str, rows: list[importing.RawRow]) -> Measured:
    engine = make_engine(url)
    upgrade(engine)
    gazetteer = Gazetteer.from_directory(SAMPLE)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as session:
        load_catalogue(session, SAMPLE / "catalogue.json")
        load_region(session, SAMPLE / "region.json", gazetteer)
    started = time.perf_counter()
    with unit_of_work(sessions) as session:
        region = session.scalars(select(Region)).one()
        report = importing.import_rows(
            session, rows, region=region, gazetteer=gazetteer, today=TODAY
        )
    seconds = time.perf_counter() - started
    bad = [*rows[:-1], importing.RawRow("line last", {**rows[-1].values, "sku": "NO-SUCH"})]
    renamed = [
        importing.RawRow(r.where, {**r.values, "order_number": "AGAIN-" + r.values["order_number"]})
        for r in bad
    ]
    try:
        with unit_of_work(sessions) as session:
            region = session.scalars(select(Region)).one()
            importing.import_rows(session, renamed, region=region, gazetteer=gazetteer, today=TODAY)
        refused = False
    except importing.ImportFailed:
        refused = True
    with sessions() as session:
        orders = session.scalar(select(func.count()).select_from(Order)) or 0
        jobs = session.scalar(select(func.count()).select_from(Job)) or 0
    engine.dispose()
    return Measured(
        seconds, report.orders_created, jobs, refused and orders == report.orders_created
    )


def main(
    database: Annotated[str, typer.Option(help="sqlite, postgresql or both")] = "both",
    lines: Annotated[int, typer.Option(min=2)] = 50_000,
    customers: Annotated[int, typer.Option(min=1)] = 10_000,
    bars: Annotated[bool, typer.Option(help="exit non-zero on a missed bar")] = True,
) -> None:
    rows = nightly_rows(lines, customers)
    table = Table(
        "database",
        "lines",
        "orders",
        "jobs",
        "seconds",
        "bad file changed nothing",
        "bar",
        title=f"Import of {lines} order lines of {customers} customers",
    )
    missed = False
    for backend in ("sqlite", "postgresql") if database == "both" else (database,):
        with scratch_database(backend, work_folder("import")) as url:
            result = measure(url, rows)
        ok = result.seconds <= BAR_S and result.unchanged_after_bad_file
        missed |= not ok
        table.add_row(
            backend,
            str(lines),
            str(result.orders),
            str(result.jobs),
            f"{result.seconds:.1f}",
            "yes" if result.unchanged_after_bad_file else "NO",
            f"<= {BAR_S:.0f} s" + ("" if ok else " [red]missed"),
        )
    console.print(table)
    if missed and bars:
        console.print("[red]Bar missed.")
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
