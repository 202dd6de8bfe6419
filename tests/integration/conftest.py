from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from app.auth import create_key
from app.runtime import Runtime
from app.web import create_app


@pytest.fixture
def client(rt: Runtime) -> Iterator[FlaskClient]:
    app = create_app(runtime=rt)
    with app.test_client() as test_client:
        yield test_client


def _key(rt: Runtime, role: str) -> str:
    with rt.db.transaction() as session:
        return create_key(session, f"test-{role}", role)[1]


@pytest.fixture
def trigger_headers(rt: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_key(rt, 'trigger')}"}


@pytest.fixture
def admin_headers(rt: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {_key(rt, 'admin')}"}
