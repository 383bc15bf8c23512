"""Photo upload and download: ``POST /api/photos`` and ``GET /photos/<id>``.

Uploads are checked, cleaned and stored by :mod:`gis.photos`; the answer is the photo's id,
which reports and case actions then reference. A photo is served by id only (its file name
comes from its hash, never from the request) to the signed-in users :func:`gis.photos.may_view`
allows. The upload folder is the app's ``UPLOAD_DIR`` setting (``GRIDGOV_UPLOAD_DIR``), by
default ``GRIDGOV_HOME/uploads``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge

from gis import photos
from webmap import current_store
from webmap.auth import login_required, user

bp = Blueprint("photos", __name__)

#: Room for the multipart envelope around a photo of the largest accepted size.
MULTIPART_SLACK = 64 * 1024


def upload_dir() -> Path:
    configured = current_app.config.get("UPLOAD_DIR")
    return Path(configured) if configured else photos.upload_root()


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error={"status": status, "message": message}), status


@bp.before_app_request
def _limit_upload_size() -> None:
    """Cap the body before anything reads it (the CSRF check parses the form first)."""
    if request.endpoint == "photos.upload":
        request.max_content_length = photos.MAX_BYTES + MULTIPART_SLACK


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
    return _error(413, f"photo too large: at most {photos.MAX_BYTES // 2**20} MB")


@bp.post("/api/photos")
@login_required
def upload() -> tuple[Response, int]:
    """Store one photo (multipart field ``photo``); answers ``{"id": …, "url": …}``."""
    sent = request.files.get("photo")
    if sent is None:
        return _error(400, "send the image as multipart form field 'photo'")
    try:
        data = photos.read_limited(sent.stream)
        with current_store().engine.begin() as conn:
            stored = photos.store_photo(conn, data, uploaded_by=user().id, root=upload_dir())
    except photos.PhotoError as exc:
        return _error(exc.status, str(exc))
    return jsonify(id=stored.id, url=f"/photos/{stored.id}", width=stored.width,
                   height=stored.height, bytes=stored.bytes), 201


@bp.get("/photos/<int:photo_id>")
@login_required
def show(photo_id: int) -> Response | tuple[str, int]:
    """The stored JPEG, for users allowed to see it (404 for everyone else)."""
    with current_store().engine.connect() as conn:
        photo = photos.get_photo(conn, photo_id)
        allowed = photo is not None and photos.may_view(conn, photo_id, user())
    if not allowed:
        return "no such photo", 404
    try:
        path = photos.photo_file(photo, upload_dir())
    except (photos.PhotoError, FileNotFoundError):
        current_app.logger.error("photo %s: file missing or misnamed", photo_id)
        return "no such photo", 404
    response = send_file(path, mimetype="image/jpeg", conditional=True, etag=photo.sha256,
                         max_age=86400)
    response.cache_control.private = True
    response.cache_control.public = False
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
