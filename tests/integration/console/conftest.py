"""Fixtures of the console tests: a signed-in admin and a signed-in operations user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from app.runtime import Runtime
from tests.integration.console.support import Console, users


@pytest.fixture
def admin_console(client: FlaskClient, rt: Runtime) -> Iterator[Console]:
    users(rt)
    console = Console(client)
    assert console.sign_in("alice").status_code == 302
    yield console


@pytest.fixture
def ops_console(rt: Runtime) -> Iterator[Console]:
    from app.web import create_app

    users(rt)
    with create_app(runtime=rt).test_client() as other:
        console = Console(other)
        assert console.sign_in("otto").status_code == 302
        yield console
