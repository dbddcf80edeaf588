"""The console's pages as a person uses them, without JavaScript: forms and links.

Log in, see the dashboard, upload, open a pending file as a grid, fix a
cell and save, discard; a viewer sees no upload and no save button. Long
lists come a page at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PASSWORD, students_csv, web_accounts, web_conf
from starlette.testclient import TestClient

from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.web import create_app


@pytest.fixture
def conf(tmp_path: Path) -> Config:
    conf = web_conf(tmp_path)
    web_accounts(conf)
    return conf


@pytest.fixture
def browser(conf: Config) -> Iterator[TestClient]:
    with TestClient(create_app(conf)) as client:
        yield client


def log_in_form(client: TestClient, name: str) -> str:
    """Log in through the page's form; the CSRF token the next page's forms carry."""
    form = client.get("/login")
    assert 'id="login-form"' in form.text
    answer = client.post("/login", data={"username": name, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 200 and 'id="whoami"' in answer.text
    return csrf_of(answer.text)


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def import_students(conf: Config, *rows: str, name: str = "students.csv") -> None:
    importer = Importer(conf)
    try:
        path = Path(conf.storage, name)
        path.write_text(students_csv(*rows))
        importer.import_file(str(path), user="seed")
    finally:
        importer.close()


def test_a_wrong_password_shows_the_form_again_with_the_reason(browser: TestClient) -> None:
    answer = browser.post("/login", data={"username": "viewer", "password": "wrong-wrong"})
    assert answer.status_code == 401
    assert 'id="problem"' in answer.text and "wrong name or password" in answer.text


def test_the_dashboard_shows_counts_service_imports_and_who(conf: Config,
                                                           browser: TestClient) -> None:
    import_students(conf, "S1,Ada,ada@example.org,2004-03-15,abc,admitted")
    log_in_form(browser, "viewer")
    page = browser.get("/").text
    assert 'id="counts"' in page and 'id="count-unfinished"' in page
    assert 'id="health"' in page and "gone: no service process holds the storage" in page
    assert "students.csv" in page and ">seed<" in page
    assert 'href="/pending/students.create.pending.csv"' in page


def test_a_viewer_sees_no_upload_save_or_discard(conf: Config, browser: TestClient) -> None:
    import_students(conf, "S1,Ada,ada@example.org,2004-03-15,abc,admitted")
    log_in_form(browser, "viewer")
    assert 'id="nav-upload"' not in browser.get("/").text
    grid = browser.get("/pending/students.create.pending.csv").text
    assert 'id="pending-grid"' in grid
    assert 'id="save-button"' not in grid and 'id="discard-button"' not in grid
    assert "readonly" in grid
    assert browser.get("/upload").status_code == 403


def test_upload_fix_and_save_through_the_pages(conf: Config, browser: TestClient) -> None:
    csrf = log_in_form(browser, "manager")
    form = browser.get("/upload").text
    for element in ('id="drop-zone"', 'id="upload-file"', 'id="upload-processor"',
                    'id="upload-mode"', 'id="upload-preview"', 'id="upload-submit"'):
        assert element in form
    sent = students_csv("S1,Ada,ada@example.org,2004-03-15,abc,admitted")
    done = browser.post("/upload", data={"csrf": csrf, "processor": "", "mode": ""},
                        files={"file": ("students.csv", sent.encode())})
    assert done.status_code == 200 and "Uploaded students.csv as students.csv" in done.text
    importer = Importer(conf)  # the service's part, done here at once
    try:
        path = str(Path(conf.storage, "students.csv"))
        importer.import_file(path, user=importer.dropped_by(path))
    finally:
        importer.close()
    grid = browser.get("/pending/students.create.pending.csv").text
    level = re.search(r'<input id="cell-0-4" name="c0_4" class="cell cell-failing" '
                      r'value="abc" aria-label="line 2 level" aria-invalid="true">', grid)
    assert level is not None, grid
    assert 'class="cell" value="Ada"' in grid
    fields = dict(re.findall(r'<input type="hidden" name="(version|offset|count)" '
                             r'value="([^"]*)">', grid))
    columns = re.findall(r'<input type="hidden" name="column" value="([^"]*)">', grid)
    cells = dict(re.findall(r'name="(c0_\d)" class="cell[^"]*" value="([^"]*)"', grid))
    cells["c0_4"] = "100"
    saved = browser.post("/pending/students.create.pending.csv/save", data={
        "csrf": csrf, **fields, "column": columns, **cells})
    assert saved.status_code == 200 and "Saved 1 row(s)" in saved.text
    text = Path(conf.storage, "students.create.pending.csv").read_text()
    assert "S1,Ada,ada@example.org,2004-03-15,100,admitted" in text
    stale = browser.post("/pending/students.create.pending.csv/save", data={
        "csrf": csrf, **fields, "column": columns, **cells})
    assert stale.status_code == 409 and "changed since it was read" in stale.text


def test_discard_through_the_page(conf: Config, browser: TestClient) -> None:
    import_students(conf, "S1,Ada,ada@example.org,2004-03-15,abc,admitted")
    csrf = log_in_form(browser, "manager")
    grid = browser.get("/pending/students.create.pending.csv").text
    assert 'id="discard-form"' in grid and 'id="discard-button"' in grid
    done = browser.post("/pending/students.create.pending.csv/discard", data={"csrf": csrf})
    assert done.status_code == 200 and "Discarded 1 row(s)" in done.text
    assert "(by manager)" in done.text
    assert Path(conf.storage, "finished", "students.create.discarded.csv").is_file()


def test_a_long_pending_file_comes_a_page_at_a_time(conf: Config, browser: TestClient) -> None:
    import_students(conf, *(f"S{n},N{n},n{n}@example.org,2004-03-15,x{n},admitted"
                            for n in range(250)))
    log_in_form(browser, "manager")
    first = browser.get("/pending/students.create.pending.csv").text
    assert 'id="cell-99-0"' in first and 'id="cell-100-0"' not in first
    assert "page 1 of 3" in first and 'id="page-next"' in first
    last = browser.get("/pending/students.create.pending.csv?page=3").text
    assert 'value="S249"' in last and 'id="cell-49-0"' in last and 'id="page-next"' not in last


def test_folders_processors_logs_export_and_accounts_pages(conf: Config,
                                                          browser: TestClient) -> None:
    import_students(conf, *(f"S{n},N{n},n{n}@example.org,2004-03-15,100,admitted"
                            for n in range(3)))
    csrf = log_in_form(browser, "admin")
    finished = browser.get("/files/finished").text
    assert 'id="folder-files"' in finished and 'href="/files/finished/students.csv"' in finished
    assert browser.get("/files/finished/students.csv").text.startswith("student_id")
    assert browser.get("/files/nowhere").status_code == 404
    processors = browser.get("/processors").text
    assert 'id="processor-students"' in processors and 'id="template-students"' in processors
    logs = browser.get("/logs", params={"query": "processed"}).text
    assert 'id="log-query"' in logs and "processed: students.csv" in logs
    assert browser.get("/logs", params={"query": "(["}).status_code == 400
    assert 'id="export-form"' in browser.get("/export").text
    exported = browser.get("/export", params={"processor": "students", "format": "csv"})
    assert exported.text.count("\r\n") == 4
    users = browser.get("/users").text
    assert 'id="user-add-form"' in users and 'id="user-viewer"' in users
    added = browser.post("/users", data={"csrf": csrf, "action": "add", "username": "erin",
                                         "password": PASSWORD, "role": "manager"})
    assert added.status_code == 200 and 'id="user-erin"' in added.text
    removed = browser.post("/users", data={"csrf": csrf, "action": "remove",
                                           "username": "erin"})
    assert 'id="user-erin"' not in removed.text


def test_logout_ends_the_session(browser: TestClient) -> None:
    csrf = log_in_form(browser, "viewer")
    assert browser.post("/logout", data={"csrf": "forged"}).status_code == 403
    out = browser.post("/logout", data={"csrf": csrf})
    assert 'id="login-form"' in out.text
    assert browser.get("/").status_code == 401


def test_static_files_are_served_without_a_session(browser: TestClient) -> None:
    assert "drop-zone" in browser.get("/static/console.js").text
    assert browser.get("/static/console.css").status_code == 200


def test_the_dashboard_shows_the_file_in_hand_with_its_progress(conf: Config,
                                                               browser: TestClient) -> None:
    state = {"state": "running", "updated": 2e9, "in_hand": "big.csv",
             "progress": {"file": "big.csv", "rows": 120_000, "bytes": 37, "size": 100,
                          "percent": 37, "rows_per_second": 45_000, "eta_seconds": 12.0}}
    Path(conf.storage, ".datacenter", "service.json").write_text(json.dumps(state))
    log_in_form(browser, "viewer")
    page = browser.get("/").text
    assert "Importing big.csv: 37% (120,000 rows, 45,000 rows/s, ETA 12 s)" in page
    assert 'id="in-hand-progress" max="100" value="37"' in page
