"""The `fieldplan` command: init, import, plan, check-plans, account, serve, demo, sample."""

from __future__ import annotations

import importlib
import os
import secrets
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import optimizer
from fieldplan import (
    importing,
    plan_gate,
    runs,
    signing_keys,
    webhooks,  # noqa: F401 - its listeners tell subscribers what commands change
)
from fieldplan.accounts import Account, Role, create_account, grant
from fieldplan.catalogue import load_catalogue
from fieldplan.db import make_engine, session_factory, unit_of_work
from fieldplan.gazetteer import Gazetteer
from fieldplan.migrate import upgrade
from fieldplan.optimisation import SavedPlans, plan_region
from fieldplan.orders import Order
from fieldplan.region_setup import load_region
from fieldplan.regions import Region
from fieldplan.sample_region import SampleSpec, write_sample
from fieldplan.settings import get_settings
from fieldplan.travel import GeodesicTravelTimes, travel_times

app = typer.Typer(help="fieldplan: after-sales field-service planning.", no_args_is_help=True)
console = Console()

DEMO_PLANNER = "planner"


def _factory() -> sessionmaker[Session]:
    return session_factory(make_engine(get_settings().database_url))


def _region(session: Session, code: str | None) -> Region:
    query = select(Region).order_by(Region.id)
    if code:
        query = query.where(Region.code == code)
    region = session.scalar(query)
    if region is None:
        console.print(f"[red]No region {code or ''} in the database: run `fieldplan init` first.")
        raise typer.Exit(2)
    return region


@app.command()
def init(
    sample_dir: Annotated[Path | None, typer.Option(help="catalogue.json and region.json")] = None,
) -> None:
    """Create or upgrade the database and load the catalogue and the region."""
    settings = get_settings()
    directory = sample_dir or settings.sample_data_dir
    engine = make_engine(settings.database_url)
    upgrade(engine)
    gazetteer = Gazetteer.from_directory(settings.sample_data_dir)
    with unit_of_work(session_factory(engine)) as session:
        touched = load_catalogue(session, directory / "catalogue.json")
        region = load_region(session, directory / "region.json", gazetteer)
        console.print(
            f"Database ready at {settings.database_url}: region {region.code} "
            f"({region.name}), {touched} catalogue rows."
        )


@app.command("import")
def import_orders(
    path: Annotated[Path, typer.Argument(help="orders.csv or orders.json")],
    skip_invalid: Annotated[bool, typer.Option(help="import the valid orders anyway")] = False,
    rejected: Annotated[Path | None, typer.Option(help="where to write rejected rows")] = None,
    region_code: Annotated[str | None, typer.Option("--region")] = None,
) -> None:
    """Import orders; with any error nothing is imported unless --skip-invalid."""
    settings = get_settings()
    gazetteer = Gazetteer.from_directory(settings.sample_data_dir)
    try:
        rows = importing.read_rows(path)
    except importing.UnreadableFile as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from exc
    factory = session_factory(make_engine(settings.database_url))
    try:
        with unit_of_work(factory) as session:
            report = importing.import_rows(
                session,
                rows,
                region=_region(session, region_code),
                gazetteer=gazetteer,
                today=date.today(),
                skip_invalid=skip_invalid,
                actor="import:cli",
            )
    except importing.ImportFailed as failed:
        _print_errors(failed.report)
        console.print(
            f"[red]{len(failed.report.errors)} error(s): nothing was imported. "
            "Fix the file, or use --skip-invalid to import the valid orders."
        )
        raise typer.Exit(1) from failed
    if report.errors:
        _print_errors(report)
        target = rejected or path.with_name(path.stem + ".rejected.csv")
        importing.write_rejected(target, report)
        console.print(f"[yellow]{len(report.rejected)} row(s) rejected, written to {target}")
    if report.warnings:
        _print_errors(report, warnings=True)
    console.print(
        f"{report.orders_created} order(s) imported with {report.jobs_created} job(s); "
        f"{report.orders_unchanged} already imported and unchanged."
    )


