"""Errors the adapters raise; the domain reacts to them without knowing the vendor behind them."""

from __future__ import annotations


class DeliveryError(Exception):
    """A message could not be handed to the outside world.

    ``retryable`` tells the outbox worker whether trying again later may succeed (a server down, a
    timeout, a 5xx, a temporary SMTP refusal) or never will (the recipient does not exist, the endpoint
    answers 4xx), in which case the message goes straight to the dead letters. The message text is
    stored on the outbox row, so it never contains a password, a URL with credentials or a body.
    """

    def __init__(self, message: str, *, retryable: bool, unreachable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        #: Nobody answered (connection refused, timed out): the message was not judged, so the
        #: outbox keeps trying it, however long the outage, instead of counting it towards death.
        self.unreachable = unreachable
