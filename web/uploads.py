"""Getting the uploaded image's bytes out of a request, in memory only."""

import io

from flask import Request

from web.errors import ApiError


class InMemoryRequest(Request):
    """Keeps multipart uploads in memory: Werkzeug would spool files over 500 kB to a temporary file on disk.

    MAX_CONTENT_LENGTH bounds what a request can hold.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def image_bytes(request: Request) -> bytes:
    """The multipart field `image`, or a raw body sent with an `image/*` content type."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise ApiError(400, "missing_image", "Send the image in the multipart field 'image'.")
        data = upload.read()
    elif request.mimetype.startswith("image/"):
        data = request.get_data(cache=False)
    elif not request.content_length and not request.mimetype:
        raise ApiError(400, "missing_image", "Send an image as multipart field 'image' or as an image/* body.")
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"Content type '{request.mimetype}' is not accepted; use multipart/form-data or image/*.")
    if not data:
        raise ApiError(400, "empty_image", "The image is empty (0 bytes).")
    return data
