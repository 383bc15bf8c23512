"""Uploads under attack and under a full disk, over HTTP.

The photo checks themselves (types by content, bombs, EXIF, sizes, a simulated ``ENOSPC``) are
``tests/gis/test_photos.py`` and ``tests/webmap/test_mobile.py``. Here: a real full file system
(a 1 MB tmpfs mounted for the test; skipped where mounting is not allowed), script payloads
hidden inside valid images, hostile file names, and multipart floods.
"""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from tests.webmap.test_api_cases import ApiWorld, build_world

SCRIPT = b"<script>alert('gridgov')</script>"


@pytest.fixture(scope="module")
def world(database_factory, template_name, tmp_path_factory) -> ApiWorld:
    url = database_factory.create("uploads", template=template_name)
    yield build_world(url, tmp_path_factory.mktemp("uploads"))
    database_factory.drop(url)


def _upload(world: ApiWorld, data: bytes, name: str = "photo.jpg",
            mimetype: str = "image/jpeg", who: str = "grid_worker"):
    return world.session(who, "bearer").post(
        "/api/photos", data={"photo": (io.BytesIO(data), name, mimetype)},
        content_type="multipart/form-data")


def _photo_rows(world: ApiWorld) -> int:
    with world.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM photo")).scalar_one()


def _noise(seed: int, size: tuple[int, int] = (900, 700)) -> bytes:
    """A PNG of random pixels: it stays ~400 KB as JPEG, so a few fill a 1 MB disk."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


# -- a full disk ----------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A 1 MB tmpfs, unmounted afterwards; skips where mounting is not allowed."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_is_507_leaving_no_file_and_no_row_then_recovers(world, tiny_disk):
    previous = world.app.config["UPLOAD_DIR"]
    world.app.config["UPLOAD_DIR"] = str(tiny_disk)
    try:
        rows_before = _photo_rows(world)
        answers = [_upload(world, _noise(seed), "noise.png", "image/png") for seed in range(8)]
        statuses = [a.status_code for a in answers]
        assert 201 in statuses and 507 in statuses, statuses
        assert set(statuses) <= {201, 507}
        refused = answers[statuses.index(507)].get_json()
        assert refused["error"]["status"] == 507 and "full" in refused["error"]["message"]
        files = [p for p in tiny_disk.rglob("*") if p.is_file()]
        assert not [p for p in files if p.name.startswith(".upload-")]  # no partial file
        assert len(files) == statuses.count(201) == _photo_rows(world) - rows_before
        for stored in files:  # every stored file is whole
            Image.open(stored).load()

        for stored in files:  # space freed: the same upload now succeeds
            stored.unlink()
        with world.engine.begin() as conn:
            conn.execute(text("DELETE FROM photo WHERE id > :n"), {"n": rows_before})
        again = _upload(world, _noise(statuses.index(507)), "noise.png", "image/png")
        assert again.status_code == 201, again.get_json()
    finally:
        world.app.config["UPLOAD_DIR"] = previous


# -- disguised and hostile uploads ----------------------------------------------------------------
def _jpeg_with_script() -> bytes:
    """A valid JPEG carrying a script in a comment and in its EXIF (a polyglot)."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = SCRIPT.decode()  # ImageDescription
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, "JPEG", comment=SCRIPT,
                                                   exif=exif.tobytes())
    return buffer.getvalue()


def test_scripts_hidden_in_a_valid_image_are_not_stored(world):
    data = _jpeg_with_script()
    assert SCRIPT in data
    answer = _upload(world, data, name="innocent.html", mimetype="text/html")
    assert answer.status_code == 201, answer.get_json()
    served = world.session("grid_worker", "bearer").get(answer.get_json()["url"])
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert SCRIPT not in served.data and b"Exif" not in served.data


@pytest.mark.parametrize(("data", "name", "mimetype"), [
    (SCRIPT, "photo.jpg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n" + SCRIPT, "photo.png", "image/png"),
    (b"GIF89a" + SCRIPT, "photo.gif", "image/gif"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "a.svg",
     "image/svg+xml"),
    (b"MZ\x90\x00" + b"\x00" * 512, "setup.exe.jpg", "image/jpeg"),
    (b"%PDF-1.4\n" + SCRIPT, "scan.pdf", "application/pdf"),
], ids=["script-as-jpeg", "png-magic", "gif", "svg", "exe", "pdf"])
def test_disguised_uploads_are_400_and_store_nothing(world, data, name, mimetype):
    rows = _photo_rows(world)
    answer = _upload(world, data, name, mimetype)
    assert answer.status_code == 400 and answer.get_json()["error"]["status"] == 400
    assert _photo_rows(world) == rows


@pytest.mark.parametrize("name", [
    "../../../../tmp/gridgov-escape.jpg", "..\\..\\..\\gridgov-escape.jpg", "/etc/cron.d/x.jpg",
    "photo.jpg\x00.php", "照片.jpg", "a" * 4000 + ".jpg", "",
])
def test_the_client_file_name_is_never_used(world, name):
    upload_dir = Path(world.app.config["UPLOAD_DIR"])
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), tuple(uuid.uuid4().bytes[:3])).save(buffer, "PNG")
    answer = _upload(world, buffer.getvalue(), name=name, mimetype="image/png")
    assert answer.status_code == 201, answer.get_json()
    assert not Path("/tmp/gridgov-escape.jpg").exists()
    names = {p.relative_to(upload_dir).as_posix() for p in upload_dir.rglob("*.jpg")}
    assert all(len(n) == 2 + 1 + 64 + 4 for n in names), names


def test_an_oversized_body_is_413_before_it_is_read(world):
    body = b"\xff\xd8\xff" + os.urandom(16) * (12 * 1024 * 1024 // 16)
    answer = _upload(world, body)
    assert answer.status_code == 413 and answer.get_json()["error"]["status"] == 413


def test_a_multipart_flood_is_refused_not_a_crash(world):
    fields = {f"f{i}": "x" for i in range(5000)}
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    answer = world.session("grid_worker", "bearer").post(
        "/api/photos", data={**fields, "photo": (io.BytesIO(buffer.getvalue()), "p.png")},
        content_type="multipart/form-data")
    assert answer.status_code in (400, 413), answer.status_code
    assert answer.get_json()["error"]["status"] == answer.status_code
