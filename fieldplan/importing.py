"""Order import: every row validated, errors by row and field, all-or-nothing by default.

A file is read into flat rows (one per order line, CSV or JSON alike), every row is checked,
rows are grouped into orders, and only then is anything written. With `skip_invalid`, orders
whose rows are all valid go in and every row of an order with an error is handed back as
rejected: an order is never half imported. Re-importing an order number with the same content
changes nothing; with different content it is an error, so a silent overwrite cannot happen.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldplan.catalogue import JobKind, Part, Product, ServiceRule
from fieldplan.customers import ContactChannel
from fieldplan.gazetteer import Gazetteer, PostcodeError, normalise_postcode
from fieldplan.intake import CHUNK, OrderIn, OrderLineIn, take_in_orders
from fieldplan.locations import Location
from fieldplan.orders import Order
from fieldplan.regions import Region

ORDER_FIELDS = (
    "order_number",
    "order_date",
    "wanted_from",
    "store",
    "customer_name",
    "email",
    "phone",
    "contact_channel",
    "language",
    "street",
    "house_number",
    "postcode",
    "notes",
)
LINE_FIELDS = ("line_number", "sku", "quantity", "services", "missing_parts")
CSV_COLUMNS = (*ORDER_FIELDS, *LINE_FIELDS)  # one row per order line
REQUIRED = frozenset(ORDER_FIELDS) - {"wanted_from", "notes", "language", "contact_channel"}

ORDER_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[0-9 ()-]{8,20}$")
MAX_DAYS_AHEAD = 366
MAX_ROWS = 100_000  # order lines per file: a nightly file of a large retailer, not a dump
# The longest text each field may hold (the database's columns; notes are free text).
MAX_LENGTH = {
    "order_number": 32,
    "store": 32,
    "customer_name": 200,
    "email": 200,
    "phone": 32,
    "street": 200,
    "house_number": 16,
    "postcode": 16,
    "notes": 2000,
    "sku": 64,
    "services": 200,
    "missing_parts": 500,
}
OLD_ORDER = timedelta(days=365)  # an order older than this is imported with a warning


@dataclass(frozen=True)
class RowError:
    row: str  # "line 7" in a CSV file, "orders[2].lines[0]" in JSON
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.row}: {self.field}: {self.reason}"


@dataclass
class RawRow:
    where: str
    values: dict[str, str]


@dataclass
class ImportReport:
    orders_created: int = 0
    orders_unchanged: int = 0
    jobs_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected: list[RawRow] = field(default_factory=list)
    # Imported, but worth a look: dates that are legal yet unusual.
    warnings: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFailed(Exception):
    """Raised when a batch has errors and the caller did not ask to skip invalid rows."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.errors)} error(s); nothing imported")
        self.report = report


class UnreadableFile(ValueError):
    pass


def read_rows(path: Path) -> list[RawRow]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"{path}: {exc.strerror or exc}") from exc
    return rows_from_file(path.name, data)


def rows_from_file(name: str, data: bytes) -> list[RawRow]:
    """The rows of a file as planners have them: CSV with commas or semicolons (Excel's
    choice in Dutch settings) in UTF-8 (with or without its byte-order mark) or Windows-1252
    (Excel's default), an Excel workbook, or the JSON import file."""
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        return rows_from_xlsx(name, data)
    if suffix not in (".csv", ".json"):
        raise UnreadableFile(f"{name}: expected a .csv, .xlsx or .json file")
    text = decode(name, data)
    return rows_from_csv(text) if suffix == ".csv" else rows_from_json(text)


def decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise UnreadableFile(
            f"{name} is not text in UTF-8 or Windows-1252: save it again as CSV (UTF-8)"
        ) from None


