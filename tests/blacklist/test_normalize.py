import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, given
from hypothesis import strategies as st

from blacklist.normalize import address_match_key, normalize_address


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Member@Club.EXAMPLE \n", "member@club.example"),
        ("Jörg@Müller.example", "jörg@xn--mller-kva.example"),
        ("a@xn--MLLER-kva.example", "a@xn--mller-kva.example"),
        ("@Example.ORG", "@example.org"),
        (" @Müller.example", "@xn--mller-kva.example"),
        ("First.Last+News@club.example", "first.last+news@club.example"),
        # Django sends to the IDNA 2003 form of a domain: the entry must block that one.
        ("a@straße.de", "a@strasse.de"),
    ],
)
def test_normal_form(value, expected):
    assert normalize_address(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "no-at-sign.example",
        "member@",
        "@",
        "@@club.example",
        "two@at@club.example",
        "a b@club.example",
        "Name <member@club.example>",
        "member@club..example",
        "member@-club.example",
        "member@club.example\nBcc: other@club.example",
        "jörg\u00a0x@club.example",
        "jörg\uff20x@club.example",
    ],
)
def test_invalid_addresses_are_refused_with_the_value_named(value):
    with pytest.raises(ValidationError) as caught:
        normalize_address(value)
    assert value.strip() in caught.value.messages[0]


@pytest.mark.parametrize("value", ["", "   ", None])
def test_an_empty_value_is_refused(value):
    with pytest.raises(ValidationError, match="empty"):
        normalize_address(value)


def test_the_match_key_does_not_validate_but_normalises_the_same_way():
    assert address_match_key(" Bad..Local@Müller.example ") == "bad..local@xn--mller-kva.example"
    assert address_match_key("no-at-sign") == "no-at-sign"


local_parts = st.from_regex(r"\A[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}[a-zA-Z0-9]\Z")
domains = st.sampled_from(
    ["club.example", "Müller.example", "GOLF.example", "xn--mller-kva.example"]
)


@given(local=local_parts, domain=domains, padding=st.sampled_from(["", " ", "\t", " \n"]))
def test_normalising_is_idempotent_and_ignores_case_and_padding(local, domain, padding):
    assume(".." not in local)
    once = normalize_address(f"{padding}{local}@{domain}{padding}")
    assert normalize_address(once) == once
    assert normalize_address(once.upper()) == once
    assert once == address_match_key(f"{local}@{domain}")
