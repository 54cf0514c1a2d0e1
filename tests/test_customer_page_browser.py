"""The customer's page in headless Chromium: pick a window, see it confirmed, switch to
English, ask for a callback, cancel. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from api.main import create_app
from fieldplan.appointments import Appointment, AppointmentStatus
from fieldplan.callbacks import CallbackRequest
from fieldplan.settings import Settings
from tests.browser import check_page, screenshot_path, served
from tests.conftest import pin_clock, seed_database
from tests.test_self_service import bookable_orders


def test_a_customer_books_switches_language_asks_a_callback_and_cancels(
    browser: Browser, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seed_database(url, orders=30, password="pw", plan_days=1)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp_path)))
    with TestClient(app) as client:
        order_id, job_ids = bookable_orders(client)[0]
    token = app.state.order_links.issue(order_id)
    with served(app) as base:
        page = browser.new_page(bypass_csp=True)
        page.goto(f"{base}/o/{token}")
        expect(page.locator("h1")).to_contain_text("Uw bestelling")
        check_page(page, "customer-order")
        job = page.locator(f"#job-{job_ids[0]}")
        job.get_by_role("link", name="Kies een tijdvak").click()
        expect(page.locator("label.window.recommended").first).to_be_visible()
        # One day at a time; a window a few days out, so the customer may still cancel it.
        days = page.locator("nav.pick a")
        assert days.count() > 1
        last_day = days.last.get_attribute("href")
        days.last.click()
        expect(page.locator("nav.pick a[aria-current=date]")).to_have_attribute("href", last_day)
        assert page.locator("fieldset").count() == 1
        later = page.locator("fieldset label.window").first
        chosen = later.locator("input").get_attribute("value")
        later.click()
        page.screenshot(path=screenshot_path("customer-windows"), full_page=True)
        check_page(page, "customer-windows")
        page.get_by_role("button", name="Bevestigen").click()
        expect(page.get_by_role("status")).to_contain_text("Uw afspraak staat vast")
        expect(job.locator(".window")).not_to_have_text("nog geen")
        page.screenshot(path=screenshot_path("customer-booked"), full_page=True)

        page.get_by_role("link", name="English").click()
        expect(page.locator("h1")).to_contain_text("Your order")
        page.get_by_label("When suits you?").fill("after 5 pm")
        page.get_by_label("What is it about?").fill("Which colour did we pick?")
        page.get_by_role("button", name="Call me back").click()
        expect(page.get_by_role("status")).to_contain_text("We will call you back")
        expect(page.locator(".pending-callback")).to_contain_text("We will call you back on")

        job.get_by_role("button", name="Cancel").click()
        expect(page.get_by_role("status")).to_contain_text("cancelled")
        page.screenshot(path=screenshot_path("customer-cancelled"), full_page=True)
        page.goto(f"{base}/o/not-a-link")
        check_page(page, "customer-link-gone")

    with app.state.sessions() as session:
        appointment = session.scalars(
            select(Appointment).where(Appointment.job_id == job_ids[0])
        ).one()
        assert appointment.status == AppointmentStatus.CANCELLED
        assert chosen is not None
        assert appointment.changes[0].new_start == datetime.fromisoformat(chosen.split("|")[0])
        callback = session.scalars(
            select(CallbackRequest).where(CallbackRequest.order_id == order_id)
        ).one()
        assert callback.note == "Which colour did we pick?"
    assert screenshot_path("customer-booked").stat().st_size > 10_000
