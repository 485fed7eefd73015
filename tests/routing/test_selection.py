"""Server selection and sender rewriting, as pure functions of plain values."""

from dataclasses import replace

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from smtpconfig.exceptions import InvalidMessage, NoServerAvailable
from smtpconfig.selection import (
    PLAIN_MAILBOX,
    ServerOption,
    _mailbox_parts,
    mailbox_parse,
    route_decide,
    server_choose,
)

CLUB = ServerOption(
    id=1,
    name="Club",
    sender_email="office@club.example",
    sender_name="Golf Club",
    filter_domains=frozenset({"club.example"}),
)
INFO = ServerOption(
    id=2,
    name="Info",
    sender_email="info@club.example",
    filter_addresses=frozenset({"info@club.example"}),
)
DEFAULT = ServerOption(
    id=3,
    name="Default",
    sender_email="noreply@relay.example",
    sender_name="Golf Club",
    is_default=True,
)


def sender(value):
    return mailbox_parse(value, field="From")


def test_exact_address_beats_domain_whatever_the_order():
    for servers in ([CLUB, INFO, DEFAULT], [DEFAULT, INFO, CLUB]):
        chosen, matched = server_choose(sender=sender("info@club.example"), servers=servers)
        assert (chosen.name, matched) == ("Info", "address")


def test_domain_entry_matches_other_addresses_of_the_domain():
    chosen, matched = server_choose(sender=sender("bar@club.example"), servers=[CLUB, DEFAULT])
    assert (chosen.name, matched) == ("Club", "domain")


def test_domain_entry_does_not_match_a_subdomain_or_a_lookalike():
    for address in ("bar@mail.club.example", "bar@notclub.example", "bar@club.example.org"):
        chosen, matched = server_choose(sender=sender(address), servers=[CLUB, DEFAULT])
        assert (chosen.name, matched) == ("Default", "default"), address


def test_case_and_display_name_are_ignored():
    chosen, matched = server_choose(
        sender=sender('"Info, Desk" <INFO@Club.EXAMPLE>'), servers=[CLUB, INFO, DEFAULT]
    )
    assert (chosen.name, matched) == ("Info", "address")


def test_idn_sender_matches_an_idna_filter_entry():
    idn = ServerOption(
        id=4,
        name="IDN",
        sender_email="a@xn--clb-ioa.example",
        filter_domains=frozenset({"xn--clb-ioa.example"}),
    )
    chosen, _ = server_choose(sender=sender("Jörg <joerg@clüb.example>"), servers=[idn, DEFAULT])
    assert chosen.name == "IDN"


def test_inactive_server_is_never_chosen():
    inactive_info = replace(INFO, is_active=False)
    chosen, matched = server_choose(
        sender=sender("info@club.example"), servers=[inactive_info, CLUB, DEFAULT]
    )
    assert (chosen.name, matched) == ("Club", "domain")


def test_no_match_and_no_active_default_raises():
    inactive_default = replace(DEFAULT, is_active=False)
    with pytest.raises(NoServerAvailable, match="someone@else.example"):
        server_choose(sender=sender("someone@else.example"), servers=[CLUB, inactive_default])
    with pytest.raises(NoServerAvailable):
        server_choose(sender=None, servers=[])


def test_two_servers_claiming_one_sender_prefer_the_default():
    also_default = replace(DEFAULT, filter_domains=frozenset({"club.example"}))
    chosen, _ = server_choose(sender=sender("x@club.example"), servers=[CLUB, also_default])
    assert chosen.name == "Default"


def test_matched_sender_keeps_its_from_and_reply_to():
    route = route_decide(
        sender=sender("Bar <bar@club.example>"), reply_to=[], servers=[CLUB, DEFAULT]
    )
    assert route.server_id == CLUB.id
    assert route.from_header == "Bar <bar@club.example>"
    assert route.envelope_from == "bar@club.example"
    assert route.reply_to == ()
    assert not route.from_rewritten
    assert route.reason == "matched domain club.example on server Club"


def test_exact_match_reason_names_the_address():
    route = route_decide(sender=sender("Info@Club.example"), reply_to=[], servers=[CLUB, INFO])
    assert route.reason == "matched address info@club.example on server Info"


def test_default_rewrites_from_and_moves_sender_to_reply_to():
    route = route_decide(
        sender=sender("Some One <someone@else.example>"), reply_to=[], servers=[CLUB, DEFAULT]
    )
    assert route.server_id == DEFAULT.id
    assert route.from_rewritten
    assert route.from_header == "Golf Club <noreply@relay.example>"
    assert route.envelope_from == "noreply@relay.example"
    assert route.reply_to == ("Some One <someone@else.example>",)
    assert route.reason.startswith("no filter matched; default server Default; From rewritten")
    assert "original sender moved to Reply-To" in route.reason


def test_rewriting_keeps_a_reply_to_already_set():
    route = route_decide(
        sender=sender("someone@else.example"), reply_to=["desk@else.example"], servers=[DEFAULT]
    )
    assert route.from_rewritten
    assert route.reply_to == ("desk@else.example",)


def test_server_reply_to_fills_an_empty_reply_to():
    with_reply = replace(DEFAULT, reply_to="answers@club.example")
    route = route_decide(sender=None, reply_to=[], servers=[with_reply])
    assert route.from_rewritten
    assert route.reply_to == ("answers@club.example",)
    assert route.reason.startswith("no sender; default server Default; From rewritten")
    club_with_reply = replace(CLUB, reply_to="answers@club.example")
    route = route_decide(sender=sender("a@club.example"), reply_to=[], servers=[club_with_reply])
    assert not route.from_rewritten
    assert route.reply_to == ("answers@club.example",)


