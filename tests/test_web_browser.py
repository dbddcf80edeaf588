"""The web console in a real browser: Debian's Chromium, driven by Playwright.

One ``datacenter serve --web 127.0.0.1:0`` process runs on a temporary
storage for the whole module (its accounts made with ``datacenter user add
... --password-stdin``, as an administrator would); each test logs in
through the login form in a fresh browser context and uses files of its
own. Tests wait for a condition (a row in the ledger, an element on the
page), never for a fixed time. The console, the browser and the steps the
tests share are ``tests/helpers.py``'s; what a first user ran into is
``test_web_browser_fixes.py``.

Chromium is Debian's (``/usr/bin/chromium``), never a downloaded browser.
Without it these tests are skipped with a one-line note, except under CI
(``CI=true``), where they fail: ``.ci/run`` installs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers import (
    STUDENT_HEADER,
    LiveConsole,
    browser_session,
    choose_upload,
    chromium,
    csv_file,
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


# -- a manager's day -----------------------------------------------------------------------


def test_a_manager_uploads_bad_rows_fixes_a_cell_and_sees_them_imported(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "intake.csv",
                      "B1,Ada Obi,ada@example.org,2004-03-15,100,admitted,red",
                      "B2,Bo Eze,bo@example.org,2003-11-02,abc,admitted,blue",
                      header=STUDENT_HEADER + ",colour")
    with browser_session(browser, console, "manager") as (page, dialogs):
        choose_upload(page, console, source, "students", "create")
        # The preview: what would be stored, and the header's warnings, before anything is.
        expect(page.locator("#preview-summary")).to_contain_text(
            "students_intake.csv: processor students, mode create, 2 row(s)")
        expect(page.locator("#preview-warnings")).to_have_text(
            "unknown column(s), not imported: colour")
        expect(page.locator("#preview-table tr")).to_have_count(3)
        assert not Path(console.conf.storage, "students_intake.csv").exists()
        page.click("#upload-submit")
        expect(page.locator("#message")).to_contain_text(
            "Uploaded intake.csv as students_intake.csv (students, create, 2 rows); the "
            "service imports it")

        wait_for(filed(console.conf, "students_intake.csv", 1))
        assert filed_jobs(console.conf, "students_intake.csv") == [(1, 1, "manager")]
        pending = "students_intake.create.pending.csv"
        page.click("#nav-pending")
        page.click(f"a.pending-link:text-is('{pending}')")
        expect(page.locator("h1")).to_have_text(pending)
        expect(page.locator("#grid-total")).to_have_text("1")
        failing = page.locator("#pending-grid input.cell-failing")
        expect(failing).to_have_count(1)
        expect(failing).to_have_attribute("aria-label", re.compile(r"level$"))
        expect(failing).to_have_value("abc")
        expect(page.locator("#reason-0")).to_contain_text("level: ")

        failing.fill("200")
        expect(page.locator("#pending-grid input.cell-edited")).to_have_count(1)
        page.click("#save-button")
        expect(page.locator("#message")).to_contain_text(
            f"Saved 1 row(s) of {pending} (1 in the file); the service imports it again")

        # The service imports the fixed file again, under the account that fixed it.
        wait_for(filed(console.conf, pending, 1))
        assert filed_jobs(console.conf, pending) == [(1, 0, "manager")]
        assert student_names(console.conf)["B2"] == "Bo Eze"
        page.goto(console.at("/"))
        last = page.locator("#last-imports tbody tr").first
        expect(last).to_contain_text(pending)
        expect(last).to_contain_text("manager")
        expect(page.locator("#actions")).to_contain_text("fix")
        assert dialogs.seen == []


def test_a_dropped_file_is_previewed_and_its_rows_discarded(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "late.csv",
                      "C1,Cy Ude,cy@example.org,2004-03-15,lots,admitted",
                      "C2,Di Ofor,di@example.org,2003-11-02,300,expelled")
    with browser_session(browser, console, "manager") as (page, dialogs):
        choose_upload(page, console, source, "students", "create", drag=True)
        expect(page.locator("#preview-summary")).to_contain_text(
            "students_late.csv: processor students, mode create, 2 row(s)")
        assert page.locator("#upload-file").evaluate("input => input.files[0].name") \
            == "late.csv"
        page.click("#upload-submit")
        expect(page.locator("#message")).to_contain_text("Uploaded late.csv")

        wait_for(filed(console.conf, "students_late.csv", 1))
        pending = "students_late.create.pending.csv"
        page.goto(console.at(f"/pending/{pending}"))
        expect(page.locator("#grid-total")).to_have_text("2")
        # Discarding asks first; refused, nothing happens.
        page.click("#discard-button")
        expect(page.locator("h1")).to_have_text(pending)
        assert dialogs.seen == [f"confirm: Give up all 2 row(s) of {pending} for good?"]
        assert Path(console.conf.storage, pending).exists()
        dialogs.accept = True
        page.click("#discard-button")
        expect(page.locator("#message")).to_contain_text(
            f"Discarded 2 row(s) of {pending}")
        expect(page.locator("#message")).to_contain_text("(by manager)")
        assert not Path(console.conf.storage, pending).exists()
        page.click("#nav-pending")
        expect(page.locator(f"a.pending-link:text-is('{pending}')")).to_have_count(0)
        page.goto(console.at("/files/finished"))
        expect(page.locator("#folder-files")).to_contain_text("students_late.create.discarded.csv")
        expect(page.locator("#actions")).to_have_count(0)  # the folder page has none
        page.goto(console.at("/"))
        expect(page.locator("#actions")).to_contain_text("discard")


# -- escaping --------------------------------------------------------------------------


def test_markup_in_a_cell_shows_as_text_and_runs_nothing(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "markup.csv",
                      f"X1,{XSS},x@example.org,2004-03-15,nope,admitted")
    with browser_session(browser, console, "manager") as (page, dialogs):
        choose_upload(page, console, source, "students", "create")
        cell = page.locator("#preview-table td").nth(1)
        expect(cell).to_have_text(XSS)
        expect(page.locator("#upload-preview img")).to_have_count(0)
        page.click("#upload-submit")
        wait_for(filed(console.conf, "students_markup.csv", 1))
        page.goto(console.at("/pending/students_markup.create.pending.csv"))
        expect(page.locator("#cell-0-1")).to_have_value(XSS)
        expect(page.locator("#pending-grid img")).to_have_count(0)
        page.goto(console.at("/logs?query=markup"))
        expect(page.locator("#log-lines")).to_contain_text("students_markup.csv")
        expect(page.locator("img")).to_have_count(0)
        # Markup in what the address says: the log search, the login's way back.
        page.goto(console.at("/logs") + "?query=" + quote(f'"{XSS}'))
        expect(page.locator("#log-query")).to_have_value(f'"{XSS}')
        expect(page.locator("img")).to_have_count(0)
        page.goto(console.at("/login") + "?next=" + quote(f'/"{XSS}'))
        expect(page.locator("input[name=next]")).to_have_value(f'/"{XSS}')
        expect(page.locator("img")).to_have_count(0)
        page.goto(console.at("/login") + "?next=" + quote("javascript:alert(1)"))
        expect(page.locator("input[name=next]")).to_have_value("/")
        expect(page.locator("img")).to_have_count(0)
        assert dialogs.seen == []


# -- roles and sessions -----------------------------------------------------------------


def test_a_viewer_sees_no_upload_and_cannot_reach_it(
        browser: Browser, console: LiveConsole, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "seen.csv", "V1,Vi Eke,vi@example.org,2004-03-15,x,admitted")
    with browser_session(browser, console, "manager") as (page, _):
        choose_upload(page, console, source, "students", "create")
        page.click("#upload-submit")
    wait_for(filed(console.conf, "students_seen.csv", 1))
    with browser_session(browser, console, "viewer") as (page, _):
        expect(page.locator("#nav-upload")).to_have_count(0)
        expect(page.locator("#nav-export")).to_have_count(0)
        expect(page.locator("#nav-users")).to_have_count(0)
        answer = page.goto(console.at("/upload"))
        assert answer is not None and answer.status == 403
        expect(page.locator("#error-reason")).to_have_text(
            "viewer is a viewer; this needs a manager")
        expect(page.locator("#upload-form")).to_have_count(0)
        page.goto(console.at("/pending/students_seen.create.pending.csv"))
        expect(page.locator("#pending-grid input.cell-failing")).to_have_value("x")
        expect(page.locator("#pending-grid input.cell").first).to_have_attribute("readonly", "")
        expect(page.locator("#save-button")).to_have_count(0)
        expect(page.locator("#discard-button")).to_have_count(0)


def test_every_form_that_changes_something_carries_the_sessions_csrf_token(
        browser: Browser, console: LiveConsole) -> None:
    with browser_session(browser, console, "admin") as (page, _):
        for path in ("/", "/upload", "/users", "/pending", "/logs", "/export", "/processors"):
            page.goto(console.at(path))
            forms = page.locator("form[method=post]")
            assert forms.count() >= 1, path
            for n in range(forms.count()):
                token = forms.nth(n).locator("input[name=csrf]")
                expect(token).to_have_count(1)
                assert len(token.get_attribute("value") or "") > 20, path


def test_logging_out_ends_the_session(browser: Browser, console: LiveConsole) -> None:
    with browser_session(browser, console, "manager") as (page, _):
        page.click("#logout-button")
        expect(page.locator("#login-form")).to_be_visible()
        answer = page.goto(console.at("/pending"))
        assert answer is not None and answer.status == 401
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#problem")).to_have_text("log in to see this page")
        expect(page.locator("#whoami")).to_have_count(0)


def test_a_wrong_password_says_so_on_the_login_page(browser: Browser,
                                                   console: LiveConsole) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(console.at("/login"))
        page.fill("#login-username", "viewer")
        page.fill("#login-password", "not the password")
        page.click("#login-submit")
        expect(page.locator("#problem")).to_have_text("wrong name or password")
        expect(page.locator("#whoami")).to_have_count(0)
    finally:
        context.close()


# -- without JavaScript ---------------------------------------------------------------------


def test_every_page_reads_without_javascript(browser: Browser, console: LiveConsole,
                                            tmp_path: Path) -> None:
    source = csv_file(tmp_path, "plain.csv", "P0,Po Okon,po@example.org,2004-03-15,100,admitted",
                      "P1,Pe Okon,pe@example.org,2004-03-15,y,admitted")
    with browser_session(browser, console, "manager", javascript=False) as (page, _):
        # Even an upload: the form posts the file itself.
        page.goto(console.at("/upload"))
        page.select_option("#upload-processor", "students")
        page.set_input_files("#upload-file", str(source))
        page.click("#upload-submit")
        expect(page.locator("#message")).to_contain_text("Uploaded plain.csv")
        wait_for(filed(console.conf, "students_plain.csv", 1))
        page.goto(console.at("/"))
        expect(page.locator("#counts")).to_contain_text("finished")
        expect(page.locator("#last-imports")).to_contain_text("students_plain.csv")
        page.click("#nav-pending")
        page.click("a.pending-link:text-is('students_plain.create.pending.csv')")
        expect(page.locator("#pending-grid input.cell-failing")).to_have_value("y")
        page.click("#nav-files")
        page.click("#folder-unfinished")  # the source waits there while rows are pending
        expect(page.locator("#folder-files")).to_contain_text("students_plain.csv")
        with page.expect_download() as downloaded:
            page.click("a.download:text-is('students_plain.csv')")
        assert Path(downloaded.value.path()).read_text(encoding="utf-8").startswith(
            STUDENT_HEADER)
        page.click("#nav-processors")
        expect(page.locator("#processor-students")).to_contain_text("student_id")
        with page.expect_download() as downloaded:
            page.click("#template-students")
        assert downloaded.value.suggested_filename == "students.csv"
        page.click("#nav-export")
        page.select_option("#export-processor", "students")
        page.select_option("#export-format", "json")
        with page.expect_download() as downloaded:
            page.click("#export-submit")
        assert downloaded.value.suggested_filename == "students.json"
        assert '"student_id": "P0"' in Path(downloaded.value.path()).read_text(encoding="utf-8")
        page.click("#nav-logs")
        page.fill("#log-query", "plain")
        page.click("#log-submit")
        expect(page.locator("#log-lines li").first).to_contain_text("plain")
        page.click("#logout-button")
        expect(page.locator("#login-form")).to_be_visible()
