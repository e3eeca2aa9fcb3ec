"""Login is required everywhere; operators change runs, others read."""

import pytest
from django.urls import reverse

from apps.runs.models import Run

PAGES = ["runs:list", "rollouts:list", "reviews:queue", "curriculum:list", "checkpoints"]


@pytest.fixture
def run(cast):
    return Run.objects.create(owner=cast[0], name="demo", config={}, status=Run.Status.RUNNING)


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("who", [0, 1, 2])
def test_every_logged_in_user_reads_every_page(client, cast, name, who):
    client.force_login(cast[who])
    assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("who", [0, 1, 2])
def test_every_logged_in_user_reads_a_run(client, cast, run, who):
    client.force_login(cast[who])
    assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 200


def test_the_operator_cancels_a_run(client, cast, run):
    client.force_login(cast[0])
    response = client.post(reverse("runs:cancel", args=[run.pk]))
    assert response.status_code in (200, 302)
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLING


@pytest.mark.parametrize("who", [1, 2])
def test_reviewers_and_outsiders_cannot_cancel_a_run(client, cast, run, who):
    client.force_login(cast[who])
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING


def test_cancel_refuses_get(client, cast, run):
    client.force_login(cast[0])
    assert client.get(reverse("runs:cancel", args=[run.pk])).status_code == 405


def test_a_missing_run_is_a_404(client, cast):
    client.force_login(cast[2])
    assert client.get(reverse("runs:detail", args=[999999])).status_code == 404