def rows_from_csv(text: str) -> list[RawRow]:
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    missing = [
        c for c in (*REQUIRED, "sku", "quantity", "services") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise UnreadableFile(f"CSV header lacks column(s): {', '.join(sorted(missing))}")
    rows = []
    for number, record in enumerate(reader, start=2):
        if None in record:
            raise UnreadableFile(f"line {number}: more values than columns")
        rows.append(RawRow(f"line {number}", {k: (v or "").strip() for k, v in record.items()}))
        _within_limit(rows)
    return rows


def rows_from_xlsx(name: str, data: bytes) -> list[RawRow]:
    """The first sheet of a workbook, its first row the header (the CSV's columns)."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise UnreadableFile(f"{name} is not an Excel workbook (.xlsx) that can be read") from None
    sheet = book.worksheets[0]
    lines = sheet.iter_rows(values_only=True)
    header = [_cell(v) for v in next(lines, ())]
    missing = [c for c in (*REQUIRED, "sku", "quantity", "services") if c not in header]
    if missing:
        raise UnreadableFile(f"the sheet's first row lacks column(s): {', '.join(sorted(missing))}")
    rows = []
    for number, values in enumerate(lines, start=2):
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue  # Excel keeps formatted empty rows
        if len(cells) > len(header) and any(cells[len(header) :]):
            raise UnreadableFile(f"row {number}: more values than columns")
        rows.append(RawRow(f"row {number}", dict(zip(header, cells, strict=False))))
        _within_limit(rows)
    book.close()
    return rows


def _cell(value: object) -> str:
    """A cell as the CSV would have it: whole numbers without '.0', dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _within_limit(rows: list[RawRow]) -> None:
    if len(rows) > MAX_ROWS:
        raise UnreadableFile(f"more than {MAX_ROWS} order lines: split the file")


def rows_from_json(text: str) -> list[RawRow]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not valid JSON: {exc}") from exc
    return rows_from_data(data)


def rows_from_data(data: Any) -> list[RawRow]:
    """The rows of a JSON import file already read (the API's body), one per order line."""
    orders = data.get("orders") if isinstance(data, dict) else data
    if not isinstance(orders, list):
        raise UnreadableFile('expected a list of orders or {"orders": [...]}')
    rows = []
    for i, order in enumerate(orders):
        if not isinstance(order, dict) or not isinstance(order.get("lines"), list):
            raise UnreadableFile(f"orders[{i}]: an order is an object with a list of lines")
        if not order["lines"]:
            raise UnreadableFile(f"orders[{i}].lines: an order needs at least one line")
        head = {k: _text(order.get(k)) for k in ORDER_FIELDS}
        for j, line in enumerate(order["lines"]):
            if not isinstance(line, dict):
                raise UnreadableFile(f"orders[{i}].lines[{j}]: a line is an object")
            values = {**head, **{k: _text(line.get(k)) for k in LINE_FIELDS}}
            if not values["line_number"]:
                values["line_number"] = str(j + 1)
            rows.append(RawRow(f"orders[{i}].lines[{j}]", values))
            _within_limit(rows)
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}:{v}" for k, v in value.items())
    return str(value).strip()


@dataclass
class _Catalogue:
    products: dict[str, Product]
    parts: set[str]
    rules: set[tuple[str, JobKind]]
    stores: dict[str, Location]


def _catalogue(session: Session) -> _Catalogue:
    return _Catalogue(
        products={p.sku: p for p in session.scalars(select(Product))},
        parts=set(session.scalars(select(Part.sku))),
        rules={(r.category, JobKind(r.kind)) for r in session.scalars(select(ServiceRule))},
        stores={loc.code: loc for loc in session.scalars(select(Location))},
    )