def test_servers_own_sender_address_is_not_rewritten():
    route = route_decide(
        sender=sender("Office <NoReply@relay.example>"), reply_to=[], servers=[DEFAULT]
    )
    assert not route.from_rewritten
    assert route.from_header == "Office <NoReply@relay.example>"
    assert route.reply_to == ()


@pytest.mark.parametrize(
    "value",
    ["not an address", "a@b, c@d", "", "<>", "x@", "@x", "x@y\nBcc: z@w", "Jörg <jörg@x.example>"],
)
def test_unparsable_addresses_are_named(value):
    with pytest.raises(InvalidMessage) as raised:
        mailbox_parse(value, field="From")
    assert raised.value.value == value
    assert repr(value) in str(raised.value)


def test_idn_domain_is_encoded_for_the_envelope():
    box = mailbox_parse("Jörg <Joerg@Clüb.Example>", field="To")
    assert box.envelope == "Joerg@xn--clb-ioa.example"
    assert box.normalized == "joerg@xn--clb-ioa.example"
    assert box.display_name == "Jörg"


atext = "abcXYZ09!#$%&'*+/=?^_`{|}~-"
address_texts = st.one_of(
    # Built to look plain, with the odd character that makes them not.
    st.builds(
        "{}{}@{}".format,
        st.one_of(st.just(""), st.text(atext + ' "', min_size=1, max_size=10).map("{} <".format)),
        st.text(atext + '.()"', min_size=1, max_size=10),
        st.text("abcXYZ09-.é", min_size=1, max_size=10),
    ).map(lambda text: text + ">" if " <" in text else text),
    st.text(atext + ' .@<>"()é', max_size=24),
)


@given(address_texts)
def test_a_plain_address_reads_as_the_standard_parser_reads_it(text):
    plain = PLAIN_MAILBOX.fullmatch(text)
    event("plain" if plain else "not plain")
    if plain is None or "=?" in text:
        return
    parts = (plain["name"] or "", plain["local"], plain["domain"])
    assert _mailbox_parts(text) == parts


@pytest.mark.parametrize(
    ("text", "name", "envelope"),
    [
        ("Anna Berg <Anna.Berg@Golf.Example>", "Anna Berg", "Anna.Berg@golf.example"),
        ("o'brien+club@golf.example", "", "o'brien+club@golf.example"),
    ],
)
def test_a_plain_address_is_parsed_without_the_standard_parser(text, name, envelope):
    assert PLAIN_MAILBOX.fullmatch(text)
    box = mailbox_parse(text, field="To")
    assert (box.header, box.display_name, box.envelope) == (text, name, envelope)


# Exhaustive: over random server sets and senders, the choice obeys every rule at once.
labels = st.sampled_from(["a", "b", "c"])
domains = st.sampled_from(["club.example", "mail.club.example", "other.example"])
addresses = st.builds(lambda local, domain: f"{local}@{domain}", labels, domains)


@st.composite
def server_sets(draw):
    count = draw(st.integers(min_value=0, max_value=5))
    default_index = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=4)))
    return [
        ServerOption(
            id=index,
            name=f"s{index}",
            sender_email=f"sender{index}@relay.example",
            filter_addresses=frozenset(draw(st.sets(addresses, max_size=2))),
            filter_domains=frozenset(draw(st.sets(domains, max_size=2))),
            is_default=index == default_index,
            is_active=draw(st.booleans()),
        )
        for index in range(count)
    ]


@given(servers=server_sets(), address=addresses, upper=st.booleans())
def test_choice_obeys_the_rules(servers, address, upper):
    written = address.upper() if upper else address
    box = sender(f"Someone <{written}>")
    active = [server for server in servers if server.is_active]
    exact = [server for server in active if address in server.filter_addresses]
    by_domain = [s for s in active if address.rpartition("@")[2] in s.filter_domains]
    default = [server for server in active if server.is_default]
    try:
        chosen, matched = server_choose(sender=box, servers=servers)
    except NoServerAvailable:
        assert not exact and not by_domain and not default
        return
    assert chosen.is_active
    if exact:
        assert chosen in exact and matched == "address"
    elif by_domain:
        assert chosen in by_domain and matched == "domain"
    else:
        assert chosen.is_default and matched == "default"
    route = route_decide(sender=box, reply_to=[], servers=servers)
    assert route.server_id == chosen.id
    assert route.from_rewritten == (matched == "default")
    local, _, domain = written.rpartition("@")
    expected_envelope = f"{local}@{domain.lower()}"
    assert route.envelope_from == (
        chosen.sender_email if route.from_rewritten else expected_envelope
    )


def test_a_servers_changed_sender_applies_to_the_next_message():
    route = route_decide(sender=None, reply_to=[], servers=[DEFAULT])
    assert route.envelope_from == "noreply@relay.example"
    moved = replace(DEFAULT, sender_email="Desk@Relay.example")
    route = route_decide(sender=None, reply_to=[], servers=[moved])
    assert route.envelope_from == "Desk@relay.example"
    # The server's own address, parsed from the new text, still belongs to it.
    route = route_decide(sender=sender("desk@relay.example"), reply_to=[], servers=[moved])
    assert not route.from_rewritten


def test_an_invalid_server_sender_is_refused_every_time():
    broken = replace(DEFAULT, sender_email="not an address")
    for _attempt in range(2):
        with pytest.raises(InvalidMessage, match="not an address"):
            route_decide(sender=None, reply_to=[], servers=[broken])
