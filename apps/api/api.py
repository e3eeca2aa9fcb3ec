"""The JSON API under /api/ (django-ninja): OpenAPI at /api/openapi.json, interactive docs at
/api/docs. Every endpoint needs `Authorization: Bearer <token>`; roles are the pages' roles."""

from __future__ import annotations

from ninja import NinjaAPI

from apps.api import data, errors, runs
from apps.api.auth import TokenAuth

DESCRIPTION = """
Runs, trajectories, labels, tasks and checkpoints of this webrl dashboard.

* **Authentication**: `Authorization: Bearer <token>`; create and revoke tokens on the dashboard's
  *API tokens* page (`/tokens/`). A token acts as its user, with that user's roles: operators launch
  and cancel runs, reviewers label trajectories and curate generated tasks, everyone reads.
* **Pages**: lists return `{"items": [...], "next_before": id | null, "limit": n}`, newest first;
  pass `before=<next_before>` for the next page.
* **Errors**: always `{"error": {"status", "code", "message", "field", "details": [{"field",
  "message"}]}}`. A run config the trainer rejects answers 422 `invalid_config` with `RunConfig`'s
  own message and the field it names.
"""

api = NinjaAPI(
    title="webrl API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=TokenAuth(),
)
errors.install(api)
api.add_router("", runs.router)
api.add_router("", data.router)
