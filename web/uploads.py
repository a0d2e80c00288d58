"""Getting the uploaded image's bytes out of a request, in memory only, and bounding the memory its decode takes."""

import io
import threading

from flask import Request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import RequestEntityTooLarge

from config import MB
from model.image_io import ImageHeader
from web.errors import ApiError
from web.upload_limits import decode_cost


class InMemoryRequest(Request):
    """Keeps multipart uploads in memory: Werkzeug would spool files over 500 kB to a temporary file on disk.

    MAX_CONTENT_LENGTH bounds what a request can hold.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def image_bytes(request: Request) -> bytes:
    """The multipart field `image`, or a raw body sent with an `image/*` content type."""
    try:
        data = _read_image(request)
    except RequestEntityTooLarge:
        if _over_size_limit(request):
            raise
        raise ApiError(413, "too_many_parts", f"The form has more than {request.max_form_parts:,} parts or a text "
                       "field over its size limit; send the image alone in the field 'image'.") from None
    except (ParseException, OSError) as exc:  # gunicorn's malformed chunked encoding, a broken connection
        raise ApiError(400, "malformed_body", "The request body could not be read: its chunked encoding is "
                       "malformed or the connection broke off.") from exc
    except ApiError as exc:
        if exc.code == "missing_image" and _over_size_limit(request):  # a multipart body cut at the limit
            raise RequestEntityTooLarge() from None
        raise
    if _over_size_limit(request):
        # Werkzeug stops reading a body without Content-Length at the limit and hands over what it has.
        raise RequestEntityTooLarge()
    if not data:
        raise ApiError(400, "empty_image", "The image is empty (0 bytes).")
    return data


def _read_image(request: Request) -> bytes:
    if request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("image")
        if not uploads:
            raise ApiError(400, "missing_image", "Send the image in the multipart field 'image'.")
        if len(uploads) > 1:
            raise ApiError(400, "multiple_images", f"The form has {len(uploads)} fields named 'image'; send one "
                           "image per request.")
        return uploads[0].read()
    if request.mimetype.startswith("image/"):
        return request.get_data(cache=False)
    if not request.content_length and not request.mimetype:
        raise ApiError(400, "missing_image", "Send an image as multipart field 'image' or as an image/* body.")
    raise ApiError(415, "unsupported_media_type",
                   f"Content type '{request.mimetype}' is not accepted; use multipart/form-data or image/*.")


def _over_size_limit(request: Request) -> bool:
    """Whether the body is larger than MAX_CONTENT_LENGTH, also when it came chunked, without a Content-Length."""
    limit = request.max_content_length
    if limit is None:
        return False
    if request.content_length is not None:
        return request.content_length > limit
    return getattr(request.stream, "is_exhausted", False) and bool(request.environ["wsgi.input"].read(1))


class DecodeBudget:
    """The bytes of image decoding one process may have in flight at once.

    Each request reserves its image's decode cost (from the header, before any pixel is decoded) until the
    request ends; one that does not fit waits up to `wait_seconds`, then gets a 503 with Retry-After. Several
    large uploads at once therefore queue instead of multiplying the peak memory; small ones pass side by side.
    """

    def __init__(self, capacity_bytes: int, wait_seconds: float) -> None:
        self.capacity, self.wait_seconds = capacity_bytes, wait_seconds
        self._in_use = 0
        self._changed = threading.Condition()

    def reserve(self, header: ImageHeader) -> int:
        """Reserve the decode cost of `header`; returns what to pass to `release` when the request ends."""
        cost = decode_cost(header)
        if cost > self.capacity:
            kind = f"{header.format} with transparency" if header.has_alpha else header.format
            raise ApiError(422, "too_many_pixels",
                           f"Decoding this {header.width}×{header.height} {kind} image takes about "
                           f"{cost / MB:,.0f} MB; this server decodes at most {self.capacity / MB:,.0f} MB at a "
                           "time. Send fewer pixels, or a JPEG.")
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_use + cost <= self.capacity, self.wait_seconds):
                raise ApiError(503, "busy", "The server is decoding other large images; try again in a few seconds.",
                               retry_after=5)
            self._in_use += cost
        return cost

    def release(self, cost: int) -> None:
        with self._changed:
            self._in_use -= cost
            self._changed.notify_all()
