"""Contract tests for :mod:`simfl.flower_compat.messages`, one per named assumption."""

from __future__ import annotations

import inspect

from flwr.app import Error, Message, MetricRecord, RecordDict

from simfl.flower_compat.messages import as_received, client_error, replied_as, sent_from


def test_reply_sender_read_from_metadata_dict() -> None:
    from flwr.app.message import make_message
    from flwr.app.metadata import Metadata

    metadata = Metadata(
        run_id=1,
        message_id="m",
        src_node_id=5,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=0.0,
        ttl=60.0,
        message_type="train",
    )
    reply = make_message(metadata=metadata, content=RecordDict())
    sent_from(reply, 42)
    assert reply.metadata.src_node_id == 42, (
        "reply-sender-read-from-metadata-dict: Metadata.src_node_id no longer reads "
        "_src_node_id; SecAgg+ replies would name their slot instead of their partition "
        "(PartitionAddressedGrid), batch members the batch's slot"
    )


def test_message_made_with_given_metadata(flower_task) -> None:
    """The batch of clients hands each member over as the message it would have received and
    returns each member's reply from its slot."""
    name = "message-made-with-given-metadata"
    with flower_task():
        batch = Message(RecordDict(), dst_node_id=5, message_type="train", group_id="7")
        batch.metadata.__dict__["_message_id"] = "abc"  # as the link state assigns it
        member = as_received(batch, RecordDict({"m": MetricRecord({"x": 1})}))
        assert member.metadata is not batch.metadata, f"{name}: metadata not copied"
        for field in ("message_id", "dst_node_id", "group_id", "message_type", "run_id"):
            assert getattr(member.metadata, field) == getattr(batch.metadata, field), (
                f"{name}: Message(metadata=...) no longer keeps {field}"
            )
        assert member.content["m"]["x"] == 1
        reply = Message(RecordDict(), reply_to=member)
        assert reply.metadata.reply_to_message_id == "abc"
        moved = replied_as(reply, 9, error=Error(code=3, reason="r"))
        assert moved.metadata.src_node_id == 9 and moved.has_error()
        assert reply.metadata.src_node_id == 5  # the original is untouched


def test_client_app_exception_worded_as_flowers() -> None:
    """A batch member that raises gets the error Flower's engine gives a ClientApp's."""
    from flwr.common.constant import ErrorCode
    from flwr.server.superlink.fleet.vce import vce_api

    name = "client-app-exception-worded-as-flowers"
    worker = inspect.getsource(vce_api.worker)
    wording = 'reason = str(type(ex)) + ":<\'" + str(ex) + "\'>"'
    assert wording in worker, (
        f"{name}: Flower's engine words a ClientApp's exception differently now; update "
        "simfl.flower_compat.messages.client_error"
    )
    assert "e_code = ErrorCode.CLIENT_APP_RAISED_EXCEPTION" in worker, name
    error = client_error(ValueError("boom"))["simfl.error"]
    assert error["code"] == ErrorCode.CLIENT_APP_RAISED_EXCEPTION
    assert error["reason"] == "<class 'ValueError'>:<'boom'>"
