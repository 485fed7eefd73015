"""A server that advertises PIPELINING (RFC 2920) gets each message's MAIL, RCPT and DATA in
one write; one that does not gets them one at a time. Whatever the server answers, both ways
give the same results, leave the session in the same state, and deliver the same bytes.
"""

import smtplib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpconfig.replies import Outcome
from smtpconfig.transport import MessageWithheld, SmtpConnection, _data_lines, _quoted
from tests.queue.factory import DOTTED_RAW as RAW

MEMBERS = ["ann@members.example", "bob@members.example", "cid@members.example"]

both_ways = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])


@pytest.fixture
def open_connection(sink, make_server, db):
    connections = []

    def open_connection(*, pipelining: bool, sink=sink) -> SmtpConnection:
        sink.handler.pipelining = pipelining
        connection = SmtpConnection(make_server(sink=sink))
        connection.open()
        connections.append(connection)
        return connection

    yield open_connection
    for connection in connections:
        connection.close()


def send(connection, recipients=MEMBERS, raw=RAW, **kwargs):
    return connection.send(
        envelope_from="office@club.example", recipients=recipients, raw=raw, **kwargs
    )


def outcomes(result) -> dict[str, tuple[Outcome, int | None]]:
    return {each.email: (each.outcome, each.code) for each in result.recipients}


def test_the_envelope_goes_in_one_write_to_a_server_that_pipelines(sink, open_connection):
    connection = open_connection(pipelining=True)
    assert send(connection).outcome == Outcome.ACCEPTED
    assert sink.handler.after_mail == [
        b"rcpt to:<ann@members.example>\r\nrcpt to:<bob@members.example>\r\n"
        b"rcpt to:<cid@members.example>\r\ndata\r\n"
    ]


def test_a_server_that_does_not_pipeline_gets_one_command_at_a_time(sink, open_connection):
    connection = open_connection(pipelining=False)
    assert send(connection).outcome == Outcome.ACCEPTED
    assert sink.handler.after_mail == [b""]


def test_many_recipients_go_in_bounded_groups(sink, open_connection):
    # The server's replies to a group must fit in the sockets' buffers while the client is
    # still writing it: a group holds at most 100 commands.
    members = [f"member{number}@members.example" for number in range(250)]
    connection = open_connection(pipelining=True)
    result = send(connection, recipients=members)
    assert result.outcome == Outcome.ACCEPTED
    assert sink.recipients() == members
    [written_with_mail] = sink.handler.after_mail
    assert written_with_mail.count(b"rcpt to:") == 99 and b"data" not in written_with_mail


@both_ways
def test_the_same_bytes_arrive(sink, open_connection, pipelining):
    connection = open_connection(pipelining=pipelining)
    unterminated = RAW.removesuffix(b"\r\n")
    assert send(connection).outcome == Outcome.ACCEPTED
    assert send(connection, raw=unterminated).outcome == Outcome.ACCEPTED
    # A leading dot is doubled on the wire and undone by the server; the last line is ended.
    assert [item.content for item in sink.received] == [RAW, RAW]
    assert [item.rcpt_tos for item in sink.received] == [MEMBERS, MEMBERS]
    assert sink.handler.sessions == 1


@both_ways
def test_a_refused_recipient_leaves_the_others_delivered(sink, open_connection, pipelining):
    sink.handler.rcpt_replies["bob@members.example"] = "550 5.1.1 No such user"
    connection = open_connection(pipelining=pipelining)
    result = send(connection)
    assert result.outcome == Outcome.ACCEPTED
    assert outcomes(result) == {
        "ann@members.example": (Outcome.ACCEPTED, 250),
        "bob@members.example": (Outcome.PERMANENT, 550),
        "cid@members.example": (Outcome.ACCEPTED, 250),
    }
    assert sink.recipients() == ["ann@members.example", "cid@members.example"]


def refuse_the_sender(handler):
    handler.mail_reply = "553 5.7.1 Sender not allowed"


def refuse_every_recipient(handler):
    handler.rcpt_replies.update({member: "550 5.1.1 No such user" for member in MEMBERS})


def refuse_the_message(handler):
    handler.data_reply = "451 4.3.0 Try again later"


