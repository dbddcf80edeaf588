"""The web console in a real browser: Debian's Chromium, driven by Playwright.

One ``datacenter serve --web 127.0.0.1:0`` process runs on a temporary
storage for the whole module (its accounts made with ``datacenter user add
... --password-stdin``, as an administrator would); each test logs in
through the login form in a fresh browser context and uses files of its
own. Tests wait for a condition (a row in the ledger, an element on the
page), never for a fixed time.

Chromium is Debian's (``/usr/bin/chromium``), never a downloaded browser.
Without it these tests are skipped with a one-line note, except under CI
(``CI=true``), where they fail: ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers import PASSWORD, ROLES, ROOT, wait_for
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect, sync_playwright

from datacenter import config
from datacenter.config import Config
from datacenter.importing import Importer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]
STUDENT_HEADER = "student_id,name,email,birthday,level,state"
XSS = "<img src=x onerror=alert(1)>"

if not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true":
    pytest.skip(f"browser tests skipped: {CHROMIUM} is missing (apt-get install chromium)",
                allow_module_level=True)


@dataclass
class Console:
    """A running ``serve --web``: its address, its config, what it said on stderr."""

    url: str
    conf: Config
    proc: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + path


def _datacenter(conf_path: Path, *args: str, stdin: str | None = None,
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "datacenter", "--config", str(conf_path),
                           *args], input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)


def _config(folder: Path) -> Path:
    """The documented datacenter.toml in *folder*, with a short settle time."""
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^settle\s*=.*$", "settle = 0.2", text)
    text = re.sub(r"(?m)^rescan\s*=.*$", "rescan = 1", text)
    path = folder / "datacenter.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def console() -> Iterator[Console]:
    folder = Path(tempfile.mkdtemp(prefix="dc-browser-"))
    conf_path = _config(folder)
    conf = config.load(str(conf_path))
    Importer(conf).close()  # the storage, as `serve` makes it
    for role in ROLES:
        made = _datacenter(conf_path, "user", "add", role, "--role", role, "--password-stdin",
                           stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    proc = subprocess.Popen([sys.executable, "-m", "datacenter", "--config", str(conf_path),
                             "serve", "--web", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    stream = proc.stderr
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("console on http://" in line for line in lines)
                 or proc.poll() is not None)
        found = [re.search(r"console on (http://\S+)", line) for line in lines]
        address = next((m.group(1) for m in found if m), None)
        assert address, "".join(lines)
        yield Console(address, conf, proc, lines)
    finally:
        proc.terminate()  # SIGTERM: a clean stop
        proc.wait(timeout=60)
        reader.join(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
    assert proc.returncode == 0, "".join(lines)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"CI=true and {CHROMIUM} is missing: .ci/run installs it (apt-get install "
                    "chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Dialogs:
    """Every dialog a page opened (alert, confirm), and whether confirms are accepted."""

    seen: list[str] = field(default_factory=list)
    accept: bool = False

    def __call__(self, dialog: Dialog) -> None:
        self.seen.append(f"{dialog.type}: {dialog.message}")
        if self.accept and dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()


@contextlib.contextmanager
def session(browser: Browser, console: Console, name: str, *, javascript: bool = True,
            ) -> Iterator[tuple[Page, Dialogs]]:
    """A fresh browser context logged in as *name* through the login form."""
    context: BrowserContext = browser.new_context(java_script_enabled=javascript)
    try:
        page = context.new_page()
        dialogs = Dialogs()
        page.on("dialog", dialogs)
        page.goto(console.at("/"))
        expect(page.locator("#login-form")).to_be_visible()
        page.fill("#login-username", name)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#whoami")).to_have_text(f"{name} ({name})")
        yield page, dialogs
    finally:
        context.close()


def csv_file(folder: Path, name: str, *rows: str, header: str = STUDENT_HEADER) -> Path:
    path = folder / name
    path.write_text(header + "\r\n" + "".join(row + "\r\n" for row in rows), encoding="utf-8")
    return path


def jobs_of(conf: Config, source: str) -> list[tuple[int, int, str]]:
    """The imports of *source* done to the end (its files filed: a pending file at the
    root, the source in its folder): rows ok, rows failed, by whom."""
    if not os.path.exists(conf.database):
        return []
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        return [(int(ok), int(failed), str(user)) for ok, failed, user in db.execute(
            "SELECT ok, failed, user FROM datacenter_jobs WHERE source = ? AND distributed = 1 "
            "ORDER BY id",
            (source,))]


def student_names(conf: Config) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        return dict(db.execute("SELECT student_id, name FROM rec_students"))


def imported(conf: Config, source: str, count: int) -> Callable[[], bool]:
    return lambda: len(jobs_of(conf, source)) >= count


def upload(page: Page, console: Console, path: Path, processor: str, mode: str,
           drag: bool = False) -> None:
    """Choose *path* on the upload page (picker, or dropped), with *processor* and *mode*."""
    page.goto(console.at("/upload"))
    page.select_option("#upload-processor", processor)
    page.select_option("#upload-mode", mode)
    if drag:
        transfer = page.evaluate_handle(
            """([name, text]) => {
                 const transfer = new DataTransfer();
                 transfer.items.add(new File([text], name, {type: "text/csv"}));
                 return transfer;
               }""", [path.name, path.read_text(encoding="utf-8")])
        page.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    else:
        page.set_input_files("#upload-file", str(path))


# -- a manager's day -----------------------------------------------------------------------


def test_a_manager_uploads_bad_rows_fixes_a_cell_and_sees_them_imported(
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "intake.csv",
                      "B1,Ada Obi,ada@example.org,2004-03-15,100,admitted,red",
                      "B2,Bo Eze,bo@example.org,2003-11-02,abc,admitted,blue",
                      header=STUDENT_HEADER + ",colour")
    with session(browser, console, "manager") as (page, dialogs):
        upload(page, console, source, "students", "create")
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

        wait_for(imported(console.conf, "students_intake.csv", 1))
        assert jobs_of(console.conf, "students_intake.csv") == [(1, 1, "manager")]
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
        wait_for(imported(console.conf, pending, 1))
        assert jobs_of(console.conf, pending) == [(1, 0, "manager")]
        assert student_names(console.conf)["B2"] == "Bo Eze"
        page.goto(console.at("/"))
        last = page.locator("#last-imports tbody tr").first
        expect(last).to_contain_text(pending)
        expect(last).to_contain_text("manager")
        expect(page.locator("#actions")).to_contain_text("fix")
        assert dialogs.seen == []


def test_a_dropped_file_is_previewed_and_its_rows_discarded(
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "late.csv",
                      "C1,Cy Ude,cy@example.org,2004-03-15,lots,admitted",
                      "C2,Di Ofor,di@example.org,2003-11-02,300,expelled")
    with session(browser, console, "manager") as (page, dialogs):
        upload(page, console, source, "students", "create", drag=True)
        expect(page.locator("#preview-summary")).to_contain_text(
            "students_late.csv: processor students, mode create, 2 row(s)")
        assert page.locator("#upload-file").evaluate("input => input.files[0].name") \
            == "late.csv"
        page.click("#upload-submit")
        expect(page.locator("#message")).to_contain_text("Uploaded late.csv")

        wait_for(imported(console.conf, "students_late.csv", 1))
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
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "markup.csv",
                      f"X1,{XSS},x@example.org,2004-03-15,nope,admitted")
    with session(browser, console, "manager") as (page, dialogs):
        upload(page, console, source, "students", "create")
        cell = page.locator("#preview-table td").nth(1)
        expect(cell).to_have_text(XSS)
        expect(page.locator("#upload-preview img")).to_have_count(0)
        page.click("#upload-submit")
        wait_for(imported(console.conf, "students_markup.csv", 1))
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
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "seen.csv", "V1,Vi Eke,vi@example.org,2004-03-15,x,admitted")
    with session(browser, console, "manager") as (page, _):
        upload(page, console, source, "students", "create")
        page.click("#upload-submit")
    wait_for(imported(console.conf, "students_seen.csv", 1))
    with session(browser, console, "viewer") as (page, _):
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
        browser: Browser, console: Console) -> None:
    with session(browser, console, "admin") as (page, _):
        for path in ("/", "/upload", "/users", "/pending", "/logs", "/export", "/processors"):
            page.goto(console.at(path))
            forms = page.locator("form[method=post]")
            assert forms.count() >= 1, path
            for n in range(forms.count()):
                token = forms.nth(n).locator("input[name=csrf]")
                expect(token).to_have_count(1)
                assert len(token.get_attribute("value") or "") > 20, path


def test_logging_out_ends_the_session(browser: Browser, console: Console) -> None:
    with session(browser, console, "manager") as (page, _):
        page.click("#logout-button")
        expect(page.locator("#login-form")).to_be_visible()
        answer = page.goto(console.at("/pending"))
        assert answer is not None and answer.status == 401
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#problem")).to_have_text("log in to see this page")
        expect(page.locator("#whoami")).to_have_count(0)


def test_a_wrong_password_says_so_on_the_login_page(browser: Browser,
                                                   console: Console) -> None:
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


def test_every_page_reads_without_javascript(browser: Browser, console: Console,
                                            tmp_path: Path) -> None:
    source = csv_file(tmp_path, "plain.csv", "P0,Po Okon,po@example.org,2004-03-15,100,admitted",
                      "P1,Pe Okon,pe@example.org,2004-03-15,y,admitted")
    with session(browser, console, "manager", javascript=False) as (page, _):
        # Even an upload: the form posts the file itself.
        page.goto(console.at("/upload"))
        page.select_option("#upload-processor", "students")
        page.set_input_files("#upload-file", str(source))
        page.click("#upload-submit")
        expect(page.locator("#message")).to_contain_text("Uploaded plain.csv")
        wait_for(imported(console.conf, "students_plain.csv", 1))
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


# -- what a first user ran into -------------------------------------------------------------


def test_a_refused_file_is_previewed_as_its_reason_alone(
        browser: Browser, console: Console, tmp_path: Path) -> None:
    workbook = tmp_path / "marks.xlsx"
    workbook.write_bytes(b"PK\x03\x04 a workbook")
    with session(browser, console, "manager") as (page, _):
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


def test_removing_an_account_asks_first(browser: Browser, console: Console) -> None:
    made = _datacenter(Path(str(console.conf.path)), "user", "add", "dora", "--role", "viewer",
                       "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    with session(browser, console, "admin") as (page, dialogs):
        page.goto(console.at("/users"))
        page.click("button[aria-label='remove dora']")
        expect(page.locator("#user-dora")).to_be_visible()
        assert dialogs.seen == ["confirm: Remove the account dora?"]
        dialogs.accept = True
        page.click("button[aria-label='remove dora']")
        expect(page.locator("#message")).to_have_text("removed account dora")
        expect(page.locator("#user-dora")).to_have_count(0)


def test_no_page_asks_the_server_for_anything_it_does_not_have(
        browser: Browser, console: Console) -> None:
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
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "lapse.csv", "L1,Lu Ani,lu@example.org,2004-03-15,z,admitted")
    pending = "students_lapse.create.pending.csv"
    with session(browser, console, "manager") as (page, _):
        upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(imported(console.conf, "students_lapse.csv", 1))
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
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "batch #2? 100%41.csv",
                      "K1,Ka Odu,ka@example.org,2004-03-15,q,admitted")
    pending = "students_batch #2? 100%41.create.pending.csv"
    with session(browser, console, "manager") as (page, _):
        upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(imported(console.conf, "students_batch #2? 100%41.csv", 1))
        page.click("#nav-pending")
        page.get_by_role("link", name=pending, exact=True).click()
        expect(page.locator("h1")).to_have_text(pending)
        page.fill("#pending-grid input.cell-failing", "100")
        page.click("#save-button")
        expect(page.locator("#message")).to_contain_text(f"Saved 1 row(s) of {pending}")
        wait_for(imported(console.conf, pending, 1))
        assert jobs_of(console.conf, pending) == [(1, 0, "manager")]


def test_enter_in_the_grid_moves_down_and_leaving_unsaved_edits_asks_first(
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "keys.csv", "E1,Eb Ola,e@example.org,2004-03-15,m,admitted",
                      "E2,Ed Ola,d@example.org,2004-03-15,n,admitted")
    pending = "students_keys.create.pending.csv"
    with session(browser, console, "manager") as (page, dialogs):
        upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(imported(console.conf, "students_keys.csv", 1))
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
        wait_for(imported(console.conf, pending, 1))
        assert jobs_of(console.conf, pending) == [(2, 0, "manager")]


def test_discarding_with_edits_asks_once(browser: Browser, console: Console,
                                         tmp_path: Path) -> None:
    source = csv_file(tmp_path, "once.csv", "O1,Os Ola,o@example.org,2004-03-15,w,admitted")
    pending = "students_once.create.pending.csv"
    with session(browser, console, "manager") as (page, dialogs):
        upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(imported(console.conf, "students_once.csv", 1))
        page.goto(console.at(f"/pending/{pending}"))
        page.fill("#cell-0-4", "still wrong")
        dialogs.accept = True
        page.click("#discard-button")
        expect(page.locator("#message")).to_contain_text(f"Discarded 1 row(s) of {pending}")
        assert dialogs.seen == [f"confirm: Give up all 1 row(s) of {pending} for good?"]


def test_a_file_dropped_beside_the_drop_zone_does_not_leave_the_page(
        browser: Browser, console: Console) -> None:
    with session(browser, console, "manager") as (page, _):
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
        browser: Browser, console: Console, tmp_path: Path) -> None:
    source = csv_file(tmp_path, "twice.csv", "T1,Ti Obi,t@example.org,2004-03-15,u,admitted",
                      "T2,Tu Obi,u@example.org,2004-03-15,v,admitted")
    pending = "students_twice.create.pending.csv"
    with session(browser, console, "manager") as (page, dialogs):
        upload(page, console, source, "students", "create")
        page.click("#upload-submit")
        wait_for(imported(console.conf, "students_twice.csv", 1))
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
        wait_for(imported(console.conf, pending, 1))
        other.reload()
        expect(other.locator("#grid-total")).to_have_text("1")
        expect(other.locator("#pending-grid input.cell-failing")).to_have_value("v")
        assert dialogs.seen == []
