"""Order import: row/field errors, all-or-nothing, --skip-invalid, idempotence."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fieldplan import importing
from fieldplan.catalogue import JobKind
from fieldplan.gazetteer import Gazetteer
from fieldplan.jobs import Job, JobPart
from fieldplan.orders import Order
from fieldplan.regions import Region
from fieldplan.timeline import EventKind, TimelineEvent
from tests.conftest import SAMPLE, TODAY, require_postgres

GOOD = {
    "order_number": "UTR-TEST-00001",
    "order_date": "2026-11-16",
    "wanted_from": "2026-11-23",
    "store": "S-UTR",
    "customer_name": "Zoë van IJzendoorn",
    "email": "zoe@example.nl",
    "phone": "+31 6 12345678",
    "contact_channel": "email",
    "language": "nl",
    "street": "Biltstraat",
    "house_number": "12",
    "postcode": "3572 AB",
    "line_number": "1",
    "sku": "FLR-LAMINATE",
    "quantity": "12",
    "services": "measure;delivery;installation",
    "missing_parts": "",
    "notes": "",
}


def rows(*overrides: dict[str, str]) -> list[importing.RawRow]:
    return [importing.RawRow(f"line {i + 2}", {**GOOD, **o}) for i, o in enumerate(overrides)]


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def run(
    session: Session,
    region: Region,
    gazetteer: Gazetteer,
    batch: list[importing.RawRow],
    **kwargs: bool,
) -> importing.ImportReport:
    return importing.import_rows(
        session, batch, region=region, gazetteer=gazetteer, today=TODAY, **kwargs
    )


def test_sample_orders_make_a_realistic_two_weeks(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    report = run(session, region, gazetteer, importing.read_rows(SAMPLE / "orders.csv"))
    assert report.errors == []
    assert 380 <= report.orders_created <= 420
    jobs = list(session.scalars(select(Job)))
    assert len(jobs) >= 800
    kinds = Counter(JobKind(j.kind) for j in jobs)
    assert kinds[JobKind.REPAIR] >= 5
    assert sum(1 for j in jobs if j.crew_size == 2 and j.kind == JobKind.DELIVERY) >= 20
    assert sum(1 for j in jobs if j.days > 1) >= 10
    with_missing = {p.job_id for p in session.scalars(select(JobPart).where(JobPart.missing))}
    assert 0.07 <= len(with_missing) / len(jobs) <= 0.13


def test_a_good_order_creates_jobs_dependencies_and_timeline(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    report = run(session, region, gazetteer, rows({}))
    assert (report.orders_created, report.jobs_created) == (1, 3)
    jobs = {JobKind(j.kind): j for j in session.scalars(select(Job))}
    delivery, installation = jobs[JobKind.DELIVERY], jobs[JobKind.INSTALLATION]
    assert [d.prerequisite_id for d in delivery.depends_on] == [jobs[JobKind.MEASURE].id]
    assert delivery.depends_on[0].lag_working_days == 2  # flooring: 2 working days lead time
    assert [d.prerequisite_id for d in installation.depends_on] == [delivery.id]
    assert installation.skills == ["flooring"]
    assert jobs[JobKind.MEASURE].history[0].to_status == "new"
    kinds = [e.kind for e in session.scalars(select(TimelineEvent).order_by(TimelineEvent.id))]
    assert kinds[0] == EventKind.ORDER_PLACED
    assert kinds.count(EventKind.JOB_CREATED) == 3


@pytest.mark.parametrize(
    ("override", "field", "reason"),
    [
        ({"sku": "NOPE-1"}, "sku", "unknown product"),
        ({"postcode": "9711 AB"}, "postcode", "outside the served region"),
        ({"postcode": "35X1 AB"}, "postcode", "not a Dutch postcode"),
        ({"order_date": "2026-02-30"}, "order_date", "not a date"),
        ({"wanted_from": "2026-11-01"}, "wanted_from", "before the order date"),
        ({"order_date": "2027-03-01", "wanted_from": "2027-03-02"}, "order_date", "in the future"),
        ({"quantity": "-3"}, "quantity", "must be positive"),
        ({"quantity": "two"}, "quantity", "not a whole number"),
        ({"services": "installation;teleport"}, "services", "unknown service"),
        ({"services": "measure", "sku": "SHD-TOOL"}, "services", "not offered for shed"),
        ({"missing_parts": "P-NOPE:1"}, "missing_parts", "unknown part"),
        ({"missing_parts": "P-UNDERLAY:0"}, "missing_parts", "positive quantity"),
        ({"email": "not-an-address"}, "email", "not an e-mail"),
        ({"store": "S-XXX"}, "store", "unknown store"),
        ({"customer_name": ""}, "customer_name", "required"),
        ({"contact_channel": "pigeon"}, "contact_channel", "choose one of"),
    ],
)
def test_each_bad_row_is_reported_with_row_and_field_and_nothing_is_imported(
    session: Session,
    region: Region,
    gazetteer: Gazetteer,
    override: dict[str, str],
    field: str,
    reason: str,
) -> None:
    good_other = {"order_number": "UTR-TEST-00002"}
    with pytest.raises(importing.ImportFailed) as failed:
        run(session, region, gazetteer, rows(good_other, override))
    errors = failed.value.report.errors
    assert any(e.row == "line 3" and e.field == field and reason in e.reason for e in errors), (
        errors
    )
    assert count(session, Order) == 0
    assert count(session, Job) == 0


def test_duplicate_lines_and_inconsistent_orders_are_errors(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    with pytest.raises(importing.ImportFailed) as failed:
        run(session, region, gazetteer, rows({}, {}, {"line_number": "2", "postcode": "3511 AB"}))
    found = {(e.row, e.field) for e in failed.value.report.errors}
    assert ("line 3", "line_number") in found  # line 1 twice
    assert ("line 4", "postcode") in found  # the order's lines disagree on the address
    assert count(session, Order) == 0


def test_skip_invalid_imports_whole_valid_orders_and_rejects_the_rest(
    session: Session, region: Region, gazetteer: Gazetteer, tmp_path: Path
) -> None:
    batch = rows(
        {"order_number": "UTR-TEST-00010"},
        {"order_number": "UTR-TEST-00011"},
        {"order_number": "UTR-TEST-00011", "line_number": "2", "sku": "NOPE"},
    )
    report = run(session, region, gazetteer, batch, skip_invalid=True)
    assert report.orders_created == 1
    assert [o.number for o in session.scalars(select(Order))] == ["UTR-TEST-00010"]
    assert [r.where for r in report.rejected] == ["line 3", "line 4"]  # never half an order
    target = tmp_path / "rejected.csv"
    importing.write_rejected(target, report)
    written = list(csv.DictReader(target.open()))
    assert [r["source_row"] for r in written] == ["line 3", "line 4"]
    assert "unknown product" in written[1]["errors"]


def test_reimporting_the_same_file_changes_nothing(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    first = run(session, region, gazetteer, rows({}, {"order_number": "UTR-TEST-00003"}))
    jobs = count(session, Job)
    again = run(session, region, gazetteer, rows({}, {"order_number": "UTR-TEST-00003"}))
    assert first.orders_created == 2
    assert (again.orders_created, again.orders_unchanged) == (0, 2)
    assert count(session, Job) == jobs
    assert count(session, Order) == 2


def test_an_order_number_reused_with_other_content_is_refused(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    run(session, region, gazetteer, rows({}))
    with pytest.raises(importing.ImportFailed) as failed:
        run(session, region, gazetteer, rows({"quantity": "40"}))
    assert failed.value.report.errors[0].field == "order_number"
    assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_json_and_csv_import_the_same(
    session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    order = {k: v for k, v in GOOD.items() if k not in importing.LINE_FIELDS}
    line = {k: v for k, v in GOOD.items() if k in importing.LINE_FIELDS}
    line["services"] = ["measure", "delivery", "installation"]  # type: ignore[assignment]
    from_json = importing.rows_from_json(json.dumps({"orders": [{**order, "lines": [line]}]}))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(GOOD))
    writer.writeheader()
    writer.writerow(GOOD)
    from_csv = importing.rows_from_csv(buffer.getvalue())
    assert importing.content_hash(from_json) == importing.content_hash(from_csv)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "an order is an object"),
        ("{", "not valid JSON"),
        ('{"orders": 3}', "list of orders"),
    ],
)
def test_unreadable_json_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(importing.UnreadableFile, match=message):
        importing.rows_from_json(text)


def test_csv_without_required_columns_is_refused() -> None:
    with pytest.raises(importing.UnreadableFile, match="lacks column"):
        importing.rows_from_csv("order_number,sku\nA-1,FLR-LAMINATE\n")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_import_benchmark_runs_small_and_keeps_all_or_nothing(backend: str) -> None:
    """A small run of `benchmarks.importing` (the full one is not a unit test): the bulk
    writes of both databases import the file, and a bad last row changes nothing."""
    if backend == "postgresql":
        require_postgres()
    small = ["--database", backend, "--lines", "300", "--customers", "40"]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.importing", *small],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {backend}"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[1:3] == ["300", "150"]  # lines, orders
    assert cells[5] == "yes"


def _sample_rows(count: int) -> list[dict[str, str]]:
    with (SAMPLE / "orders.csv").open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))[:count]
    records[0]["street"] = "Eémlaan"  # an accent Excel writes as one Windows-1252 byte
    return records


def _as_csv(records: list[dict[str, str]], delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [(";", "cp1252"), (";", "utf-8-sig"), (",", "cp1252"), ("\t", "utf-8")],
)
def test_csv_as_excel_saves_it_reads_the_same(
    tmp_path: Path, delimiter: str, encoding: str
) -> None:
    records = _sample_rows(6)
    plain = importing.rows_from_csv(_as_csv(records, ","))
    path = tmp_path / "orders.csv"
    path.write_bytes(_as_csv(records, delimiter).encode(encoding))
    assert importing.read_rows(path) == plain
    assert plain[0].values["street"] == "Eémlaan"


def test_an_excel_workbook_imports_as_its_csv_would(
    tmp_path: Path, session: Session, region: Region, gazetteer: Gazetteer
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    records = _sample_rows(8)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(records[0]))
    for record in records:
        cells: list[object] = list(record.values())
        # As Excel keeps them: numbers as numbers, dates as dates.
        cells[list(record).index("quantity")] = int(record["quantity"])
        cells[list(record).index("line_number")] = int(record["line_number"])
        cells[list(record).index("order_date")] = date.fromisoformat(record["order_date"])
        sheet.append(cells)
    sheet.append([None] * len(records[0]))  # a formatted empty row at the end
    path = tmp_path / "orders.xlsx"
    book.save(path)
    from_book = importing.read_rows(path)
    from_csv = importing.rows_from_csv(_as_csv(records, ","))
    assert [r.values for r in from_book] == [r.values for r in from_csv]
    assert from_book[0].where == "row 2"
    report = run(session, region, gazetteer, from_book)
    assert report.errors == []
    assert report.orders_created >= 1


def test_a_file_that_is_no_text_or_workbook_gets_one_clear_sentence(tmp_path: Path) -> None:
    garbled = tmp_path / "orders.csv"
    garbled.write_bytes(b"order_number;sku\n\x81\x8d\x8f\x90\x9d\n")
    with pytest.raises(importing.UnreadableFile, match=r"is not text in UTF-8 or Windows-1252"):
        importing.read_rows(garbled)
    fake = tmp_path / "orders.xlsx"
    fake.write_bytes(b"not a zip")
    with pytest.raises(importing.UnreadableFile, match="is not an Excel workbook"):
        importing.read_rows(fake)