def _print_errors(report: importing.ImportReport, *, warnings: bool = False) -> None:
    found = report.warnings if warnings else report.errors
    table = Table(
        "row", "field", "reason", title="Import warnings" if warnings else "Import errors"
    )
    for error in found[:200]:
        table.add_row(error.row, error.field, error.reason)
    console.print(table)
    if len(found) > 200:
        console.print(f"... and {len(found) - 200} more")


def run_plan(
    factory: sessionmaker[Session],
    region_code: str | None,
    first_day: date,
    days: int,
    time_limit: float,
) -> SavedPlans:
    """Plan with a progress bar: time spent against the limit, best cost found so far."""
    best: list[optimizer.Progress] = []
    with unit_of_work(factory) as session:
        region = _region(session, region_code)
        outcome: list[SavedPlans] = []
        failure: list[BaseException] = []

        def work() -> None:
            try:
                outcome.append(
                    plan_region(
                        session,
                        region,
                        first_day,
                        days,
                        GeodesicTravelTimes(),
                        optimizer.Limits(time_limit_s=time_limit, workers=2),
                        on_progress=best.append,
                        today=datetime.now(ZoneInfo(region.timezone)).date(),
                    )
                )
            except BaseException as exc:  # handed to the main thread below
                failure.append(exc)

        worker = threading.Thread(target=work, daemon=True)
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("planning", total=time_limit)
            started = time.monotonic()
            worker.start()
            while worker.is_alive():
                worker.join(0.2)
                cost = f"best cost {best[-1].objective:,}" if best else "looking for a first plan"
                progress.update(
                    task,
                    completed=min(time.monotonic() - started, time_limit),
                    description=f"planning {days} day(s): {cost}",
                )
        if failure:
            raise failure[0]
        saved = outcome[0]
    _print_plan(saved)
    return saved


def _print_plan(saved: SavedPlans) -> None:
    table = Table("day", "version", "technicians", "jobs", "travel (h)", title="Plan")
    for plan in saved.plans:
        table.add_row(
            plan.day.isoformat(),
            str(plan.version),
            str(plan.kpis.get("technician_days_used", 0)),
            str(plan.kpis.get("jobs_planned", 0)),
            f"{plan.kpis.get('travel_h', 0):.1f}",
        )
    console.print(table)
    console.print(
        f"{len(saved.unplanned)} job(s) not planned in this horizon "
        "(each with its reason on the plan)."
    )


@app.command()
def plan(
    first_day: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD")] = None,
    days: Annotated[int, typer.Option(min=1, max=20, help="working days")] = 5,
    time_limit: Annotated[float, typer.Option(min=1.0, help="seconds of search")] = 30.0,
    region_code: Annotated[str | None, typer.Option("--region")] = None,
    all_regions: Annotated[
        bool, typer.Option("--all-regions", help="one optimisation run per region, at once")
    ] = False,
) -> None:
    """Plan the region's open jobs over the next working days with the engine. With
    `--all-regions` (what the night runs) every region is one optimisation run: on the task
    queue's workers when FIELDPLAN_BROKER_URL is set, all at once, else in this process."""
    factory = _factory()
    start = date.fromisoformat(first_day) if first_day else date.today()
    if all_regions:
        fan_out(factory, start, days, time_limit)
        return
    run_plan(factory, region_code, start, days, time_limit)


