import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from blacklist.models import BlacklistEntry
from blacklist.normalize import normalize_address
from blacklist.selectors import KEYS_PER_QUERY, blacklist_blocked, blacklist_entry_get

pytestmark = pytest.mark.django_db


def listed(*emails):
    return {
        email: BlacklistEntry.objects.create(email=normalize_address(email)) for email in emails
    }


def test_one_query_finds_exact_and_domain_entries_together(django_assert_num_queries):
    entries = listed("member@club.example", "@spam.example", "jörg@müller.example")
    addresses = [
        "Member@Club.EXAMPLE",
        "  member@club.example ",
        "anyone@SPAM.example",
        "Jörg@Müller.example",
        "jörg@xn--mller-kva.example",
        "free@club.example",
    ]
    with django_assert_num_queries(1):
        blocked = blacklist_blocked(addresses=addresses)
        # The entry's creator comes with the same query (the backend records who blocked).
        assert all(entry.created_by is None for entry in blocked.values())
    assert blocked == {
        "Member@Club.EXAMPLE": entries["member@club.example"],
        "  member@club.example ": entries["member@club.example"],
        "anyone@SPAM.example": entries["@spam.example"],
        "Jörg@Müller.example": entries["jörg@müller.example"],
        "jörg@xn--mller-kva.example": entries["jörg@müller.example"],
    }


def test_many_addresses_are_read_in_a_few_queries_of_bounded_size():
    # 1,200 addresses and their domain: three queries of at most 500 keys (sent together,
    # in one round trip, on PostgreSQL); an entry in each, and a domain entry that sorts
    # after every address.
    addresses = [f"member{number:04}@golf.example" for number in range(1200)]
    entries = listed("member0000@golf.example", "member0700@golf.example", "@golf.example")
    with CaptureQueriesContext(connection) as queries:
        blocked = blacklist_blocked(addresses=addresses)
    sent = [query["sql"] for query in queries.captured_queries]
    statements = [part for sql in sent for part in sql.split("; ")]
    assert len(sent) == (1 if connection.vendor == "postgresql" else 3)
    assert len(statements) == 3
    keys = [statement.split(" IN (")[1].split(")")[0].split(", ") for statement in statements]
    assert [len(chunk) for chunk in keys] == [KEYS_PER_QUERY, KEYS_PER_QUERY, 201]
    assert blocked["member0000@golf.example"] == entries["member0000@golf.example"]
    assert blocked["member0700@golf.example"] == entries["member0700@golf.example"]
    assert blocked["member1199@golf.example"] == entries["@golf.example"]
    assert len(blocked) == 1200


def test_a_plus_address_is_blocked_only_when_listed_exactly():
    entries = listed("member@club.example", "other+news@club.example")
    blocked = blacklist_blocked(
        addresses=["member+news@club.example", "other+news@club.example", "other@club.example"]
    )
    assert blocked == {"other+news@club.example": entries["other+news@club.example"]}


def test_an_exact_entry_wins_over_its_domain_entry():
    entries = listed("member@club.example", "@club.example")
    blocked = blacklist_blocked(addresses=["member@club.example", "someone@club.example"])
    assert blocked["member@club.example"] == entries["member@club.example"]
    assert blocked["someone@club.example"] == entries["@club.example"]


def test_a_domain_entry_does_not_block_subdomains_or_lookalikes():
    listed("@club.example")
    assert (
        blacklist_blocked(
            addresses=["a@mail.club.example", "a@club.example.org", "a@myclub.example"]
        )
        == {}
    )


def test_a_malformed_recipient_in_a_blocked_domain_is_still_found():
    entries = listed("@spam.example")
    assert blacklist_blocked(addresses=["Bad..Local@Spam.example", "no-at-sign"]) == {
        "Bad..Local@Spam.example": entries["@spam.example"]
    }


def test_no_addresses_costs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert blacklist_blocked(addresses=[]) == {}


def test_entry_get_finds_any_spelling_and_ignores_non_addresses():
    entries = listed("jörg@müller.example")
    assert blacklist_entry_get(email=" JÖRG@MÜLLER.example") == entries["jörg@müller.example"]
    assert blacklist_entry_get(email="other@müller.example") is None
    assert blacklist_entry_get(email="not an address") is None
