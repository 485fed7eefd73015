import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from blacklist import services
from blacklist.models import BlacklistEntry
from blacklist.services import (
    BlacklistConflict,
    blacklist_add,
    blacklist_change,
    blacklist_entry_explain,
    blacklist_privacy_opt_out,
    blacklist_remove,
)

pytestmark = pytest.mark.django_db

Reason = BlacklistEntry.Reason
Source = BlacklistEntry.Source


def add(email="Member@Club.example", **kwargs):
    kwargs.setdefault("reason", Reason.MANUAL)
    kwargs.setdefault("source", Source.STAFF)
    return blacklist_add(email=email, **kwargs)


def test_add_stores_the_normal_form_and_records_who_and_why(manager):
    entry, created = add(" Jörg@Müller.example ", note="asked by phone", acting_user=manager)
    assert created
    entry.refresh_from_db()
    assert entry.email == "jörg@xn--mller-kva.example"
    assert (entry.reason, entry.source, entry.note) == ("manual", "staff", "asked by phone")
    assert entry.created_by == manager and entry.updated_by == manager
    (record,) = entry.history.all()
    assert record.history_type == "+"
    assert record.history_user == manager
    assert record.history_change_reason == "Added by hand (Staff)"


def test_a_whole_domain_is_listed_with_a_leading_at_sign():
    entry, created = add("@Spam.EXAMPLE", reason=Reason.COMPLAINT)
    assert created and entry.email == "@spam.example" and entry.is_domain


def test_adding_a_listed_address_returns_the_existing_entry_and_writes_nothing(manager):
    first, _ = add("member@club.example", reason=Reason.BOUNCE, acting_user=manager)
    again, created = add("  MEMBER@club.EXAMPLE", reason=Reason.PRIVACY, source=Source.CRM)
    assert not created
    assert again == first
    again.refresh_from_db()
    assert again.reason == "bounce"
    assert BlacklistEntry.objects.count() == 1
    assert first.history.count() == 1
    message = blacklist_entry_explain(entry=again)
    assert "member@club.example" in message
    assert "is already on the blacklist since" in message
    assert "Bounced" in message and "manon" in message


def test_adding_during_a_concurrent_insert_returns_the_winner_instead_of_crashing(monkeypatch):
    """Another process lists the address between our look-up and our insert."""
    real_get = services.blacklist_entry_get
    calls = []

    def look_up_then_lose_the_race(*, email):
        calls.append(email)
        if len(calls) == 1:
            BlacklistEntry.objects.create(email=email, reason=Reason.BOUNCE)
            return None
        return real_get(email=email)

    monkeypatch.setattr(services, "blacklist_entry_get", look_up_then_lose_the_race)
    with transaction.atomic():
        entry, created = add("member@club.example")
        # The caller's transaction is still usable after the refused insert.
        assert BlacklistEntry.objects.count() == 1
    assert not created
    assert entry.reason == "bounce"


def test_the_database_refuses_a_second_entry_for_one_address():
    BlacklistEntry.objects.create(email="member@club.example")
    with pytest.raises(IntegrityError), transaction.atomic():
        BlacklistEntry.objects.create(email="member@club.example")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"email": "not-an-address"}, None),
        ({"email": "a@club.example", "reason": "dislike"}, "reason"),
        ({"email": "a@club.example", "source": "fax"}, "source"),
    ],
)
def test_add_refuses_bad_values_and_writes_nothing(kwargs, field):
    with pytest.raises(ValidationError) as caught:
        add(**kwargs)
    if field:
        assert "is not a known" in caught.value.message_dict[field][0]
    assert not BlacklistEntry.objects.exists()


def test_the_crm_opt_out_lists_the_address_for_privacy():
    entry, created = blacklist_privacy_opt_out(email="Member@Club.example", note="member 4711")
    assert created
    assert (entry.email, entry.reason, entry.source) == ("member@club.example", "privacy", "crm")
    assert entry.note == "member 4711"


def test_the_crm_opt_out_leaves_an_entry_of_another_reason_alone():
    bounce, _ = add("member@club.example", reason=Reason.BOUNCE, source=Source.PROVIDER)
    entry, created = blacklist_privacy_opt_out(email="member@club.example")
    assert not created and entry == bounce
    entry.refresh_from_db()
    assert (entry.reason, entry.source) == ("bounce", "provider")


def test_change_records_who_why_and_the_difference(manager, plain_staff):
    entry, _ = add("member@club.example", acting_user=plain_staff)
    blacklist_change(
        entry=entry,
        acting_user=manager,
        change_reason="member wrote to the office",
        reason=Reason.PRIVACY,
        note="letter of 3 May",
        email="Member@Club.example",
    )
    entry.refresh_from_db()
    assert (entry.reason, entry.note, entry.updated_by) == ("privacy", "letter of 3 May", manager)
    assert entry.created_by == plain_staff
    latest, first = entry.history.all()[:2]
    assert latest.history_user == manager
    assert latest.history_change_reason == "member wrote to the office"
    delta = latest.diff_against(first)
    assert set(delta.changed_fields) >= {"reason", "note", "updated_by"}
    assert "email" not in delta.changed_fields


def test_change_without_a_reason_names_the_changed_fields(manager):
    entry, _ = add("member@club.example")
    blacklist_change(entry=entry, acting_user=manager, note="n")
    assert entry.history.first().history_change_reason == "Changed: note"


def test_a_change_that_changes_nothing_writes_nothing():
    entry, _ = add("member@club.example", note="x")
    blacklist_change(entry=entry, note="x", email=" MEMBER@club.example")
    assert entry.history.count() == 1


def test_change_to_an_address_listed_elsewhere_is_refused_and_keeps_both(manager):
    other, _ = add("other@club.example", acting_user=manager)
    entry, _ = add("member@club.example")
    with pytest.raises(BlacklistConflict) as caught:
        blacklist_change(entry=entry, email="Other@club.example")
    assert caught.value.entry == other
    assert "“other@club.example” is already on the blacklist" in caught.value.messages[0]
    assert BlacklistEntry.objects.get(pk=entry.pk).email == "member@club.example"
    assert entry.history.count() == 1


def test_change_refuses_bad_values_and_unknown_fields():
    entry, _ = add("member@club.example")
    with pytest.raises(ValidationError):
        blacklist_change(entry=entry, email="nobody")
    with pytest.raises(ValidationError):
        blacklist_change(entry=entry, reason="dislike")
    with pytest.raises(TypeError):
        blacklist_change(entry=entry, created_by=None)
    assert BlacklistEntry.objects.get(pk=entry.pk).email == "member@club.example"


def test_remove_keeps_who_when_and_why_in_the_history(manager):
    entry, _ = add("member@club.example")
    entry_id = entry.pk
    blacklist_remove(entry=entry, acting_user=manager, change_reason="member consented again")
    assert not BlacklistEntry.objects.exists()
    record = BlacklistEntry.history.filter(id=entry_id).first()
    assert record.history_type == "-"
    assert record.history_user == manager
    assert record.history_change_reason == "member consented again"
    assert record.email == "member@club.example"


def test_remove_and_add_again_gives_a_fresh_entry():
    entry, _ = add("member@club.example", reason=Reason.BOUNCE)
    blacklist_remove(entry=entry)
    again, created = add("member@club.example", reason=Reason.PRIVACY)
    assert created and again.reason == "privacy"


def test_a_long_reason_is_cut_to_the_history_column():
    entry, _ = add("member@club.example")
    blacklist_change(entry=entry, note="n", change_reason="x" * 300)
    assert len(entry.history.first().history_change_reason) == 100