def fan_out(factory: sessionmaker[Session], first_day: date, days: int, time_limit: float) -> None:
    """Start a run per region, hand each to the executor, and wait until all have ended."""
    with unit_of_work(factory) as session:
        started = [
            runs.start(
                session,
                region,
                first_day,
                days,
                time_limit,
                today=datetime.now(ZoneInfo(region.timezone)).date(),
                started_by="fieldplan plan --all-regions",
            )
            for region in session.scalars(select(Region).order_by(Region.id))
        ]
        codes = {region.id: region.code for region in session.scalars(select(Region))}
        ids = {run.id: run.region_id for run in started}
    # By name, as `serve` names the API: the executor carries runs out with the API's state.
    executor = importlib.import_module("api.worker").executor_for(get_settings())
    for run_id in ids:
        executor.submit(run_id)
    with console.status(f"{len(ids)} region(s) being planned"):
        while True:
            with factory() as session:
                ended = [
                    run
                    for run in session.scalars(
                        select(runs.OptimisationRun).where(runs.OptimisationRun.id.in_(ids))
                    )
                    if run.outcome[0] != runs.RunStatus.RUNNING
                ]
            if len(ended) == len(ids):
                break
            time.sleep(0.5)
    table = Table("region", "status", "plans saved", "unplanned", "error")
    for run in sorted(ended, key=lambda r: r.region_id):
        status, error = run.outcome
        table.add_row(
            codes[run.region_id], status, str(len(run.plan_ids)), str(run.unplanned), error or ""
        )
    console.print(table)
    if any(run.outcome[0] != runs.RunStatus.DONE for run in ended):
        raise typer.Exit(1)


@app.command("check-plans")
def check_plans(
    today: Annotated[str | None, typer.Option("--today", help="YYYY-MM-DD")] = None,
    region_code: Annotated[str | None, typer.Option("--region")] = None,
) -> None:
    """Check every stored plan from today on: each promise on exactly one route inside its
    window, no job twice, dependencies in order, every rule of the engine. Exits 1 when
    anything is wrong, listing it."""
    factory = _factory()
    found: list[plan_gate.Defect] = []
    with unit_of_work(factory) as session:
        query = select(Region).order_by(Region.id)
        if region_code:
            query = query.where(Region.code == region_code)
        for region in session.scalars(query):
            day = (
                date.fromisoformat(today)
                if today
                else datetime.now(ZoneInfo(region.timezone)).date()
            )
            found += plan_gate.region_defects(
                session, region, today=day, travel=travel_times(get_settings().osrm_url)
            )
        session.rollback()
    if not found:
        console.print("All stored plans keep every promise and rule.")
        return
    table = Table("day", "what", "job", "why", title=f"{len(found)} problem(s) in stored plans")
    for defect in found:
        table.add_row(str(defect.day), defect.kind, str(defect.job_id or ""), defect.message)
    console.print(table)
    raise typer.Exit(1)


accounts_app = typer.Typer(help="Planner and administrator accounts.", no_args_is_help=True)
app.add_typer(accounts_app, name="account")


def _regions_named(session: Session, codes: list[str]) -> list[Region]:
    found = list(session.scalars(select(Region).where(Region.code.in_(codes))))
    unknown = sorted(set(codes) - {r.code for r in found})
    if unknown:
        console.print(f"[red]No region {', '.join(unknown)} in the database.")
        raise typer.Exit(2)
    return found


@accounts_app.command("create")
def account_create(
    username: Annotated[str, typer.Argument()],
    role: Annotated[Role, typer.Option()] = Role.PLANNER,
    region_codes: Annotated[
        list[str] | None, typer.Option("--region", help="a region it plans (repeatable)")
    ] = None,
) -> None:
    """Make an account; prints its password and API key once."""
    password = secrets.token_urlsafe(12)
    with unit_of_work(_factory()) as session:
        if session.scalar(select(Account.id).where(Account.username == username)):
            console.print(f"[red]An account {username!r} exists already.")
            raise typer.Exit(2)
        regions = _regions_named(session, region_codes or [])
        _, api_key = create_account(session, username, role, password, regions)
    console.print(f"{role} {username}: password {password}, API key {api_key}")


@accounts_app.command("grant")
def account_grant(
    username: Annotated[str, typer.Argument()],
    region_codes: Annotated[
        list[str], typer.Option("--region", help="a region it plans (repeatable)")
    ],
) -> None:
    """Let the account plan exactly these regions (the list replaces the old one)."""
    with unit_of_work(_factory()) as session:
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None:
            console.print(f"[red]No account {username!r}.")
            raise typer.Exit(2)
        grant(account, _regions_named(session, region_codes))
        console.print(f"{username} plans {', '.join(sorted(region_codes))}.")


