"""The run consumer: permission on connect, and group_send through channels-redis reaches it."""

import contextlib

import pytest
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.runs.live import group_name
from apps.runs.models import Run
from webrl_site.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def own_layer_and_connections():
    """Each test gets its own channel layer, closed inside the test's event loop.

    The layer is a process-wide singleton whose Redis pools belong to the loop that opened them;
    one left over from an earlier test's (closed) loop can block a later test for good. The
    consumer's queries run in asgiref's worker thread, so that connection is closed here too.
    """
    from django.db import connections

    channel_layers.backends.clear()
    yield
    layer = channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    if layer is not None:
        await layer.flush()
        await layer.close_pools()
    await database_sync_to_async(connections.close_all)()


@contextlib.asynccontextmanager
async def communicator(user, run_id):
    """A communicator whose consumer is always stopped before the test's loop closes."""
    app = URLRouter(websocket_urlpatterns)
    comm = WebsocketCommunicator(app, f"/ws/runs/{run_id}/")
    comm.scope["user"] = user
    try:
        yield comm
    finally:
        # A refused consumer is still waiting on its channel; disconnect ends it either way.
        await comm.disconnect(timeout=30)


@database_sync_to_async
def make_run(django_user_model):
    from tests.conftest import make_cast

    owner, reviewer, outsider = make_cast(django_user_model)
    run = Run.objects.create(owner=owner, name="live", config={})
    return run, owner, outsider


async def test_a_logged_in_user_receives_frames_sent_to_the_run_group(django_user_model):
    run, owner, outsider = await make_run(django_user_model)
    async with communicator(outsider, run.pk) as comm:
        connected, _ = await comm.connect(timeout=30)
        assert connected
        layer = get_channel_layer()
        await layer.group_send(
            group_name(run.pk), {"type": "run.frame", "slot": 2, "html": "<img id='slot-2'>"}
        )
        message = await comm.receive_json_from(timeout=30)
        assert message == {"event": "frame", "html": "<img id='slot-2'>", "slot": 2}


async def test_an_anonymous_user_is_refused(django_user_model):
    run, owner, outsider = await make_run(django_user_model)
    async with communicator(AnonymousUser(), run.pk) as comm:
        connected, code = await comm.connect(timeout=30)
    assert not connected
    assert code == 4403


async def test_a_missing_run_is_refused(django_user_model):
    run, owner, outsider = await make_run(django_user_model)
    async with communicator(owner, run.pk + 1000) as comm:
        connected, code = await comm.connect(timeout=30)
    assert not connected
    assert code == 4403
