"""Errors Django answers itself under /api/ (an unknown path, a method the path does not take)
come back in the API's one error shape too."""

from __future__ import annotations

from django.http import JsonResponse

from apps.api.errors import error_body

MESSAGES = {
    404: "No such endpoint; see /api/docs for the list.",
    405: "This endpoint does not take that method.",
}


def api_json_errors(get_response):
    def middleware(request):
        response = get_response(request)
        status = response.status_code
        if (
            request.path.startswith("/api/")
            and status in MESSAGES
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            allowed = response.get("Allow")
            if allowed:  # the router lists methods in no fixed order
                allowed = ", ".join(sorted(m.strip() for m in allowed.split(",")))
            message = MESSAGES[status] + (f" Allowed: {allowed}." if allowed else "")
            json_response = JsonResponse(error_body(status, message), status=status)
            if allowed:
                json_response["Allow"] = allowed
            return json_response
        return response

    return middleware
