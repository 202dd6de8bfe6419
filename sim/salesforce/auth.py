"""Users, the OAuth token endpoint's checks, and the sessions it hands out.

Two kinds of user exist. The *integration user* logs in with the client-credentials grant
(Paybridge); its writes never fire the trigger, like a real org's trigger bypass for an
integration user. *Regular users* log in with the password grant; their writes do.

The client-credentials flow works only on the org's own (My Domain) host: "The client
credentials flow doesn't support calls to login.salesforce.com or test.salesforce.com"
(Salesforce Help, "Migrate from OAuth Username-Password to Client Credentials Flow",
https://help.salesforce.com/s/articleView?id=000886201&type=1). There Salesforce answers
400 ``{"error": "invalid_grant", "error_description": "request not supported on this
domain"}``, as reported in https://github.com/pozil/pub-sub-api-node-client/issues/58. The
client may authenticate with HTTP Basic (RFC 6749 section 2.3.1; simple-salesforce's own
client-credentials login does) or with ``client_id``/``client_secret`` in the form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sim.salesforce.config import SimConfig
from sim.salesforce.schema import ORG_KEY_PREFIX, USER_KEY_PREFIX, IdFactory

INTEGRATION_USERNAME = "paybridge-integration@example.com"


@dataclass(frozen=True)
class User:
    id: str
    username: str
    integration: bool


@dataclass
class Session:
    token: str
    user: User
    issued_at: float
    expires_at: float


class AuthError(Exception):
    """Bad credentials or an unsupported grant; ``error`` is the OAuth error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class Auth:
    """Checks credentials and keeps the sessions issued. Not thread-safe: callers lock."""

    def __init__(self, config: SimConfig, ids: IdFactory) -> None:
        self.config = config
        self.org_id = ids.new(ORG_KEY_PREFIX)
        self.integration_user = User(ids.new(USER_KEY_PREFIX), INTEGRATION_USERNAME, True)
        self.users = {
            name: User(ids.new(USER_KEY_PREFIX), name, False) for name in config.users
        }
        self._sessions: dict[str, Session] = {}

    @property
    def default_user(self) -> User:
        """The regular user the control API acts as."""
        return next(iter(self.users.values()))

    def login(self, form: Mapping[str, str], *, host: str = "",
              basic: tuple[str, str] | None = None) -> User:
        """The user a token request authenticates, else ``AuthError``.

        ``host`` is the host the request was sent to; ``basic`` the (client id, secret) of
        an ``Authorization: Basic`` header, which is used instead of the form's when given.
        """
        grant = form.get("grant_type", "")
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        client_ok = hmac.compare_digest(client_id, self.config.client_id) and \
            hmac.compare_digest(secret, self.config.client_secret)
        if grant == "client_credentials":
            if host.lower() in self.config.login_hosts:
                raise AuthError("invalid_grant", "request not supported on this domain")
            if client_ok:
                return self.integration_user
        elif grant == "password":
            # A client id is optional here; when one is sent it must be this org's.
            if ("client_id" in form or basic) and not client_ok:
                raise AuthError("invalid_grant", "authentication failure")
            username = form.get("username", "")
            expected = self.config.users.get(username)
            if expected is not None and hmac.compare_digest(form.get("password", ""), expected):
                return self.users[username]
        else:
            raise AuthError("unsupported_grant_type", "grant type not supported")
        raise AuthError("invalid_grant", "authentication failure")

    def issue(self, user: User, instance_url: str) -> dict[str, str]:
        """A new session for ``user`` and the token endpoint's answer for it."""
        now = time.time()
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        self._sessions[token] = Session(token, user, now, now + self.config.session_ttl)
        identity = f"{instance_url}/id/{self.org_id}/{user.id}"
        issued_at = str(int(now * 1000))
        digest = hmac.new(
            self.config.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        return {
            "access_token": token,
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(),
        }

    def session(self, token: str) -> Session | None:
        """The live session of a bearer token, or None (unknown, expired or revoked)."""
        found = self._sessions.get(token)
        if found is None:
            return None
        if found.expires_at <= time.time():
            del self._sessions[token]
            return None
        return found

    def expire_all(self) -> int:
        """Revoke every session issued so far; returns how many there were."""
        count = len(self._sessions)
        self._sessions.clear()
        return count
