"""The run consumer: permission on connect, and group_send through channels-redis reaches it."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.runs.live import group_name
from apps.runs.models import Run
from webrl_site.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The consumer's queries run in asgiref's worker thread: close its connection afterwards."""
    yield
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


def communicator(user, run_id):
    app = URLRouter(websocket_urlpatterns)
    comm = WebsocketCommunicator(app, f"/ws/runs/{run_id}/")
    comm.scope["user"] = user
    return comm


@database_sync_to_async
def make_run(django_user_model):
    from tests.conftest import make_cast

    owner, reviewer, outsider = make_cast(django_user_model)
    run = Run.objects.create(owner=owner, name="live", config={})
    return run, owner, outsider


async def test_a_logged_in_user_receives_frames_sent_to_the_run_group(django_user_model):
    run, owner, outsider = await make_run(django_user_model)
    comm = communicator(outsider, run.pk)
    connected, _ = await comm.connect(timeout=30)
    assert connected
    layer = get_channel_layer()
    await layer.group_send(
        group_name(run.pk), {"type": "run.frame", "slot": 2, "html": "<img id='slot-2'>"}
    )
    message = await comm.receive_json_from(timeout=30)
    assert message == {"event": "frame", "html": "<img id='slot-2'>", "slot": 2}
    await comm.disconnect()


async def test_an_anonymous_user_is_refused(django_user_model):
    run, owner, outsider = await make_run(django_user_model)
    comm = communicator(AnonymousUser(), run.pk)
    connected, code = await comm.connect(timeout=30)
    assert not connected


async def test_a_missing_run_is_refused(django_user_model):
    run, owner, outsider = await make_run(django_user_model)
    comm = communicator(owner, run.pk + 1000)
    connected, _ = await comm.connect(timeout=30)
    assert not connected
