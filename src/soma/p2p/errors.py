"""The P2P service's errors: what a handler raises to refuse a call, and what a caller
sees when a call fails.

A handler's refusal travels as a gRPC status whose details are `[CODE] message`, so a
caller gets the remote code back (`PeerCallError.remote_code`) without parsing prose.
"""

from __future__ import annotations

import grpc

from soma.types.crypto import Ed25519PublicKey
from soma.types.error import SomaError


class P2pError(SomaError):
    code = "P2P_ERROR"


class InvalidP2pRequestError(P2pError):
    """A request that decodes but is not acceptable (a bad signature, a bad field):
    answered INVALID_ARGUMENT."""

    code = "P2P_INVALID_REQUEST"


class P2pRefusedError(P2pError):
    """The caller is refused whatever it asks (a peer we dropped for misbehaving):
    answered PERMISSION_DENIED."""

    code = "P2P_REFUSED"


class P2pBusyError(P2pError):
    """Too many calls from the caller's host: answered RESOURCE_EXHAUSTED."""

    code = "P2P_BUSY"


class PeerCallError(P2pError):
    """A call to a peer failed: it was unreachable, timed out, refused the call
    (`status`, and `remote_code` when the peer named its error), or answered bytes that
    are not the expected message (`malformed`: misbehaviour, not a fault)."""

    code = "P2P_PEER_CALL"

    def __init__(
        self,
        address: str,
        message: str,
        *,
        peer_id: Ed25519PublicKey | None = None,
        status: grpc.StatusCode | None = None,
        malformed: bool = False,
        remote_code: str | None = None,
    ) -> None:
        who = address if peer_id is None else f"{address} ({peer_id.hex()[:16]})"
        super().__init__(f"peer {who}: {message}")
        self.address = address
        self.peer_id = peer_id
        self.status = status
        #: The peer answered, with bytes that are not the expected message.
        self.malformed = malformed
        #: The code of the peer's error, when it refused the call with one.
        self.remote_code = remote_code
