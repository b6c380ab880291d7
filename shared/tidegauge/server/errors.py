"""API errors as Kubernetes ``Status`` answers, with constructors named by what they mean to a client.

The serving layer raises these (or domain errors that :mod:`.app` maps to them in one place); every
non-2xx answer of the server is one of them, ``Content-Type: application/json``, never with a
``Retry-After`` header (client-go would retry and stall the HPA worker).
"""

from __future__ import annotations

import json

STATUS_CONTENT_TYPE = "application/json"


class ApiError(Exception):
    """An answer that is a ``Status`` object: HTTP code, upstream ``StatusReason`` and a message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message

    def body(self) -> bytes:
        """The ``Status`` JSON document (``metav1.Status``)."""
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        return json.dumps(status, separators=(",", ":")).encode()


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def path_not_found(path: str) -> ApiError:
    return not_found(f"the server could not find the requested resource {_shown(path)}")


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow method {_shown(method)} here")


def not_acceptable(accepted: str) -> ApiError:
    return ApiError(406, "NotAcceptable", f"only the following media types are accepted: {accepted}")


def header_fields_too_large(limit: int) -> ApiError:
    return ApiError(
        431,
        "RequestHeaderFieldsTooLarge",
        f"the request line and headers are larger than {limit} bytes",
    )


def malformed_request(code: int, detail: str) -> ApiError:
    """A request the HTTP parser refused (bad request line, header line too long, too many headers)."""
    return ApiError(code, "BadRequest", f"malformed HTTP request: {_shown(detail)}")


def request_timeout(seconds: float) -> ApiError:
    return ApiError(
        503,
        "ServiceUnavailable",
        f"the request did not complete within the server's request timeout of {seconds:g} s",
    )


def internal_error() -> ApiError:
    return ApiError(500, "InternalError", "an internal error occurred; see the server's log")


def service_unavailable(
    message: str = "unable to fetch metrics: the metrics store is unavailable",
) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def _shown(text: str, limit: int = 200) -> str:
    """``text`` quoted for a message: shortened, with unprintable characters escaped."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text)
