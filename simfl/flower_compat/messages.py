"""Messages with metadata simfl chooses: batch members, replies from another node.

Flower's public ``Message`` constructors make a new message (fresh metadata) or a reply to one;
a batch of clients (:mod:`simfl.engine.batching`) needs more: each member handed to the
ClientApp as the message it would have received alone, and each member's reply returned as
coming from its own slot, with the error Flower's engine would have given it.

Assumptions (contract-tested in ``test_messages.py``):

- ``reply-sender-read-from-metadata-dict``: a message's ``metadata.src_node_id`` reads
  ``metadata.__dict__["_src_node_id"]`` (there is no setter), so writing that key changes the
  sender a reply names (:func:`sent_from`).
- ``message-made-with-given-metadata``: ``Message(metadata=..., content=... | error=...)``
  (documented as internal) makes a message with exactly that metadata (:func:`as_received`,
  :func:`replied_as`).
- ``client-app-exception-worded-as-flowers``: a ClientApp exception reaches the server as
  ``Error(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, str(type(ex)) + ":<'" + str(ex) + "'>")``
  (``vce_api.worker``), which :func:`client_error` reproduces for a batch member that raised.
"""

from __future__ import annotations

import copy

from flwr.app import Error, Message, RecordDict
from flwr.common.constant import ErrorCode

from simfl.engine.batching import error_record, member_contents, member_error, pack_contents


def sent_from(reply: Message, node: int) -> None:
    """Make ``reply`` name ``node`` as its sender, in place
    (``reply-sender-read-from-metadata-dict``)."""
    reply.metadata.__dict__["_src_node_id"] = node


def replied_as(
    reply: Message, slot: int, content: RecordDict | None = None, error: Error | None = None
) -> Message:
    """A copy of ``reply``'s metadata, sent from ``slot``, with this content or error
    (``reply-sender-read-from-metadata-dict``, ``message-made-with-given-metadata``)."""
    metadata = copy.copy(reply.metadata)
    metadata.__dict__["_src_node_id"] = slot
    return Message(metadata=metadata, content=content, error=error)  # type: ignore[call-overload]


def as_received(batch: Message, content: RecordDict) -> Message:
    """A batch member as the message a client would have received on its own: the batch's
    metadata (a copy) with the member's content (``message-made-with-given-metadata``)."""
    return Message(metadata=copy.copy(batch.metadata), content=content)  # type: ignore[call-overload]


def client_error(error: Exception) -> RecordDict:
    """A member's exception as a member's content: the code and reason Flower's engine gives
    an exception raised by a ClientApp (``client-app-exception-worded-as-flowers``)."""
    reason = str(type(error)) + ":<'" + str(error) + "'>"
    return error_record(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason))


def batched(group: list[Message]) -> Message:
    """The routed messages of ``group`` as one message to the first one's slot."""
    metadata = group[0].metadata
    return Message(
        content=pack_contents([message.content for message in group]),
        dst_node_id=metadata.dst_node_id,
        message_type=metadata.message_type,
        group_id=metadata.group_id,
        ttl=metadata.ttl,
    )


def unbatched(reply: Message, group: list[Message]) -> list[Message]:
    """The batch ``reply`` as one reply per message of ``group``, each from its own slot; a
    batch that failed as a whole (its actor died) fails every member with its error."""
    slots = [message.metadata.dst_node_id for message in group]
    if reply.has_error():
        return [replied_as(reply, slot, error=reply.error) for slot in slots]
    return [
        replied_as(reply, slot, error=failed)
        if (failed := member_error(content)) is not None
        else replied_as(reply, slot, content=content)
        for slot, content in zip(slots, member_contents(reply.content), strict=True)
    ]
