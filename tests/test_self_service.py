"""The customer's page over HTTP: signed links, windows, booking, callbacks, and neighbours'
ids that must answer 404."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlalchemy import select

import optimizer
from api.main import create_app
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.booking import offer_windows
from fieldplan.dates import short_day
from fieldplan.jobs import Job
from fieldplan.locations import Location
from fieldplan.optimisation import plan_region
from fieldplan.orders import Order
from fieldplan.regions import Region
from fieldplan.settings import Settings
from fieldplan.technicians import Absence, Technician
from fieldplan.timeline import EventKind, TimelineEvent
from tests.conftest import pin_clock, seed_database

WINDOW_VALUE = re.compile(r'name="window" value="([^"]+)"')


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("self-service")
    url = f"sqlite:///{tmp / 'a.db'}"
    api_key = seed_database(url, orders=30, password="pw", plan_days=1)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp / "out")))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {api_key}"}


def link(client: TestClient, headers: dict[str, str], order_id: int) -> str:
    response = client.get(f"/orders/{order_id}/customer-link", headers=headers)
    assert response.status_code == 200
    return "/" + response.json()["url"].split("://", 1)[1].split("/", 1)[1]


def orders_with_jobs(client: TestClient) -> list[tuple[int, list[int]]]:
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        orders = session.scalars(select(Order).order_by(Order.id)).all()
        return [
            (o.id, [j.id for j in session.scalars(select(Job).where(Job.order_id == o.id))])
            for o in orders
        ]


def bookable_orders(client: TestClient) -> list[tuple[int, list[int]]]:
    """Orders with a job that has windows on offer (jobs already planned for today have
    none: today's routes are out)."""
    found = []
    state = client.app.state  # type: ignore[attr-defined]
    for order_id, job_ids in orders_with_jobs(client):
        with state.sessions() as session:
            offered = [
                job_id
                for job_id in job_ids
                if offer_windows(
                    session,
                    session.get_one(Job, job_id),
                    state.travel,
                    today=state.today(),
                    rules=state.rules,
                ).choices
            ]
        if offered:
            found.append((order_id, offered))
    return found


def bookable(client: TestClient, page: str, job_ids: list[int]) -> tuple[int, list[str]]:
    """The first job of the order, with the windows its page offers."""
    response = client.get(f"{page}/jobs/{job_ids[0]}/windows")
    assert response.status_code == 200
    windows = WINDOW_VALUE.findall(response.text)
    assert windows
    return job_ids[0], windows


def test_the_page_is_dutch_by_default_and_english_on_request(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, _ = orders_with_jobs(client)[0]
    page = link(client, headers, order_id)
    dutch = client.get(page)
    assert dutch.status_code == 200
    assert "Uw bestelling" in dutch.text
    assert 'lang="nl"' in dutch.text
    english = client.get(page + "?lang=en")
    assert "Your order" in english.text
    assert "<script" not in dutch.text  # no JavaScript needed, none fetched


def test_pick_a_window_book_it_once_and_see_it_on_the_page(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[0]
    page = link(client, headers, order_id)
    job_id, windows = bookable(client, page, job_ids)
    form = {"window": windows[0], "key": "k-1", "lang": "nl"}
    first = client.post(f"{page}/jobs/{job_id}/book", data=form, follow_redirects=False)
    assert first.status_code == 303, first.text
    retry = client.post(f"{page}/jobs/{job_id}/book", data=form, follow_redirects=False)
    assert retry.status_code == 303
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        live = session.scalars(
            select(Appointment).where(
                Appointment.job_id == job_id, Appointment.status == AppointmentStatus.PROMISED
            )
        ).all()
    assert len(live) == 1
    shown = client.get(first.headers["location"])
    assert "Uw afspraak staat vast" in shown.text
    invite = client.get(f"{page}/appointments/{live[0].id}/invite.ics")
    event = Calendar.from_ical(invite.content).events[0]
    assert event.start.isoformat() == windows[0].split("|")[0]


def test_neighbours_ids_and_forged_links_answer_404(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    (mine, _), (theirs, their_jobs) = bookable_orders(client)[1:3]
    page = link(client, headers, mine)
    assert client.get(f"{page}/jobs/{their_jobs[0]}/windows").status_code == 404
    response = client.post(
        f"{page}/jobs/{their_jobs[0]}/book",
        data={"window": "2026-11-24T09:00:00+01:00|2026-11-24T11:00:00+01:00", "key": "x"},
    )
    assert response.status_code == 404
    their_page = link(client, headers, theirs)
    job_id, windows = bookable(client, their_page, their_jobs)
    client.post(
        f"{their_page}/jobs/{job_id}/book",
        data={"window": windows[0], "key": "n-1"},
        follow_redirects=False,
    )
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        appointment = session.scalars(select(Appointment).where(Appointment.job_id == job_id)).one()
    assert client.get(f"{page}/appointments/{appointment.id}/invite.ics").status_code == 404
    assert client.post(f"{page}/appointments/{appointment.id}/cancel").status_code == 404
    token = page.rsplit("/", 1)[1]
    forged = client.get(f"/o/{token[:-3]}abc")
    assert forged.status_code == 404
    # A page in words, not a JSON body (issue 19); the same for every kind of bad link.
    assert forged.headers["content-type"].startswith("text/html")
    assert "Deze link werkt niet (meer)" in forged.text
    assert "<h1" in forged.text
    assert "detail" not in forged.text
    english = client.get(f"/o/{token[:-3]}abc?lang=en")
    assert "This link does not work" in english.text
    session_token = client.post("/auth/token", data={"username": "planner", "password": "pw"})
    assert client.get(f"/o/{session_token.json()['access_token']}").status_code == 404


def test_a_callback_request_lands_in_the_planners_queue(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, _ = orders_with_jobs(client)[4]
    page = link(client, headers, order_id)
    bad = client.post(f"{page}/callback", data={"phone": "call me"})
    assert bad.status_code == 422
    assert "geldig telefoonnummer" in bad.text
    good = client.post(
        f"{page}/callback",
        data={"phone": "+31 6 1234 5678", "preferred_time": "na 17:00", "note": "kraan lekt"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    queue = client.get("/callbacks", headers=headers).json()
    mine = [c for c in queue if c["order_id"] == order_id]
    assert len(mine) == 1
    assert mine[0]["note"] == "kraan lekt"
    assert client.get("/callbacks").status_code == 401
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        kinds = session.scalars(
            select(TimelineEvent.kind).where(TimelineEvent.order_id == order_id)
        ).all()
    assert EventKind.CALLBACK_REQUESTED in kinds
    done = client.post(f"/callbacks/{mine[0]['id']}/done", headers=headers)
    assert done.json()["status"] == "done"


def test_a_waiting_callback_shows_on_the_page_and_the_board_until_it_is_made(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, _ = orders_with_jobs(client)[5]
    page = link(client, headers, order_id)
    assert "pending-callback" not in client.get(page).text
    client.post(f"{page}/callback", data={"phone": "+31 6 5555 0000", "note": "vraag over kast"})
    shown = client.get(page).text
    assert "Wij bellen u terug op +31 6 5555 0000, uiterlijk " in shown
    board = client.get("/board", headers=headers).text
    assert "Terugbellen (" in board
    mine = re.search(
        r'data-callback="(\d+)">\s*<b>[^<]*</b> · <a href="tel:\+31 6 5555 0000"', board
    )
    assert mine is not None
    callback_id = int(mine.group(1))
    made = client.post(
        f"/board/callbacks/{callback_id}/done",
        data={"day": "2026-11-23"},
        headers=headers,
        follow_redirects=False,
    )
    assert made.status_code == 303
    assert "gebeld" in made.headers["location"]
    assert f'data-callback="{callback_id}"' not in client.get("/board", headers=headers).text
    assert "pending-callback" not in client.get(page).text
    again = client.post(
        f"/board/callbacks/{callback_id + 1000}/done",
        data={"day": "2026-11-23"},
        headers=headers,
        follow_redirects=False,
    )
    assert "dit+terugbelverzoek+bestaat+niet" in again.headers["location"]


def test_the_customer_cancels_and_the_job_is_open_again(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[3]
    page = link(client, headers, order_id)
    job_id, windows = bookable(client, page, job_ids)
    client.post(
        f"{page}/jobs/{job_id}/book",
        data={"window": windows[-1], "key": "c-1"},
        follow_redirects=False,
    )
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        appointment = session.scalars(select(Appointment).where(Appointment.job_id == job_id)).one()
    cancelled = client.post(
        f"{page}/appointments/{appointment.id}/cancel", data={"lang": "en"}, follow_redirects=False
    )
    assert cancelled.status_code == 303
    assert "cancelled" in client.get(cancelled.headers["location"]).text
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert session.get_one(Appointment, appointment.id).status == AppointmentStatus.CANCELLED
        assert session.get_one(Job, job_id).status == "new"


def test_planners_see_windows_and_a_taken_window_answers_409_with_fresh_ones(
    world: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, headers = world
    _, job_ids = bookable_orders(client)[4]
    offered = client.get(f"/jobs/{job_ids[0]}/windows", headers=headers)
    assert offered.status_code == 200
    body = offered.json()
    assert body["windows"] or body["reason"]
    sunday = {"start": "2026-11-29T09:00:00+01:00", "end": "2026-11-29T11:00:00+01:00"}
    refused = client.post(f"/jobs/{job_ids[0]}/appointment", json=sunday, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["windows"] is not None


def test_a_promise_the_day_cannot_keep_is_listed_with_proposals_and_shown_to_the_customer(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[5]
    offered = client.get(f"/jobs/{job_ids[0]}/windows", headers=headers).json()["windows"]
    window = {"start": offered[-1]["start"], "end": offered[-1]["end"]}
    booked = client.post(f"/jobs/{job_ids[0]}/appointment", json=window, headers=headers)
    assert booked.status_code == 201, booked.text
    day = datetime.fromisoformat(window["start"]).date()
    state = client.app.state  # type: ignore[attr-defined]
    with state.sessions() as session:  # everyone is ill that day
        for technician in session.scalars(select(Technician)):
            technician.absences.append(Absence(first_day=day, last_day=day, reason="flu"))
        region = session.scalars(select(Region)).one()
        plan_region(
            session,
            region,
            day,
            1,
            state.travel,
            optimizer.Limits(time_limit_s=0.5),
            today=state.today(),
        )
        session.commit()
    listed = client.get("/appointments/at-risk", headers=headers).json()
    mine = [a for a in listed if a["appointment"]["id"] == booked.json()["id"]]
    assert len(mine) == 1
    kept = datetime.fromisoformat(mine[0]["appointment"]["window_start"])
    assert kept == datetime.fromisoformat(booked.json()["window_start"])  # not moved
    assert mine[0]["proposals"]["windows"]
    assert all(
        datetime.fromisoformat(w["start"]).date() != day for w in mine[0]["proposals"]["windows"]
    )
    page = client.get(link(client, headers, order_id))
    assert "niet waarmaken" in page.text


@pytest.mark.parametrize(
    "window",
    [
        "2026-11-25T09:00:00|2026-11-25T11:00:00",  # no time zone
        "2026-11-25T11:00:00+01:00|2026-11-25T09:00:00+01:00",  # ends before it starts
        "2026-11-25T09:00:00+01:00|2026-11-26T11:00:00+01:00",  # no promise at all
        "tomorrow morning",
    ],
)
def test_a_malformed_window_gets_422_and_books_nothing(
    world: tuple[TestClient, dict[str, str]], window: str
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[0]
    page = link(client, headers, order_id)

    def events() -> int:
        with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            return len(session.scalars(select(TimelineEvent.id)).all())

    before = events()
    response = client.post(
        f"{page}/jobs/{job_ids[0]}/book", data={"window": window, "key": f"bad-{window[:12]}"}
    )
    assert response.status_code == 422
    assert events() == before  # nothing booked, moved or recorded


def test_the_order_page_names_parts_as_the_customer_knows_them(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        from fieldplan.catalogue import Part
        from fieldplan.jobs import JobPart

        needed = session.scalars(select(JobPart).order_by(JobPart.id)).first()
        assert needed is not None
        order_id = session.get_one(Job, needed.job_id).order_id
        part = session.get_one(Part, needed.part_sku)
    page = client.get(link(client, headers, order_id)).text
    assert page.count("<h1") == 1  # the order's number heads the page
    assert f"{needed.quantity}x {part.name}" in page
    assert needed.part_sku not in page  # the SKU is the warehouse's word, not the customer's


def test_inside_the_cut_off_the_page_says_so_instead_of_offering_move_and_cancel(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[-1]
    page = link(client, headers, order_id)
    job_id, windows = bookable(client, page, job_ids)
    booked = client.post(f"{page}/jobs/{job_id}/book", data={"window": windows[0], "key": "cut-1"})
    assert booked.status_code == 200, booked.text
    assert ">Annuleren<" in booked.text  # a day ahead: the customer may still cancel
    start = datetime.fromisoformat(windows[0].split("|")[0])
    state = client.app.state  # type: ignore[attr-defined]
    real_now = state.now
    state.now = lambda: start - timedelta(hours=3)  # the morning of the visit
    try:
        later = client.get(page).text
        with state.sessions() as session:
            appointment = session.scalars(
                select(Appointment).where(Appointment.job_id == job_id)
            ).one()
        refused = client.post(f"{page}/appointments/{appointment.id}/cancel")
    finally:
        state.now = real_now
    assert refused.status_code == 409
    assert 'role="alert">Zo kort voor de afspraak' in refused.text  # a sentence, capitalised
    section = later.split(f'id="job-{job_id}"', 1)[1].split("</section>", 1)[0]
    assert "verzetten of annuleren kan nu alleen nog via de winkel" in section
    assert ">Annuleren<" not in section
    assert "/windows" not in section


def test_moving_shows_where_the_appointment_stands_now(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[-2]
    page = link(client, headers, order_id)
    job_id, windows = bookable(client, page, job_ids)
    before = client.get(f"{page}/jobs/{job_id}/windows").text
    assert "Uw afspraak staat nu op" not in before
    booked = client.post(f"{page}/jobs/{job_id}/book", data={"window": windows[0], "key": "cur-1"})
    assert booked.status_code == 200
    start = datetime.fromisoformat(windows[0].split("|")[0])
    moving = client.get(f"{page}/jobs/{job_id}/windows").text
    assert f"Uw afspraak staat nu op {short_day(start.date(), 'nl')} {start:%H:%M}" in moving


def test_windows_are_picked_one_day_at_a_time(world: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[0]
    page = link(client, headers, order_id)
    first = client.get(f"{page}/jobs/{job_ids[0]}/windows").text
    tabs = re.findall(r'href="\?day=(\d{4}-\d{2}-\d{2})', first)
    assert len(tabs) > 1
    shown = set(WINDOW_VALUE.findall(first))
    other = client.get(f"{page}/jobs/{job_ids[0]}/windows", params={"day": tabs[-1]}).text
    later = set(WINDOW_VALUE.findall(other))
    assert later
    assert not later & shown
    assert all(v.startswith(tabs[-1]) for v in later)
    assert f'href="?day={tabs[-1]}&amp;lang=nl" aria-current="date"' in other
    # A hand-edited day answers the usual page, not an error.
    assert client.get(f"{page}/jobs/{job_ids[0]}/windows", params={"day": "x"}).status_code == 200


def test_every_customer_page_names_the_store_and_its_desk(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = world
    order_id, job_ids = bookable_orders(client)[0]
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        order = session.get_one(Order, order_id)
        store = session.get_one(Location, order.store_id)
        name, phone = store.name, store.phone
    page = link(client, headers, order_id)
    for path in (page, f"{page}/jobs/{job_ids[0]}/windows", f"{page}?lang=en"):
        text = client.get(path).text
        assert f"<strong>{escape(name)}</strong>" in text, path
        assert f'href="tel:{phone.replace(" ", "")}"' in text, path
