"""Normal forms of filter entries and host names, as pure functions of strings."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpconfig.validation import (
    FromFilterError,
    HostError,
    domain_normalize,
    from_filter_format,
    host_normalize,
    parse_from_filter,
)


def test_entries_are_lower_case_in_order_without_repeats():
    text = "Club.Example, Info@CLUB.example;news.example\n club.example"
    assert parse_from_filter(text) == ["club.example", "info@club.example", "news.example"]


def test_empty_filter_has_no_entries():
    assert parse_from_filter("") == []
    assert parse_from_filter(" , ,") == []


def test_non_ascii_domain_is_stored_in_idna_form():
    assert parse_from_filter("Bücher.example, Post@Golfclub-Münster.example") == [
        "xn--bcher-kva.example",
        "post@xn--golfclub-mnster-8vb.example",
    ]


def test_trailing_dot_of_a_domain_is_dropped():
    assert parse_from_filter("club.example.") == ["club.example"]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("club.example, not a domain", "not"),
        ("clubexample", "clubexample"),
        ("-club.example", "-club.example"),
        ("club..example", "club..example"),
        ("club.example, @club.example", "@club.example"),
        ("a(b)@club.example", "a(b)@club.example"),
        ("office@club", "office@club"),
        ("office@192.168.1.1", "office@192.168.1.1"),
        ("<office@club.example>", "<office@club.example>"),
    ],
)
def test_first_bad_entry_is_named(text, bad):
    with pytest.raises(FromFilterError) as error:
        parse_from_filter(text)
    assert error.value.entry == bad
    assert bad in str(error.value)


def test_format_joins_entries():
    assert from_filter_format(["club.example", "info@club.example"]) == (
        "club.example, info@club.example"
    )


def test_domain_of_more_than_253_characters_is_refused():
    assert domain_normalize(("a" * 60 + ".") * 5 + "example") is None


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("SMTP.Office365.com", "smtp.office365.com"),
        ("localhost", "localhost"),
        (" 127.0.0.1 ", "127.0.0.1"),
        ("[::1]", "::1"),
        ("smtp.münster.example", "smtp.xn--mnster-3ya.example"),
    ],
)
def test_host_normal_form(host, stored):
    assert host_normalize(host) == stored


@pytest.mark.parametrize(
    "host",
    ["smtp://mail.example", "mail.example:587", "mail example", "", "-mail.example", "1.2.3.999"],
)
def test_host_refused(host):
    with pytest.raises(HostError) as error:
        host_normalize(host)
    assert error.value.host == host


# Valid entries as people type them: any case, a domain or a dot-atom address.
LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(LABEL, min_size=1, max_size=3),
    st.sampled_from(["example", "org", "de", "fr"]),
)
ENTRY = st.one_of(
    DOMAIN,
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.from_regex(r"[A-Za-z0-9+-]{1,6}(\.[A-Za-z0-9_+-]{1,6}){0,2}", fullmatch=True),
        DOMAIN,
    ),
)


@given(st.lists(ENTRY, max_size=6), st.sampled_from([",", ", ", ";", "\n", " "]))
def test_stored_form_parses_back_to_itself(entries, separator):
    parsed = parse_from_filter(separator.join(entries))

    assert parse_from_filter(from_filter_format(parsed)) == parsed
    assert parsed == list(dict.fromkeys(entry.lower() for entry in entries))
    assert parse_from_filter(separator.join(entries).upper()) == parsed