@app.command("rotate-secret")
def rotate_secret(
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="also end every link signed with older keys")
    ] = False,
) -> None:
    """Make a new signing key (kept in the database; unused when FIELDPLAN_SECRET_KEY is
    set). Links already sent keep working until they expire unless --drop-old; restart the
    API processes so they sign with the new key."""
    if get_settings().secret_key:
        console.print("[red]FIELDPLAN_SECRET_KEY is set: rotate that setting instead.")
        raise typer.Exit(2)
    with unit_of_work(_factory()) as session:
        signing_keys.rotate(session)
        dropped = signing_keys.drop_retired(session) if drop_old else 0
    console.print(
        "New signing key made." + (f" {dropped} older key(s) dropped." if drop_old else "")
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the API and the pages."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.main:app", host=host or settings.host, port=port or settings.port)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="runs carried out at once")] = 1,
) -> None:
    """Carry out optimisation runs from the task queue (FIELDPLAN_BROKER_URL); start as many
    as the work needs, on any machine that reaches the broker and the database."""
    if not get_settings().broker_url:
        raise typer.BadParameter(
            "no task queue: set FIELDPLAN_BROKER_URL (e.g. amqp://guest:guest@127.0.0.1:5672//)"
        )
    # By name, as `serve` names the API: the worker carries runs out with the API's state.
    queue = importlib.import_module("api.worker").queue()
    # A name of its own: two workers of one machine named alike, the second stops at once.
    name = f"--hostname=fieldplan-{os.getpid()}@%h"
    queue.worker_main(
        ["worker", name, f"--concurrency={concurrency}", "--loglevel=INFO", "--without-gossip"]
    )


@app.command()
def demo(
    time_limit: Annotated[float, typer.Option(min=1.0, help="seconds of search")] = 30.0,
    days: Annotated[int, typer.Option(min=1, max=10)] = 5,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="set up and plan only")] = False,
) -> None:
    """Load the bundled sample region, plan its first week and serve API and pages."""
    settings = get_settings()
    init(None)
    factory = _factory()
    spec = SampleSpec()
    with unit_of_work(factory) as session:
        has_orders = session.scalar(select(func.count()).select_from(Order))
        has_planner = session.scalar(select(Account).where(Account.username == DEMO_PLANNER))
        api_key = None
        password = None
        if has_planner is None:
            password = secrets.token_urlsafe(12)
            _, api_key = create_account(
                session, DEMO_PLANNER, Role.PLANNER, password, [_region(session, None)]
            )
    if not has_orders:
        import_orders(settings.sample_data_dir / "orders.csv", False, None, None)
    run_plan(factory, None, spec.planning_start, days, time_limit)
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"\n[bold]fieldplan is ready[/bold] on {settings.database_url}")
    console.print(f"  planner board : {base}/board")
    console.print(f"  API docs      : {base}/docs  (OpenAPI at {base}/openapi.json)")
    if password is not None:
        console.print(f"  sign in as    : {DEMO_PLANNER} / {password}")
        console.print(f"  API key       : {api_key}  (Authorization: Bearer ...)")
    else:
        console.print(f"  sign in as    : {DEMO_PLANNER} (password shown when it was created)")
    if not no_serve:
        # The sample week is live: the service's clock starts on its first morning (the pages
        # say so), whatever the real date, so windows, cut-offs and the day's reports fit it.
        if settings.demo_start is None:
            os.environ["FIELDPLAN_DEMO_START"] = f"{spec.planning_start.isoformat()}T07:30:00"
            get_settings.cache_clear()
        serve(None, None)


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="folder for region.json and orders.csv")],
    technicians: Annotated[int, typer.Option(min=1)] = 16,
    orders: Annotated[int, typer.Option(min=1)] = 400,
    seed: Annotated[int, typer.Option()] = 20261123,
) -> None:
    """Generate a (bigger) sample region with the seeded generator."""
    settings = get_settings()
    spec = SampleSpec(seed=seed, technicians=technicians, orders=orders)
    region, orders_file = write_sample(
        spec, Gazetteer.from_directory(settings.sample_data_dir), out
    )
    console.print(f"Wrote {region} and {orders_file}.")
