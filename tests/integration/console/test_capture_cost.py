"""The poll's cost beside the allocation on the dashboard: the calls each object's last
poll spent against the Salesforce emulator, per interval and per day."""

from __future__ import annotations

from dataclasses import replace

from app.runtime import Runtime
from app.web import create_app
from queues.polling import poll_changes, polled_objects
from tests.integration.console.support import Console, key, users


def test_the_dashboard_shows_what_polling_spends(emulators: tuple[Runtime, str, str]) -> None:
    base, _gw, _sf = emulators
    rt = Runtime(replace(base.settings, change_capture="poll", capture_poll_interval=60.0))
    poll_changes(rt)
    poll_changes(rt)  # idle: one call per object
    objects = len(polled_objects())
    with create_app(runtime=rt).test_client() as client:
        body = client.get("/api/v1/dashboard", headers=key(rt, "operations")).get_json()
        capture = body["capture"]
        assert capture["calls_per_interval"] == objects
        assert set(capture["objects"]) == {o.name for o in polled_objects()}
        assert capture["calls_per_day"] == objects * 1440
        allocation = body["salesforce"]["allocation"]
        assert capture["share_of_allocation"] == round(objects * 1440 / allocation, 4)
        users(rt)
        console = Console(client)
        assert console.sign_in("alice").status_code == 302
        page = console.get("/").get_data(as_text=True)
    assert "Change capture (polling)" in page
    assert f"{objects} calls / 1 min" in page
    assert f"{objects * 1440:,} a day" in page


def test_no_capture_tile_when_the_org_pushes(emulators: tuple[Runtime, str, str]) -> None:
    rt, _gw, _sf = emulators
    with create_app(runtime=rt).test_client() as client:
        body = client.get("/api/v1/dashboard", headers=key(rt, "operations")).get_json()
    assert body["capture"] is None
