"""One error base class carrying its HTTP status and a stable name; one handler renders it."""

from __future__ import annotations

from typing import ClassVar


class ObservatoryError(Exception):
    """An expected failure with a message safe to show to the client."""

    status_code: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"
    type_: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class InputError(ObservatoryError):
    """The submitted conversation cannot be accepted (400)."""

    status_code = 400
    title = "Invalid conversation"
    type_ = "invalid-input"


class PayloadTooLarge(ObservatoryError):
    status_code = 413
    title = "Payload Too Large"
    type_ = "payload-too-large"


class UnsupportedMediaType(ObservatoryError):
    status_code = 415
    title = "Unsupported Media Type"
    type_ = "unsupported-media-type"


class CredentialError(ObservatoryError):
    """Credentials sent in a way that is refused before they are checked (400)."""

    status_code = 400
    title = "Invalid credential"
    type_ = "invalid-credential"


class Unauthorized(ObservatoryError):
    """A credential was presented and is not valid: never a silent fall back to public."""

    status_code = 401
    title = "Unauthorized"
    type_ = "unauthorized"

    def __init__(self, detail: str) -> None:
        # RFC 6750: the error description is a quoted string of printable ASCII.
        described = "".join(c for c in detail if " " <= c <= "~" and c not in '"\\')
        super().__init__(
            detail,
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="observatory", error="invalid_token", '
                    f'error_description="{described}"'
                )
            },
        )


class Forbidden(ObservatoryError):
    status_code = 403
    title = "Forbidden"
    type_ = "forbidden"


class TooManyRequests(ObservatoryError):
    status_code = 429
    title = "Too Many Requests"
    type_ = "rate-limited"


class NotFound(ObservatoryError):
    status_code = 404
    title = "Not Found"
    type_ = "not-found"


class Conflict(ObservatoryError):
    status_code = 409
    title = "Conflict"
    type_ = "conflict"


class ServiceUnavailable(ObservatoryError):
    status_code = 503
    title = "Service Unavailable"
    type_ = "unavailable"