@both_ways
@pytest.mark.parametrize(
    ("refuse", "outcome", "code"),
    [
        (refuse_the_sender, Outcome.PERMANENT, 553),
        (refuse_every_recipient, Outcome.PERMANENT, 550),
        (refuse_the_message, Outcome.TEMPORARY, 451),
    ],
    ids=["sender", "every-recipient", "message"],
)
def test_a_refusal_delivers_nothing_and_the_session_goes_on(
    sink, open_connection, pipelining, refuse, outcome, code
):
    refuse(sink.handler)
    connection = open_connection(pipelining=pipelining)
    result = send(connection)
    assert (result.outcome, result.code) == (outcome, code)
    assert sink.received == []
    # The transaction was reset (or the data refused): the next message goes over the same
    # session.
    sink.handler.mail_reply = sink.handler.data_reply = None
    sink.handler.rcpt_replies.clear()
    assert send(connection).outcome == Outcome.ACCEPTED
    assert sink.recipients() == MEMBERS and sink.handler.sessions == 1


@both_ways
def test_a_server_that_hangs_up_after_a_reply_drops_the_session(sink, open_connection, pipelining):
    sink.handler.rcpt_replies["ann@members.example"] = "421 4.3.2 Shutting down"
    connection = open_connection(pipelining=pipelining)
    result = send(connection)
    assert result.outcome != Outcome.ACCEPTED
    assert outcomes(result)["ann@members.example"][1] == 421
    assert sink.received == []
    # The session is gone; the next message opens a new one.
    assert not connection.is_open
    sink.handler.rcpt_replies.clear()
    connection.open()
    assert send(connection).outcome == Outcome.ACCEPTED
    assert sink.handler.sessions == 2


def test_the_recipients_after_a_hang_up_get_its_reply(sink, open_connection):
    # Pipelined, the commands after the 421 were written but never answered.
    sink.handler.rcpt_replies["ann@members.example"] = "421 4.3.2 Shutting down"
    result = send(open_connection(pipelining=True))
    assert outcomes(result) == {member: (result.recipients[0].outcome, 421) for member in MEMBERS}


@both_ways
def test_the_data_waits_for_before_data_and_a_failure_delivers_nothing(
    sink, open_connection, pipelining
):
    connection = open_connection(pipelining=pipelining)
    seen_by_the_server = []
    result = send(connection, before_data=lambda: seen_by_the_server.append(len(sink.received)))
    assert result.outcome == Outcome.ACCEPTED and seen_by_the_server == [0]

    def refuse():
        raise RuntimeError("the record before this message failed")

    with pytest.raises(MessageWithheld) as withheld:
        send(connection, before_data=refuse)
    assert isinstance(withheld.value.__cause__, RuntimeError)
    # The session was dropped before the end of the data: the server has only the first.
    assert not connection.is_open
    assert len(sink.received) == 1


@both_ways
def test_an_internationalised_address_needs_the_servers_smtputf8(sink, open_connection, pipelining):
    connection = open_connection(pipelining=pipelining)
    result = send(connection, recipients=["zoë@members.example"])
    assert result.outcome == Outcome.ACCEPTED
    assert sink.recipients() == ["zoë@members.example"]


@both_ways
def test_without_smtputf8_an_internationalised_address_is_refused_before_anything_is_written(
    smtp_sink, open_connection, pipelining
):
    ascii_only = smtp_sink(smtputf8=False)
    connection = open_connection(pipelining=pipelining, sink=ascii_only)
    result = send(connection, recipients=["zoë@members.example"])
    assert result.outcome == Outcome.PERMANENT
    assert "SMTPUTF8" in result.reply
    assert ascii_only.handler.after_mail == []
    # The session goes on for a message the server can take.
    assert send(connection).outcome == Outcome.ACCEPTED


# The pipelined commands write addresses and data as smtplib's own commands would.
ADDRESS_CHARACTERS = st.sampled_from(list("abcXYZ09.-+_'!#%=~éü@ <>()[]\\,;:\"\t"))


@settings(max_examples=2000)
@given(st.text(ADDRESS_CHARACTERS, max_size=20))
def test_an_address_is_quoted_as_smtplib_quotes_it(address):
    assert _quoted(address) == smtplib.quoteaddr(address)


@settings(max_examples=2000)
@given(
    st.binary(max_size=40) | st.text(st.sampled_from(list("ab.\r\n")), max_size=30).map(str.encode)
)
def test_the_data_is_written_as_smtplibs_data_writes_it(msg):
    lines = smtplib._quote_periods(msg)  # what smtplib's data() sends, step by step
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    assert _data_lines(msg) == lines + b".\r\n"
