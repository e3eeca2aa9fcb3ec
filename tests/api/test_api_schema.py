"""Schemathesis against /api/openapi.json, in-process over WSGI, with a token that may do everything:
no answer is a server error, and every answer matches the schema (status code, content type, body).
Bounded: a few examples per operation, so that it fits in the suite."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.api.services import create_token
from apps.curriculum.models import Task
from apps.runs.models import Checkpoint, MetricPoint
from tests.web.factories import make_phase, make_run, make_task, make_trajectory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The schema as the app serves it (reading it touches no database).
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture
def kept_connection(db):
    """Keep the test's database connection (and its transaction) open between WSGI requests, as
    Django's own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(kept_connection, django_user_model):
    """A superuser's token (operator and reviewer), and rows for the reads to find."""
    admin = django_user_model.objects.create_superuser("schema-admin", password="x-123456789")
    run = make_run(admin, name="schema-run")
    phase = make_phase(run, 1)
    MetricPoint.objects.create(run=run, phase=phase, name="eval/success_rate", step=1, value=0.5)
    for score in (0.0, 1.0):
        make_trajectory(run, phase=phase, score=score, p_yes=0.4 + score / 2)
    make_task("Generated", origin=Task.Origin.GENERATED, status=Task.Status.PROPOSED, run=run)
    Checkpoint.objects.create(run=run, phase=phase, kind="actor", path="/tmp/a", step=1)
    return create_token(admin, "schemathesis")[1]


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_within_its_schema(case, admin_key):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, checks=CHECKS)
