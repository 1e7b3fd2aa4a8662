"""The per-RPC check of who is calling, between a gRPC context and the transport-free `auth` core.

`Guard.for_method` returns, once per method at registration, the check its RPCs run before the
servicer (or None when the service checks nothing, so an open service pays nothing per RPC).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from storytelling.api.credentials import METADATA_KEY
from storytelling.runtime.auth import ANONYMOUS, Authenticator, PeerPolicy, Principal, required_scope
from storytelling.runtime.tls import peer_names

Check = Callable[[grpc.aio.ServicerContext], Principal]


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == METADATA_KEY:
            return value
    return None


class Guard:
    def __init__(self, authenticator: Authenticator | None, peers: PeerPolicy | None) -> None:
        self.authenticator = authenticator
        self.peers = peers

    def for_method(self, method: str) -> Check | None:
        authenticator, peers = self.authenticator, self.peers
        if authenticator is None and peers is None:
            return None
        scope = required_scope(method)
        name = method.rpartition("/")[2]

        def check(context: grpc.aio.ServicerContext) -> Principal:
            """Raises Unauthenticated or PermissionDenied (domain errors the wrapper maps to status)."""
            if peers is not None:
                peers.check(peer_names(context.auth_context()))
            if authenticator is None:
                return ANONYMOUS
            principal = authenticator.authenticate(authorization(context))
            authenticator.authorize(principal, scope, name)
            return principal

        return check
