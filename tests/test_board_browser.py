"""The planner board in headless Chromium: sign in, move a job to another technician, pin it
as that technician's first job, re-optimise the day, and see the pinned job stay first.
Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from api.main import create_app
from fieldplan.jobs import Job
from fieldplan.settings import Settings
from fieldplan.technicians import Technician
from tests.browser import check_page, screenshot_path, served
from tests.conftest import pin_clock, seed_database
from tests.test_steering import stored_plan_violations, tuesday_routes

TUESDAY = date(2026, 11, 24)


def test_move_pin_and_reoptimise_on_the_board(browser: Browser, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    seed_database(url, orders=40, password="pw", plan_days=2)
    app = pin_clock(create_app(Settings(database_url=url, secret_key="k", outbox_dir=tmp_path)))
    with TestClient(app) as client:
        routes = tuesday_routes(client)
        with app.state.sessions() as session:
            technicians = {t.id: t for t in session.scalars(select(Technician))}
            # A short job, to the technician with the lightest day, so that it fits.
            lightest = sorted(routes, key=lambda t: len(routes[t]))
            job_id, target = next(
                (job_id, technicians[other])
                for other in lightest
                for tech_id, jobs in routes.items()
                for job_id in jobs
                if other != tech_id
                and set(session.get_one(Job, job_id).skills) <= set(technicians[other].skills)
                and session.get_one(Job, job_id).crew_size == 1
                and session.get_one(Job, job_id).duration_min <= 45
            )
        with served(app) as base:
            page = browser.new_page(viewport={"width": 1500, "height": 1000}, bypass_csp=True)
            page.goto(f"{base}/board?day={TUESDAY}")
            check_page(page, "login")
            page.get_by_label("Gebruikersnaam").fill("planner")
            page.get_by_label("Wachtwoord").fill("pw")
            page.get_by_role("button", name="Aanmelden").click()
            page.goto(f"{base}/board?day={TUESDAY}")
            expect(page.locator(".timeline .row").first).to_be_visible()
            expect(page.locator(".map polyline").first).to_be_attached()
            page.screenshot(path=screenshot_path("board-before"), full_page=True)
            check_page(page, "board")

            block = page.locator(f'details.block.job[data-job="{job_id}"]').first
            block.locator("summary").click()
            block.get_by_label("Monteur").select_option(str(target.id))
            block.get_by_role("button", name="Verplaatsen").click()
            expect(page.get_by_role("status")).to_contain_text(f"verplaatst naar {target.code}")
            row = page.locator(f"#route-{target.id}")
            expect(row.locator(f'details[data-job="{job_id}"]')).to_have_count(1)

            moved = row.locator(f'details.block.job[data-job="{job_id}"]')
            moved.locator("summary").click()
            moved.get_by_label("als klus nr.").fill("1")
            moved.get_by_role("button", name="Vastzetten").click()
            expect(page.get_by_role("status")).to_contain_text(f"vastgezet bij {target.code}")
            expect(page.get_by_role("status")).to_contain_text("als klus 1")

            page.get_by_role("button", name="Deze dag opnieuw optimaliseren").click()
            # A run in the background: the board refreshes itself until it has ended.
            expect(page.get_by_role("status")).to_contain_text(
                "opnieuw geoptimaliseerd", timeout=30_000
            )
            pinned = page.locator(f'#route-{target.id} details.block.job[data-job="{job_id}"]')
            expect(pinned).to_have_count(1)
            expect(pinned).to_have_class("block job pinned")
            page.screenshot(path=screenshot_path("board-after"), full_page=True)
            customer = page.locator(f'details.block.job[data-job="{job_id}"] a').first
            page.goto(base + (customer.get_attribute("href") or ""))
            expect(page.locator("h1")).not_to_be_empty()
            check_page(page, "board-customer")
        assert tuesday_routes(client)[target.id][0] == job_id
        assert stored_plan_violations(client) == []
