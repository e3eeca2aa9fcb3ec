"""One JSON shape for every error: `{"error": {"status", "code", "message", "field", "details"}}`."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.runs.configs import error_field
from trainer.config import ConfigError

CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 422: "invalid", 429: "throttled"}  # fmt: skip


def error_body(status: int, message: str, *, code: str = "", field: str | None = None,
               details: list[dict] | None = None) -> dict:  # fmt: skip
    return {
        "error": {
            "status": status,
            "code": code or CODES.get(status, "error"),
            "message": message,
            "field": field,
            "details": details or [],
        }
    }


def _param_field(loc) -> str | None:
    """`("query", "limit")` -> `limit`; `("body", "payload", "name")` -> `name`."""
    parts = [str(p) for p in loc[1:]]
    if parts and parts[0] == "payload":
        parts = parts[1:]
    return ".".join(parts) or None


def install(api: NinjaAPI) -> None:
    """Register the handlers that turn each failure into the shape above."""

    def respond(request, status: int, message: str, **kw):
        return api.create_response(request, error_body(status, message, **kw), status=status)

    @api.exception_handler(ValidationError)
    def invalid(request, exc: ValidationError):
        details = [{"field": _param_field(e.get("loc", ())), "message": e.get("msg", "invalid")}
                   for e in exc.errors]  # fmt: skip
        first = details[0] if details else {"field": None, "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return respond(request, 422, message, field=first["field"], details=details)

    @api.exception_handler(ConfigError)
    def invalid_config(request, exc: ConfigError):
        field = error_field(str(exc))
        return respond(request, 422, str(exc), code="invalid_config", field=field,
                       details=[{"field": field, "message": str(exc)}])  # fmt: skip

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return respond(request, 401, "Send `Authorization: Bearer <token>`; create a token on the "
                       "dashboard's API tokens page (/tokens/).")  # fmt: skip

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        return respond(request, exc.status_code, str(exc))

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return respond(request, 403, str(exc) or "Your roles do not allow this.")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, str(exc) or "Not found.")

    @api.exception_handler(ObjectDoesNotExist)
    def missing(request, exc):
        return respond(request, 404, str(exc) or "Not found.")
