"""Uploaded photos: checked by content, cleaned, downscaled, stored by hash.

Whatever a client sends (a phone's camera file, a renamed script, a decompression bomb) goes
through :func:`normalise` before anything is written:

- at most :data:`MAX_BYTES` as sent, and at most :data:`MAX_PIXELS` pixels (checked from the
  header, before decoding, so a small file that inflates to gigabytes is refused);
- the type is what Pillow finds in the bytes, and only JPEG, PNG and WebP are opened at all; a
  file name or a declared content type is never trusted;
- the EXIF orientation is applied, then every bit of metadata is dropped (no GPS, no camera
  serial in a stored file), the image is shrunk to :data:`MAX_SIDE` px on its long side and
  re-encoded as JPEG.

The result is stored at ``<root>/<sha256[:2]>/<sha256>.jpg`` (``root`` is
``GRIDGOV_HOME/uploads`` unless given): names come from the hash only, never from the client.
The file is written to a temporary name in the same folder, synced and renamed into place, so
a failure (a full disk) leaves no partial file and no ``photo`` row. The same picture uploaded
twice is stored once.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import Connection, text

from gis.accounts import User
from gis.config import get_settings

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 50-megapixel camera; far below what would exhaust the server
MAX_SIDE = 1600
JPEG_QUALITY = 82
FORMATS = ("JPEG", "PNG", "WEBP")
STORED_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.jpg")


class PhotoError(ValueError):
    """A photo that is refused; ``status`` is the HTTP status a web caller should answer."""

    status = 400


class PhotoTooLarge(PhotoError):
    status = 413


class PhotoStorageError(PhotoError):
    """The photo was fine but could not be stored (disk full, permissions)."""

    status = 507


@dataclass(frozen=True)
class StoredPhoto:
    id: int
    sha256: str
    content_type: str
    width: int
    height: int
    bytes: int
    path: str  # relative to the upload root

    def to_dict(self) -> dict:
        return asdict(self)


def upload_root() -> Path:
    """The default folder for uploads: ``GRIDGOV_HOME/uploads``."""
    return get_settings().home / "uploads"


# -- checking and cleaning ------------------------------------------------------------------------
def read_limited(stream: BinaryIO, limit: int = MAX_BYTES) -> bytes:
    """Read at most ``limit`` bytes; raise :class:`PhotoTooLarge` if there is more."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PhotoTooLarge(f"photo too large: at most {limit // (1024 * 1024)} MB")
    return data


def normalise(data: bytes) -> tuple[bytes, int, int]:
    """Check an uploaded image and return it cleaned: ``(jpeg bytes, width, height)``."""
    if len(data) > MAX_BYTES:
        raise PhotoTooLarge(f"photo too large: at most {MAX_BYTES // (1024 * 1024)} MB")
    if not data:
        raise PhotoError("the photo is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            _check_pixels(image.width, image.height)
            image.load()
        except PhotoError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoError(f"image has too many pixels (at most {MAX_PIXELS:,})") from exc
        except UnidentifiedImageError as exc:
            raise PhotoError("not a JPEG, PNG or WebP image") from exc
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
            raise PhotoError(f"the image cannot be read: {exc}") from exc
    image = _flatten(ImageOps.exif_transpose(image))
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # Pillow writes a JPEG comment (COM) kept in ``info`` by itself: a script hidden there
    # would survive re-encoding, so the decoded image's info goes
    image.info = {}
    out = io.BytesIO()
    # no exif=, icc_profile= or comment=: the saved file carries no metadata at all
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue(), image.width, image.height


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise PhotoError("the image has no pixels")
    if width * height > MAX_PIXELS:
        raise PhotoError(f"image has too many pixels ({width}×{height}; at most "
                         f"{MAX_PIXELS:,})")


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency goes onto white, palettes and 16-bit modes are converted."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P"
                                              and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


# -- storing --------------------------------------------------------------------------------------
def _write_chunk(handle: BinaryIO, data: bytes) -> None:
    """One write; separate so tests can make it fail half-way like a full disk."""
    handle.write(data)


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a synced temporary file and a rename.

    Returns False when the file is already there (same name, so same content). Raises
    :class:`PhotoStorageError` and leaves nothing behind when writing fails.
    """
    if path.exists():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    except OSError as exc:
        raise _storage_error(exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_chunk(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise _storage_error(exc) from exc
    return True


def _storage_error(exc: OSError) -> PhotoStorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return PhotoStorageError("the photo store is full; the photo was not saved "
                                 "(tell the administrator)")
    return PhotoStorageError(f"the photo could not be saved ({exc.strerror or exc})")


def store_photo(conn: Connection, data: bytes, *, uploaded_by: int | None,
                root: Path | None = None) -> StoredPhoto:
    """Check, clean and store an uploaded image; returns its ``photo`` row.

    A picture already stored (same cleaned bytes) returns the existing row.
    """
    jpeg, width, height = normalise(data)
    digest = hashlib.sha256(jpeg).hexdigest()
    existing = _by_sha256(conn, digest)
    if existing is not None:
        return existing
    root = Path(root or upload_root())
    relative = f"{digest[:2]}/{digest}.jpg"
    path = root / relative
    created = write_atomic(path, jpeg)
    try:
        row = conn.execute(text(
            """INSERT INTO photo (sha256, content_type, width, height, bytes, path, uploaded_by)
               VALUES (:sha, 'image/jpeg', :w, :h, :n, :path, :by)
               ON CONFLICT (sha256) DO NOTHING RETURNING id"""),
            {"sha": digest, "w": width, "h": height, "n": len(jpeg), "path": relative,
             "by": uploaded_by}).first()
    except Exception:
        if created:
            path.unlink(missing_ok=True)
        raise
    if row is None:  # stored concurrently by another request
        return _by_sha256(conn, digest)  # type: ignore[return-value]
    return StoredPhoto(row.id, digest, "image/jpeg", width, height, len(jpeg), relative)


def _by_sha256(conn: Connection, digest: str) -> StoredPhoto | None:
    row = conn.execute(text(
        "SELECT id, sha256, content_type, width, height, bytes, path FROM photo "
        "WHERE sha256 = :sha"), {"sha": digest}).first()
    return StoredPhoto(*row) if row else None


# -- reading --------------------------------------------------------------------------------------
def get_photo(conn: Connection, photo_id: int) -> StoredPhoto | None:
    row = conn.execute(text(
        "SELECT id, sha256, content_type, width, height, bytes, path FROM photo "
        "WHERE id = :id"), {"id": photo_id}).first()
    return StoredPhoto(*row) if row else None


def photo_file(photo: StoredPhoto, root: Path | None = None) -> Path:
    """The file of a stored photo; refuses any stored path that is not a hash name."""
    root = Path(root or upload_root()).resolve()
    if not STORED_NAME.fullmatch(photo.path) or not photo.path.endswith(f"{photo.sha256}.jpg"):
        raise PhotoError(f"photo {photo.id} has an unexpected stored path")
    path = (root / photo.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise FileNotFoundError(f"the file of photo {photo.id} is missing")
    return path


def owned_photos(conn: Connection, photo_ids: list[int], user: User) -> list[StoredPhoto]:
    """The photos ``user`` uploaded among ``photo_ids`` (in that order); raises for others."""
    photos = []
    for photo_id in dict.fromkeys(photo_ids):
        row = conn.execute(text(
            "SELECT id, sha256, content_type, width, height, bytes, path FROM photo "
            "WHERE id = :id AND uploaded_by = :u"), {"id": photo_id, "u": user.id}).first()
        if row is None:
            raise PhotoError(f"photo {photo_id}: no such photo of yours")
        photos.append(StoredPhoto(*row))
    return photos


def trail_entry(photo: StoredPhoto) -> dict:
    """How a photo is referenced in a case event's ``photos`` list."""
    return {"photo_id": photo.id, "sha256": photo.sha256}


def may_view(conn: Connection, photo_id: int, user: User) -> bool:
    """Whether ``user`` may see a photo: its uploader, anyone not bound to grids, and grid
    staff when the photo belongs to a case in one of their grids."""
    row = conn.execute(text("SELECT uploaded_by FROM photo WHERE id = :id"),
                       {"id": photo_id}).first()
    if row is None:
        return False
    if row.uploaded_by == user.id or not user.grid_scoped:
        return True
    return conn.execute(text(
        """SELECT 1 FROM case_event e
           JOIN case_file c ON c.id = e.case_id
           JOIN unit g ON g.id = c.grid_id
           WHERE e.photos @> CAST(:needle AS jsonb) AND g.code = ANY(:codes) LIMIT 1"""),
        {"needle": f'[{{"photo_id": {int(photo_id)}}}]',
         "codes": sorted(user.grid_codes)}).first() is not None
