"""Console sessions end on the server: a session cookie captured before sign-out, a password
change or a disable opens nothing afterwards, and neither does one past its lifetime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask.testing import FlaskClient

from app.cli import cli
from app.clock import utcnow
from app.runtime import Runtime
from app.user_sessions import ConsoleSession
from app.users import set_disabled, set_password
from app.web import create_app
from tests.integration.console.support import PASSWORD, Console, users

COOKIE = "session"


def captured(console: Console) -> str:
    cookie = console.client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def replay(rt: Runtime, cookie: str) -> int:
    """GET / from another client carrying only the captured cookie: 200 if it still works."""
    with create_app(runtime=rt).test_client() as thief:
        thief.set_cookie(COOKIE, cookie)
        return thief.get("/").status_code


def signed_in(client: FlaskClient, rt: Runtime, name: str = "alice") -> tuple[Console, str]:
    users(rt)
    console = Console(client)
    assert console.sign_in(name).status_code == 302
    cookie = captured(console)
    assert replay(rt, cookie) == 200  # the capture works while the session is open
    return console, cookie


def test_a_cookie_captured_before_sign_out_opens_nothing(client: FlaskClient,
                                                         rt: Runtime) -> None:
    console, cookie = signed_in(client, rt)
    assert console.post("/logout").status_code == 302
    assert replay(rt, cookie) == 302


def test_signing_out_ends_only_that_session(client: FlaskClient, rt: Runtime) -> None:
    console, cookie = signed_in(client, rt)
    with create_app(runtime=rt).test_client() as laptop:
        other = Console(laptop)
        assert other.sign_in("alice").status_code == 302
        assert other.post("/logout").status_code == 302
    assert replay(rt, cookie) == 200


def _change_password(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        set_password(session, "alice", "another long passphrase")


def _disable(rt: Runtime) -> None:
    with rt.db.transaction() as session:
        set_disabled(session, "alice", True)


def _enable_again(rt: Runtime) -> None:
    _disable(rt)
    with rt.db.transaction() as session:
        set_disabled(session, "alice", False)  # enabling does not revive old sessions


@pytest.mark.parametrize("change", [_change_password, _disable, _enable_again])
def test_a_password_change_or_disable_ends_every_session(client: FlaskClient, rt: Runtime,
                                                        change: Callable[[Runtime], None]) -> None:
    _console, cookie = signed_in(client, rt)
    _console2, other_cookie = signed_in(create_app(runtime=rt).test_client(), rt)
    change(rt)
    assert replay(rt, cookie) == 302
    assert replay(rt, other_cookie) == 302


def test_the_command_line_ends_a_users_sessions(client: FlaskClient, rt: Runtime,
                                                database_url: str) -> None:
    _console, cookie = signed_in(client, rt)
    runner = CliRunner(env={"DATABASE_URL": database_url, "PAYBRIDGE_ENV": "test"})
    ended = runner.invoke(cli, ["users", "sign-out", "alice"])
    assert ended.exit_code == 0 and "1 session of" in ended.output, ended.output
    assert replay(rt, cookie) == 302
    _console, cookie = signed_in(create_app(runtime=rt).test_client(), rt)
    changed = runner.invoke(cli, ["users", "set-password", "alice", "--password-stdin"],
                            input="a third long passphrase\n")
    assert changed.exit_code == 0, changed.output
    assert replay(rt, cookie) == 302


def test_a_session_past_its_lifetime_ends_on_the_server(client: FlaskClient,
                                                        rt: Runtime) -> None:
    """The cookie's own timestamp is not all: the server's record expires too."""
    _console, cookie = signed_in(client, rt)
    with rt.db.transaction() as session:
        session.execute(sa.update(ConsoleSession).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    assert replay(rt, cookie) == 302


def test_signing_in_gives_a_new_session_and_the_old_cookie_stays_out(
        client: FlaskClient, rt: Runtime) -> None:
    console, first = signed_in(client, rt)
    assert console.post("/logout").status_code == 302
    assert console.sign_in("alice").status_code == 302
    assert captured(console) != first
    assert replay(rt, first) == 302


def test_sessions_are_stored_only_as_hashes(client: FlaskClient, rt: Runtime) -> None:
    from itsdangerous import URLSafeTimedSerializer

    _console, cookie = signed_in(client, rt)
    app = create_app(runtime=rt)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert isinstance(serializer, URLSafeTimedSerializer)
    token = serializer.loads(cookie)["sid"]
    with rt.db.transaction() as session:
        stored = session.scalars(sa.select(ConsoleSession.token_hash)).all()
    assert stored and token not in stored and all(len(h) == 64 for h in stored)
    assert PASSWORD not in cookie
