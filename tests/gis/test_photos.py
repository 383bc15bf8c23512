"""Photo checks and storage: content-typed, cleaned, downscaled, stored by hash, atomically."""

from __future__ import annotations

import errno
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from sqlalchemy import text

from gis import photos
from gis.accounts import create_user, load_user


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), mode: str = "RGB",
                **save) -> bytes:
    image = Image.new(mode, size, (200, 30, 30, 128)[: len(mode)] if mode != "P" else 3)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def gps_jpeg() -> bytes:
    """A 400×200 JPEG taken with the phone turned (Orientation 6) and a GPS fix in its EXIF."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 34.0, 30.0),
                ExifTags.GPS.GPSLongitudeRef: "E",
                ExifTags.GPS.GPSLongitude: (120.0, 18.0, 0.0)})
    return image_bytes(size=(400, 200), exif=exif)


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A valid-looking PNG of a few hundred bytes that claims 1.6 gigapixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    data = zlib.compress(b"\0" * 1024)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


# -- checking and cleaning ------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"),
                                           ("WEBP", "RGB")])
def test_accepted_formats_become_downscaled_jpeg(fmt, mode):
    jpeg, width, height = photos.normalise(image_bytes(fmt, (4000, 3000), mode))
    assert (width, height) == (1600, 1200)
    image = opened(jpeg)
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (1600, 1200)


def test_small_photos_are_not_enlarged():
    assert photos.normalise(image_bytes(size=(320, 240)))[1:] == (320, 240)


def test_orientation_is_applied_then_all_exif_dropped():
    original = gps_jpeg()
    assert opened(original).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fix is there
    jpeg, width, height = photos.normalise(original)
    cleaned = opened(jpeg)
    assert (width, height) == (200, 400)  # turned upright
    assert dict(cleaned.getexif()) == {} and "exif" not in cleaned.info
    assert b"Exif" not in jpeg and b"PhoneCo" not in jpeg


def test_too_many_bytes_is_413():
    with pytest.raises(photos.PhotoTooLarge) as caught:
        photos.normalise(b"\xff\xd8" + b"\0" * photos.MAX_BYTES)
    assert caught.value.status == 413 and "10 MB" in str(caught.value)
    with pytest.raises(photos.PhotoTooLarge):
        photos.read_limited(io.BytesIO(b"x" * 101), limit=100)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("shell.php", "<?php system($_GET['c']); ?>")
    return buffer.getvalue()


@pytest.mark.parametrize("data", [
    b"<?php system($_GET['c']); ?>",
    b"<!doctype html><script>alert(1)</script>",
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    _zip(),
    image_bytes("GIF", mode="P"),  # a real image, but not a type we accept
    image_bytes("BMP"),
    image_bytes()[:200],  # a JPEG cut short
    b"\xff\xd8\xff\xe0" + b"<?php echo 1; ?>" * 20,  # JPEG magic, script body
    b"",
], ids=["php", "html", "svg", "zip", "gif", "bmp", "truncated", "polyglot", "empty"])
def test_disguised_or_broken_files_are_refused(data):
    with pytest.raises(photos.PhotoError) as caught:
        photos.normalise(data)
    assert caught.value.status == 400


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_bomb()
    assert len(bomb) < 1000
    with pytest.raises(photos.PhotoError, match="too many pixels"):
        photos.normalise(bomb)
    with pytest.raises(photos.PhotoError, match="too many pixels"):
        photos.normalise(png_bomb(8000, 8000))  # 64 Mpx: under Pillow's own limit, over ours


# -- storing --------------------------------------------------------------------------------------
@pytest.fixture
def uploader(fresh_engine):
    with fresh_engine.begin() as conn:
        return create_user(conn, "u1", "correct horse 42", "supervisor")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_store_writes_by_hash_and_dedupes(fresh_engine, uploader, tmp_path):
    data = image_bytes(size=(2000, 1000))
    with fresh_engine.begin() as conn:
        first = photos.store_photo(conn, data, uploaded_by=uploader, root=tmp_path)
        again = photos.store_photo(conn, data, uploaded_by=uploader, root=tmp_path)
        count = conn.execute(text("SELECT count(*) FROM photo")).scalar()
    assert again == first and count == 1
    assert first.path == f"{first.sha256[:2]}/{first.sha256}.jpg"
    assert _files(tmp_path) == [tmp_path / first.path]
    assert (first.width, first.height, first.content_type) == (1600, 800, "image/jpeg")
    assert photos.photo_file(first, tmp_path).read_bytes()[:2] == b"\xff\xd8"


def test_stored_paths_never_leave_the_upload_folder(fresh_engine, uploader, tmp_path):
    with fresh_engine.begin() as conn:
        stored = photos.store_photo(conn, image_bytes(), uploaded_by=uploader, root=tmp_path)
    (tmp_path.parent / "secret.jpg").write_bytes(b"secret")
    for bad in ["../secret.jpg", f"../{stored.sha256[:2]}/{stored.sha256}.jpg",
                f"/etc/{stored.sha256}.jpg", f"{stored.sha256[:2]}/../../{stored.sha256}.jpg"]:
        tampered = photos.StoredPhoto(**{**stored.to_dict(), "path": bad})
        with pytest.raises(photos.PhotoError, match="unexpected stored path"):
            photos.photo_file(tampered, tmp_path)


def test_a_full_disk_leaves_no_file_and_no_row(fresh_engine, uploader, tmp_path, monkeypatch):
    def half_then_full(handle, data):
        handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(photos, "_write_chunk", half_then_full)
    with fresh_engine.begin() as conn, pytest.raises(photos.PhotoStorageError) as caught:
        photos.store_photo(conn, image_bytes(), uploaded_by=uploader, root=tmp_path)
    assert caught.value.status == 507 and "full" in str(caught.value)
    assert _files(tmp_path) == []  # not even the temporary file
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM photo")).scalar() == 0


def test_a_failed_insert_removes_the_file_it_wrote(fresh_engine, tmp_path):
    with fresh_engine.begin() as conn, pytest.raises(Exception, match="foreign key"):
        photos.store_photo(conn, image_bytes(), uploaded_by=999_999, root=tmp_path)
    assert _files(tmp_path) == []


def test_only_the_uploaders_photos_can_be_attached(fresh_engine, uploader, tmp_path):
    with fresh_engine.begin() as conn:
        other = create_user(conn, "u2", "correct horse 42", "supervisor")
        stored = photos.store_photo(conn, image_bytes(), uploaded_by=uploader, root=tmp_path)
        mine, theirs = load_user(conn, uploader), load_user(conn, other)
        assert photos.owned_photos(conn, [stored.id, stored.id], mine) == [stored]
        with pytest.raises(photos.PhotoError, match="no such photo"):
            photos.owned_photos(conn, [stored.id], theirs)
        assert photos.trail_entry(stored) == {"photo_id": stored.id, "sha256": stored.sha256}