def _check_row(
    row: RawRow, cat: _Catalogue, gazetteer: Gazetteer, today: date, warnings: list[RowError]
) -> tuple[list[RowError], OrderLineIn | None]:
    errors: list[RowError] = []
    v = row.values

    def err(field_name: str, reason: str) -> None:
        errors.append(RowError(row.where, field_name, reason))

    for name, longest in MAX_LENGTH.items():
        if len(v.get(name, "")) > longest:
            err(name, f"longer than {longest} characters")
    for name, value in v.items():
        if "\x00" in value:  # no database stores it (PostgreSQL refuses), no real text has it
            err(name, "contains a NUL character")

    for name in sorted(REQUIRED | {"sku", "quantity", "services"}):
        if not v.get(name):
            err(name, "is required")
    if v.get("order_number") and not ORDER_NUMBER.match(v["order_number"]):
        err("order_number", "use 3-32 capitals, digits and dashes")
    ordered = _date(v.get("order_date", ""), "order_date", err)
    wanted = _date(v.get("wanted_from", ""), "wanted_from", err) if v.get("wanted_from") else None
    if ordered and ordered > today + timedelta(days=1):
        err("order_date", f"{ordered} lies in the future")
    if ordered and wanted and wanted < ordered:
        err("wanted_from", f"{wanted} is before the order date {ordered}")
    if wanted and (wanted - today).days > MAX_DAYS_AHEAD:
        err("wanted_from", f"{wanted} is more than a year ahead")
    if ordered and ordered < today - OLD_ORDER:
        warnings.append(RowError(row.where, "order_date", f"{ordered} is more than a year ago"))
    if wanted and wanted < today:
        warnings.append(
            RowError(row.where, "wanted_from", f"{wanted} lies in the past: planned from now on")
        )
    if v.get("store") and v["store"] not in cat.stores:
        err("store", f"unknown store {v['store']!r}")
    if v.get("email") and not EMAIL.match(v["email"]):
        err("email", f"{v['email']!r} is not an e-mail address")
    if v.get("phone") and not PHONE.match(v["phone"]):
        err("phone", f"{v['phone']!r} is not a phone number")
    if v.get("contact_channel") and v["contact_channel"] not in set(ContactChannel):
        err("contact_channel", f"choose one of {', '.join(ContactChannel)}")
    if v.get("language") and v["language"] not in ("nl", "en"):
        err("language", "choose nl or en")
    if v.get("postcode"):
        try:
            gazetteer.place_of(normalise_postcode(v["postcode"]))
        except PostcodeError as exc:
            err("postcode", str(exc))
    line_number = _positive(v.get("line_number") or "1", "line_number", err)
    quantity = _positive(v.get("quantity", ""), "quantity", err) if v.get("quantity") else None
    product = cat.products.get(v.get("sku", ""))
    if v.get("sku") and product is None:
        err("sku", f"unknown product {v['sku']!r}")
    services: list[JobKind] = []
    for name in filter(None, (s.strip() for s in v.get("services", "").split(";"))):
        try:
            kind = JobKind(name)
        except ValueError:
            err("services", f"unknown service {name!r}")
            continue
        if product is not None and (product.category, kind) not in cat.rules:
            err("services", f"{name} is not offered for {product.category}")
        services.append(kind)
    if len(set(services)) != len(services):
        err("services", "a service is listed twice")
    missing: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in v.get("missing_parts", "").split(";"))):
        sku, _, count = item.partition(":")
        if sku not in cat.parts:
            err("missing_parts", f"unknown part {sku!r}")
        elif not count.isdigit() or int(count) <= 0:
            err("missing_parts", f"{item!r}: give a positive quantity as SKU:count")
        else:
            missing[sku] = int(count)
    if errors or product is None or quantity is None or line_number is None:
        return errors, None
    return [], OrderLineIn(line_number, product.sku, quantity, services, missing)


def _date(text: str, name: str, err: Any) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        err(name, f"{text!r} is not a date (YYYY-MM-DD)")
        return None


def _positive(text: str, name: str, err: Any) -> int | None:
    try:
        number = int(text)
    except ValueError:
        err(name, f"{text!r} is not a whole number")
        return None
    if number <= 0:
        err(name, f"must be positive, got {number}")
        return None
    return number


