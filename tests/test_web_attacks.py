"""What the console refuses: paths out of the storage, links, markup in cells, bad uploads.

Each refusal is one clear reason with its status, and leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PASSWORD, log_in, students_csv, web_accounts, web_conf
from starlette.testclient import TestClient

from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.web import create_app

SECRET = "the content of a file outside the storage"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def conf(tmp_path: Path) -> Config:
    conf = web_conf(tmp_path, max_upload_bytes=1000)
    web_accounts(conf)
    (tmp_path / "secret.txt").write_text(SECRET)
    return conf


@pytest.fixture
def client(conf: Config) -> Iterator[TestClient]:
    with TestClient(create_app(conf)) as client:
        log_in(client, "manager")
        yield client


def everything(root: str) -> set[str]:
    return {str(path.relative_to(root)) for path in Path(root).rglob("*")
            if "logs" not in path.parts}


@pytest.mark.parametrize("path", [
    "/api/files/finished/..%2F..%2Fsecret.txt",
    "/api/files/finished/%2E%2E",
    "/api/files/finished/..",
    "/api/files/finished/%2Fetc%2Fpasswd",
    "/api/files/..%2F..%2Fsecret.txt/x",
    "/api/files/logs/datacenter.log",
    "/api/files/.datacenter/accounts.json",
    "/api/files/pending/.datacenter",
    "/api/files/finished/%00x",
    "/files/finished/..%2F..%2Fsecret.txt",
    "/api/files/pending/..%5Csecret.txt",
])
def test_no_path_leaves_the_storage(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code in (400, 404), (path, answer.status_code)
    assert SECRET not in answer.text and '"users"' not in answer.text


def test_a_symlink_or_second_name_in_the_storage_is_never_followed(
        conf: Config, client: TestClient, tmp_path: Path) -> None:
    finished = Path(conf.storage, "finished")
    (finished / "link.csv").symlink_to(tmp_path / "secret.txt")
    os.link(tmp_path / "secret.txt", finished / "hard.csv")
    for name in ("link.csv", "hard.csv"):
        answer = client.get(f"/api/files/finished/{name}")
        assert answer.status_code == 403, answer.text
        assert SECRET not in answer.text
        assert "link" in answer.json()["error"]
    # A folder of the storage that is a link is refused as a whole.
    os.rename(Path(conf.storage, "deleted"), tmp_path / "deleted-elsewhere")
    (tmp_path / "deleted-elsewhere" / "x.csv").write_text(SECRET)
    Path(conf.storage, "deleted").symlink_to(tmp_path / "deleted-elsewhere")
    answer = client.get("/api/files/deleted/x.csv")
    assert answer.status_code == 403 and SECRET not in answer.text


def test_markup_in_cells_shows_as_text_everywhere(conf: Config, client: TestClient) -> None:
    importer = Importer(conf)
    try:
        path = Path(conf.storage, "students.csv")
        path.write_text(students_csv(f"S1,{XSS},ada@example.org,2004-03-15,abc,admitted"))
        importer.import_file(str(path), user=XSS)
    finally:
        importer.close()
    name = "students.create.pending.csv"
    for page in ("/", f"/pending/{name}", "/pending", "/logs", "/files/unfinished"):
        text = client.get(page).text
        assert XSS not in text, page
    grid = client.get(f"/pending/{name}").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in grid
    assert client.get(f"/api/pending/{name}").json()["rows"][0]["cells"]["name"] == XSS
    # and no page may run inline script, whatever slipped through
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]


def test_export_keeps_the_formula_guard(conf: Config, client: TestClient) -> None:
    importer = Importer(conf)
    try:
        path = Path(conf.storage, "faculties.csv")
        path.write_text('code,title\r\nF1,"=HYPERLINK(""http://x"")"\r\nF2,+1-1\r\n')
        importer.import_file(str(path))
    finally:
        importer.close()
    rows = list(csv.reader(io.StringIO(client.get("/api/export/faculties").text)))
    assert rows == [["code", "title"], ["F1", "'=HYPERLINK(\"http://x\")"], ["F2", "'+1-1"]]
    page = client.get("/export", params={"processor": "faculties", "format": "csv"})
    assert "'=HYPERLINK" in page.text


BAD_UPLOADS = {
    "oversized": (("faculties.csv", b"code,title\r\n" + b"F,x\r\n" * 300), 413,
                  "larger than the upload limit of 1,000 bytes"),
    "empty": (("faculties.csv", b""), 400, "faculties.csv: the file is empty"),
    "not UTF-8": (("faculties.csv", b"code,title\r\nF1,Caf\xe9\r\n"), 415,
                  "faculties.csv: line 2: not UTF-8 text"),
    "not a CSV name": (("faculties.xlsx", b"code,title\r\n"), 415,
                       "faculties.xlsx: not a CSV file"),
    "a workbook renamed": (("faculties.csv", b"PK\x03\x04" + b"\0" * 50), 415,
                           "a spreadsheet workbook (xlsx), not CSV"),
    "UTF-16": (("faculties.csv", "code,title\r\n".encode("utf-16")), 415, "UTF-16"),
    "a quote never closed": (("faculties.csv", b'code,title\r\nF1,"Sci\r\n'), 400,
                             "a quoted cell is never closed"),
    "missing required column": (("faculties.csv", b"code\r\nF1\r\n"), 400,
                                "missing required column(s): title"),
    "no processor claims it": (("misc.csv", b"a,b\r\n1,2\r\n"), 400,
                               "no processor claims this name; choose one"),
    "a hidden name": ((".faculties.csv", b"code,title\r\n"), 400, "hidden"),
    "a path as name": (("../faculties.csv", b"code,title\r\n"), 400, "plain file name"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_is_refused_with_one_reason_and_leaves_nothing(
        conf: Config, client: TestClient, case: str) -> None:
    sent, status, reason = BAD_UPLOADS[case]
    csrf = log_in(client, "manager")
    before = everything(conf.storage)
    answer = client.post("/api/uploads", files={"file": sent}, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["error"]
    assert "\n" not in answer.json()["error"]
    assert everything(conf.storage) == before
    # The page says the same, on the form.
    page = client.post("/upload", files={"file": sent}, data={"csrf": csrf})
    assert page.status_code == status
    assert 'id="problem"' in page.text and 'id="upload-form"' in page.text
    assert everything(conf.storage) == before


def test_a_same_name_upload_is_refused_and_leaves_the_first(conf: Config,
                                                            client: TestClient) -> None:
    csrf = log_in(client, "manager")
    first = client.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                        files={"file": ("faculties.csv", b"code,title\r\nF1,One\r\n")})
    assert first.status_code == 201
    before = everything(conf.storage)
    second = client.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                         files={"file": ("faculties.csv", b"code,title\r\nF1,Two\r\n")})
    assert second.status_code == 409
    assert "a file of that name waits at the storage's root already" in second.json()["error"]
    assert Path(conf.storage, "faculties.csv").read_bytes() == b"code,title\r\nF1,One\r\n"
    assert everything(conf.storage) == before


def test_a_body_past_the_limit_is_cut_off_without_a_length(conf: Config,
                                                           client: TestClient) -> None:
    csrf = log_in(client, "manager")

    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b"x" * 1000

    before = everything(conf.storage)
    answer = client.post("/api/uploads", content=chunks(), headers={
        "X-CSRF-Token": csrf, "Content-Type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 413
    assert everything(conf.storage) == before


def test_login_redirects_only_inside_the_console(conf: Config, client: TestClient) -> None:
    with TestClient(create_app(conf)) as fresh:
        for target, where in (("//evil.example/", "/"), ("https://evil.example/", "/"),
                              ("/pending", "/pending")):
            answer = fresh.post("/login", data={"username": "viewer",
                                                "password": "correct horse battery",
                                                "next": target}, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"] == where


def test_behind_a_proxy_public_url_is_the_origin_a_login_must_come_from(
        tmp_path: Path) -> None:
    conf = web_conf(tmp_path, public_url="https://console.example.org")
    web_accounts(conf)
    body = {"username": "viewer", "password": PASSWORD}
    with TestClient(create_app(conf), base_url="http://127.0.0.1:8080") as client:
        # nginx's default: the proxy's own Host, the browser's Origin
        ok = client.post("/api/login", json=body,
                         headers={"Origin": "https://console.example.org"})
        assert ok.status_code == 200, ok.text
        assert "secure" in ok.headers["set-cookie"].lower()
        for origin in ("http://127.0.0.1:8080", "https://evil.example", "null"):
            refused = client.post("/api/login", json=body, headers={"Origin": origin})
            assert refused.status_code == 403, origin
    plain = web_conf(tmp_path / "plain")
    web_accounts(plain)
    with TestClient(create_app(plain), base_url="http://127.0.0.1:8080") as client:
        ok = client.post("/api/login", json=body, headers={"Origin": "http://127.0.0.1:8080"})
        assert ok.status_code == 200 and "secure" not in ok.headers["set-cookie"].lower()


def test_a_trailing_slash_is_a_plain_404_not_a_redirect_built_from_host(
        conf: Config, client: TestClient) -> None:
    log_in(client, "admin")
    for path in ("/users/", "/api/status/", "/logs/"):
        answer = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert answer.status_code == 404, (path, answer.headers)
        assert "location" not in answer.headers
