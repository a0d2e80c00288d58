"""API errors as JSON `{"error": {"code", "message"}}` with a status that fits; never a 500 for bad input."""

import logging

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from model.image_io import ImageError

log = logging.getLogger(__name__)

IMAGE_ERROR_STATUS = {"empty_image": 400, "not_an_image": 415, "unsupported_format": 415, "too_many_pixels": 422}


class ApiError(Exception):
    """An answer for the client; `retry_after` (seconds) goes out as Retry-After on overload answers."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def error_response(status: int, code: str, message: str):
    g.error_code = code  # for the metrics
    return jsonify(error={"code": code, "message": message}), status


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        body, status = error_response(exc.status, exc.code, exc.message)
        if exc.retry_after is not None:
            body.headers["Retry-After"] = str(exc.retry_after)
        return body, status

    @app.errorhandler(ImageError)
    def image_error(exc: ImageError):
        return error_response(IMAGE_ERROR_STATUS[exc.code], exc.code, str(exc))

    @app.errorhandler(413)
    def too_large(exc: HTTPException):
        limit_mb = app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
        return error_response(413, "too_large", f"The upload is larger than the {limit_mb:g} MB limit.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if not _wants_json():
            return exc
        body, status = error_response(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or "")
        body.headers.extend((k, v) for k, v in exc.get_headers() if k.lower() != "content-type")  # e.g. Allow
        return body, status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on the server.")
