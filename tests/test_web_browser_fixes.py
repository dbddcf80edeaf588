"""What a first user of the console ran into in the browser, each kept fixed.

The JavaScript's part and what only a real browser shows: a refused
file's preview says its reason alone; removing an account, discarding rows
and leaving unsaved edits ask first, once; Enter in the grid moves down
instead of saving a half-fixed page; a file dropped beside the drop zone
keeps the page; no page asks for what the server does not have (its
icon); a fix sent after the session ended logs in back to its grid; a name
with ``#``, ``?`` or ``%`` is reached by its link; a save refused as stale
leads back to the grid. The console and the browser are
``tests/helpers.py``'s, as in ``test_web_browser.py``; skipped with a
one-line note without Chromium, failing instead under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    PASSWORD,
    LiveConsole,
    browser_session,
    choose_upload,
    chromium,
    csv_file,
    datacenter_cli,
    filed,
    filed_jobs,
    live_console,
    skip_without_chromium,
    student_names,
    wait_for,
)
from playwright.sync_api import Browser, expect

XSS = "<img src=x onerror=alert(1)>"

skip_without_chromium()


@pytest.fixture(scope="module")
def console() -> Iterator[LiveConsole]:
    with live_console() as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_a_refused_file_is_previewed_as_its_reason_alone(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    workbook = tmp_path / "marks.xlsx"
    workbook.write_bytes(b"PK\x03\x04 a workbook")
    with browser_session(browser, console, "manager") as (page, _):
        page.goto(console.at("/upload"))
        page.set_input_files("#upload-file", str(workbook))
        expect(page.locator("#preview-problem")).to_have_text(
            "marks.xlsx: not a CSV file (a spreadsheet workbook: save it as CSV UTF-8)")
        # No "processor ?, 0 row(s)" under it: nothing was read.
        expect(page.locator("#preview-summary")).to_have_count(0)
        page.select_option("#upload-processor", "students")
        page.click("#upload-submit")
        expect(page.locator("#problem")).to_contain_text("marks.xlsx: not a CSV file")
        expect(page.locator("#upload-processor")).to_have_value("students")


def test_removing_an_account_asks_first(browser: Browser, console: LiveConsole) -> None:
    made = datacenter_cli(Path(str(console.conf.path)), "user", "add", "dora", "--role", "viewer",
                       "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    with browser_session(browser, console, "admin") as (page, dialogs):
        page.goto(console.at("/users"))
        page.click("button[aria-label='remove dora']")
        expect(page.locator("#user-dora")).to_be_visible()
        assert dialogs.seen == ["confirm: Remove the account dora?"]
        dialogs.accept = True
        page.click("button[aria-label='remove dora']")
        expect(page.locator("#message")).to_have_text("removed account dora")
        expect(page.locator("#user-dora")).to_have_count(0)


def test_no_page_asks_the_server_for_anything_it_does_not_have(
        browser: Browser, console: LiveConsole) -> None:
    context = browser.new_context()  # a fresh one: a browser asks for an icon once per site
    try:
        page = context.new_page()
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        # The browser's own requests (its icon) show only in the page's console.
        page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
        page.goto(console.at("/login"))
        page.fill("#login-username", "admin")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#whoami")).to_be_visible()
        for path in ("/", "/upload", "/pending", "/files/finished", "/processors", "/logs",
                     "/export", "/users"):
            page.goto(console.at(path))
            page.wait_for_load_state("load")
        assert failed == []
    finally:
        context.close()


def test_a_fix_saved_after_the_session_ended_logs_in_back_to_the_grid(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "lapse.csv", "L1,Lu Ani,lu@example.org,2004-03-15,z,admitted")
    pending = "students_lapse.create.pending.csv"
    with browser_session(browser, console, "manager") as (page, _):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_lapse.csv", 1))
        page.goto(console.at(f"/pending/{pending}"))
        # The session ends (idle too long, or the console restarted): the cookie stays.
        [cookie] = page.context.cookies()
        page.context.add_cookies([{"name": cookie["name"], "value": "ended",
                                   "url": console.url}])
        page.fill("#pending-grid input.cell-failing", "300")
        page.click("#save-button")
        expect(page.locator("#problem")).to_have_text(
            "your session has ended (idle too long, or the console restarted): log in again")
        page.fill("#login-username", "manager")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("h1")).to_have_text(pending)  # the grid again, to fix once more
        expect(page.locator("#pending-grid input.cell-failing")).to_have_value("z")


def test_a_file_whose_name_holds_a_hash_a_question_mark_or_a_percent_is_reached_by_its_link(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "batch #2? 100%41.csv",
                      "K1,Ka Odu,ka@example.org,2004-03-15,q,admitted")
    pending = "students_batch #2? 100%41.create.pending.csv"
    with browser_session(browser, console, "manager") as (page, _):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_batch #2? 100%41.csv", 1))
        page.click("#nav-pending")
        page.get_by_role("link", name=pending, exact=True).click()
        expect(page.locator("h1")).to_have_text(pending)
        page.fill("#pending-grid input.cell-failing", "100")
        page.click("#save-button")
        expect(page.locator("#message")).to_contain_text(f"Saved 1 row(s) of {pending}")
        wait_for(filed(console.conf, pending, 1))
        assert filed_jobs(console.conf, pending) == [(1, 0, "manager")]


def test_enter_in_the_grid_moves_down_and_leaving_unsaved_edits_asks_first(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "keys.csv", "E1,Eb Ola,e@example.org,2004-03-15,m,admitted",
                      "E2,Ed Ola,d@example.org,2004-03-15,n,admitted")
    pending = "students_keys.create.pending.csv"
    with browser_session(browser, console, "manager") as (page, dialogs):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_keys.csv", 1))
        page.goto(console.at(f"/pending/{pending}"))
        version = page.locator("input[name=version]").input_value()
        page.fill("#cell-0-4", "100")
        page.press("#cell-0-4", "Enter")  # not a save of the half-fixed page: the next row
        expect(page.locator("#cell-1-4")).to_be_focused()
        page.press("#cell-1-4", "Shift+Enter")
        expect(page.locator("#cell-0-4")).to_be_focused()
        expect(page.locator("#message")).to_have_count(0)
        assert page.locator("input[name=version]").input_value() == version
        page.click("#nav-dashboard")
        expect(page.locator("h1")).to_have_text(pending)  # asked, and stayed
        assert [d.split(":")[0] for d in dialogs.seen] == ["beforeunload"]
        page.fill("#cell-1-4", "200")
        page.click("#save-button")  # saving never asks
        expect(page.locator("#message")).to_contain_text(f"Saved 2 row(s) of {pending}")
        assert len(dialogs.seen) == 1
        wait_for(filed(console.conf, pending, 1))
        assert filed_jobs(console.conf, pending) == [(2, 0, "manager")]


def test_discarding_with_edits_asks_once(browser: Browser, console: LiveConsole,
                                         tmp_path: Path) -> None:
    source = csv_file(tmp_path, "once.csv", "O1,Os Ola,o@example.org,2004-03-15,w,admitted")
    pending = "students_once.create.pending.csv"
    with browser_session(browser, console, "manager") as (page, dialogs):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_once.csv", 1))
        page.goto(console.at(f"/pending/{pending}"))
        page.fill("#cell-0-4", "still wrong")
        dialogs.accept = True
        page.click("#discard-button")
        expect(page.locator("#message")).to_contain_text(f"Discarded 1 row(s) of {pending}")
        assert dialogs.seen == [f"confirm: Give up all 1 row(s) of {pending} for good?"]


def test_a_file_dropped_beside_the_drop_zone_does_not_leave_the_page(
        browser: Browser, console: LiveConsole) -> None:
    with browser_session(browser, console, "manager") as (page, _):
        page.goto(console.at("/upload"))
        kept = page.evaluate("""() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["code,title\\n"], "faculties.csv"));
            const drop = new DragEvent("drop", {dataTransfer: transfer, cancelable: true,
                                                bubbles: true});
            document.querySelector("h1").dispatchEvent(drop);
            return drop.defaultPrevented;
        }""")
        assert kept is True


def test_a_save_refused_as_stale_says_why_and_leads_back_to_the_grid(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "twice.csv", "T1,Ti Obi,t@example.org,2004-03-15,u,admitted",
                      "T2,Tu Obi,u@example.org,2004-03-15,v,admitted")
    pending = "students_twice.create.pending.csv"
    with browser_session(browser, console, "manager") as (page, dialogs):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_twice.csv", 1))
        page.goto(console.at(f"/pending/{pending}"))
        other = page.context.new_page()  # the same grid in a second tab
        other.goto(console.at(f"/pending/{pending}"))
        page.fill("#cell-0-4", "100")
        page.click("#save-button")
        expect(page.locator("#message")).to_contain_text(f"Saved 2 row(s) of {pending}")
        other.fill("#cell-1-4", "200")
        other.click("#save-button")
        expect(other.locator("#error-reason")).to_have_text(
            f"{pending}: changed since it was read (imported again, or edited); nothing was "
            "saved: load it again")
        other.click("#error-back")
        expect(other.locator("h1")).to_have_text(pending)
        wait_for(filed(console.conf, pending, 1))
        other.reload()
        expect(other.locator("#grid-total")).to_have_text("1")
        expect(other.locator("#pending-grid input.cell-failing")).to_have_value("v")
        assert dialogs.seen == []


def test_a_cell_with_a_line_break_is_kept_through_a_fix_of_another_cell(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = tmp_path / "notes.csv"
    source.write_bytes(b"student_id,name,email,birthday,level,state\r\n"
                       b'N1,"Line one\nLine two",n@example.org,2004-03-15,bad,admitted\r\n')
    pending = "students_notes.create.pending.csv"
    with browser_session(browser, console, "manager") as (page, _):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_notes.csv", 1))
        page.goto(console.at(f"/pending/{pending}"))
        expect(page.locator("textarea#cell-0-1")).to_have_value("Line one\nLine two")
        page.fill("#cell-0-4", "100")
        page.click("#save-button")
        expect(page.locator("#message")).to_contain_text(f"Saved 1 row(s) of {pending}")
        wait_for(filed(console.conf, pending, 1))
        assert student_names(console.conf)["N1"] == "Line one\nLine two"