def content_hash(rows: Iterable[RawRow]) -> str:
    canonical = sorted(
        json.dumps({k: r.values.get(k, "") for k in (*ORDER_FIELDS, *LINE_FIELDS)}, sort_keys=True)
        for r in rows
    )
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def import_rows(
    session: Session,
    rows: list[RawRow],
    *,
    region: Region,
    gazetteer: Gazetteer,
    today: date,
    skip_invalid: bool = False,
    actor: str = "import",
) -> ImportReport:
    """Validate and import; raises ImportFailed (having written nothing) on errors."""
    report = ImportReport()
    cat = _catalogue(session)
    groups: dict[str, list[RawRow]] = {}
    lines: dict[int, OrderLineIn] = {}
    bad_rows: set[int] = set()
    for row in rows:
        errors, line = _check_row(row, cat, gazetteer, today, report.warnings)
        groups.setdefault(row.values.get("order_number", ""), []).append(row)
        report.errors.extend(errors)
        if line is None:
            bad_rows.add(id(row))
        else:
            lines[id(row)] = line
    numbers = sorted(groups)
    existing = {
        o.number: o
        for k in range(0, len(numbers), CHUNK)
        for o in session.scalars(select(Order).where(Order.number.in_(numbers[k : k + CHUNK])))
    }
    accepted: list[tuple[OrderIn, str]] = []
    for number, group in groups.items():
        group_errors = _check_group(group, lines)
        report.errors.extend(group_errors)
        digest = content_hash(group)
        previous = existing.get(number)
        if previous is not None and previous.content_hash != digest:
            report.errors.append(
                RowError(
                    group[0].where,
                    "order_number",
                    f"{number} was imported before with other content",
                )
            )
            group_errors.append(report.errors[-1])
        if group_errors or any(id(r) in bad_rows for r in group):
            report.rejected.extend(group)
            continue
        if previous is not None:
            report.orders_unchanged += 1
            continue
        accepted.append((_order_in(group, [lines[id(r)] for r in group], cat), digest))
    if report.errors and not skip_invalid:
        raise ImportFailed(report)
    with session.begin_nested():
        for k in range(0, len(accepted), CHUNK):
            intake = take_in_orders(
                session, accepted[k : k + CHUNK], region=region, gazetteer=gazetteer, actor=actor
            )
            report.orders_created += intake.orders_created
            report.jobs_created += intake.jobs_created
    return report


def _check_group(group: list[RawRow], lines: dict[int, OrderLineIn]) -> list[RowError]:
    errors = []
    first = group[0].values
    for row in group[1:]:
        for name in ORDER_FIELDS:
            if row.values.get(name, "") != first.get(name, ""):
                errors.append(
                    RowError(
                        row.where, name, f"differs from the order's first line ({group[0].where})"
                    )
                )
    seen: dict[int, str] = {}
    for row in group:
        line = lines.get(id(row))
        if line is None:
            continue
        if line.line_number in seen:
            errors.append(
                RowError(
                    row.where,
                    "line_number",
                    f"line {line.line_number} repeats {seen[line.line_number]}",
                )
            )
        seen[line.line_number] = row.where
    return errors


def _order_in(group: list[RawRow], lines: list[OrderLineIn], cat: _Catalogue) -> OrderIn:
    v = group[0].values
    ordered = date.fromisoformat(v["order_date"])
    return OrderIn(
        number=v["order_number"],
        ordered_on=ordered,
        wanted_from=date.fromisoformat(v["wanted_from"]) if v.get("wanted_from") else ordered,
        store_code=v["store"],
        customer_name=v["customer_name"],
        email=v["email"].lower(),
        phone=v["phone"],
        contact_channel=ContactChannel(v.get("contact_channel") or "email"),
        language=v.get("language") or "nl",
        street=v["street"],
        house_number=v["house_number"],
        postcode=normalise_postcode(v["postcode"]),
        notes=v.get("notes", ""),
        lines=lines,
    )


def write_rejected(path: Path, report: ImportReport) -> None:
    """The rejected rows with their errors, ready to fix and import again."""
    by_row: dict[str, list[str]] = {}
    for error in report.errors:
        by_row.setdefault(error.row, []).append(f"{error.field}: {error.reason}")
    columns = [*CSV_COLUMNS, "source_row", "errors"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in report.rejected:
            writer.writerow(
                {
                    **{k: row.values.get(k, "") for k in (*ORDER_FIELDS, *LINE_FIELDS)},
                    "source_row": row.where,
                    "errors": " | ".join(by_row.get(row.where, ["rejected with its order"])),
                }
            )
