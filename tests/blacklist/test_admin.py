"""The managers' admin pages, driven through Django's test client."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from blacklist.models import BlacklistEntry
from blacklist.services import blacklist_add, blacklist_change

pytestmark = pytest.mark.django_db

Reason = BlacklistEntry.Reason
Source = BlacklistEntry.Source
CHANGELIST = reverse("admin:blacklist_blacklistentry_changelist")
ADD = reverse("admin:blacklist_blacklistentry_add")
HISTORY_CHANGELIST = reverse("admin:blacklist_historicalblacklistentry_changelist")


def add(email, **kwargs):
    kwargs.setdefault("reason", Reason.MANUAL)
    kwargs.setdefault("source", Source.STAFF)
    return blacklist_add(email=email, **kwargs)[0]


def change_url(entry):
    return reverse("admin:blacklist_blacklistentry_change", args=[entry.pk])


def listed_on(response):
    return [entry.email for entry in response.context["cl"].result_list]


def test_the_list_shows_reason_source_creator_and_date(manager_client, manager):
    add("member@club.example", reason=Reason.BOUNCE, source=Source.PROVIDER, acting_user=manager)
    response = manager_client.get(CHANGELIST)
    assert response.status_code == 200
    row = response.content.decode()
    for text in ("member@club.example", "Bounced", "E-mail service event", "manon"):
        assert text in row


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("member@club.example", ["@club.example", "member@club.example"]),
        ("MEMBER@Club.Example ", ["@club.example", "member@club.example"]),
        ("Jörg@Müller.example", ["jörg@xn--mller-kva.example"]),
        ("müller.example", ["jörg@xn--mller-kva.example"]),
        ("letter", ["member@club.example"]),
        ("club.example", ["@club.example", "member@club.example"]),
    ],
)
def test_search_finds_an_address_in_any_spelling_and_by_note(manager_client, query, found):
    add("member@club.example", note="letter of 3 May")
    add("@club.example")
    add("jörg@müller.example")
    add("other@elsewhere.example")
    response = manager_client.get(CHANGELIST, {"q": query})
    assert sorted(listed_on(response)) == found


def test_search_keeps_the_filters(manager_client):
    add("member@club.example", reason=Reason.BOUNCE)
    add("@club.example", reason=Reason.COMPLAINT)
    response = manager_client.get(CHANGELIST, {"q": "member@club.example", "reason": "bounce"})
    assert listed_on(response) == ["member@club.example"]


def test_filters_by_reason_source_and_created_date(manager_client):
    add("a@club.example", reason=Reason.BOUNCE, source=Source.PROVIDER)
    add("b@club.example", reason=Reason.PRIVACY, source=Source.CRM)
    assert listed_on(manager_client.get(CHANGELIST, {"reason": "privacy"})) == ["b@club.example"]
    assert listed_on(manager_client.get(CHANGELIST, {"source": "provider"})) == ["a@club.example"]
    response = manager_client.get(CHANGELIST)
    filters = response.content.decode()
    assert "created__gte" in filters or "created_at__gte" in filters
    BlacklistEntry.objects.filter(email="a@club.example").update(created_at="2020-01-01T00:00Z")
    recent = manager_client.get(CHANGELIST, {"created_at__gte": "2025-01-01 00:00:00+00:00"})
    assert listed_on(recent) == ["b@club.example"]


def test_adding_by_hand_goes_through_the_service(manager_client, manager):
    response = manager_client.post(
        ADD, {"email": " Jörg@Müller.example ", "reason": "privacy", "note": "phoned"}
    )
    assert response.status_code == 302
    entry = BlacklistEntry.objects.get()
    assert entry.email == "jörg@xn--mller-kva.example"
    assert (entry.reason, entry.source, entry.created_by) == ("privacy", "staff", manager)
    record = entry.history.get()
    assert record.history_user == manager
    assert record.history_change_reason == "Data-protection settings (Staff)"


def test_adding_a_listed_address_says_since_when_and_why(manager_client, plain_staff):
    existing = add("member@club.example", reason=Reason.BOUNCE, acting_user=plain_staff)
    response = manager_client.post(ADD, {"email": "MEMBER@club.example", "reason": "manual"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["email"]
    assert "“member@club.example” is already on the blacklist since" in errors[0]
    assert "Bounced" in errors[0] and "stefan" in errors[0]
    assert change_url(existing) in errors[0]
    assert BlacklistEntry.objects.count() == 1


def test_an_invalid_address_is_refused_by_name(manager_client):
    response = manager_client.post(ADD, {"email": "member@", "reason": "manual"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "“member@” is not a valid e-mail address."
    ]
    assert not BlacklistEntry.objects.exists()


def test_editing_records_who_why_and_the_difference_in_the_history(manager_client, manager):
    entry = add("member@club.example", reason=Reason.BOUNCE)
    response = manager_client.post(
        change_url(entry),
        {
            "email": "member@club.example",
            "reason": "privacy",
            "note": "asked in writing",
            "change_reason": "letter of 3 May",
        },
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.reason, entry.note, entry.updated_by) == ("privacy", "asked in writing", manager)
    assert entry.source == "staff"
    latest = entry.history.first()
    assert (latest.history_user, latest.history_change_reason) == (manager, "letter of 3 May")

    history = manager_client.get(reverse("admin:blacklist_blacklistentry_history", args=[entry.pk]))
    assert history.status_code == 200
    page = history.content.decode()
    assert "letter of 3 May" in page and "manon" in page
    # The difference, before and after.
    changes = page[page.index("<strong>Reason:</strong>") :]
    assert changes.index("Bounced") < changes.index("Data-protection settings")
    assert "<strong>Note:</strong>" in page and "asked in writing" in page


def test_editing_to_an_address_listed_elsewhere_is_refused(manager_client):
    other = add("other@club.example")
    entry = add("member@club.example")
    response = manager_client.post(
        change_url(entry), {"email": "OTHER@club.example", "reason": "manual", "note": ""}
    )
    assert response.status_code == 200
    assert change_url(other) in response.context["adminform"].form.errors["email"][0]
    entry.refresh_from_db()
    assert entry.email == "member@club.example"


def test_removing_asks_first_then_records_who_and_why(manager_client, manager):
    entry = add("member@club.example")
    url = reverse("admin:blacklist_blacklistentry_delete", args=[entry.pk])
    confirm = manager_client.get(url)
    assert confirm.status_code == 200
    assert 'name="change_reason"' in confirm.content.decode()
    assert BlacklistEntry.objects.exists()
    response = manager_client.post(url, {"post": "yes", "change_reason": "consented again"})
    assert response.status_code == 302
    assert not BlacklistEntry.objects.exists()
    record = BlacklistEntry.history.filter(id=entry.pk).first()
    assert (record.history_type, record.history_user) == ("-", manager)
    assert record.history_change_reason == "consented again"


def test_bulk_removal_asks_for_confirmation_and_removes_only_the_selected(manager_client, manager):
    chosen = [add("a@club.example"), add("b@club.example")]
    kept = add("c@club.example")
    selection = {"action": "delete_selected", "_selected_action": [e.pk for e in chosen]}
    confirm = manager_client.post(CHANGELIST, selection)
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "a@club.example" in page and "b@club.example" in page
    assert BlacklistEntry.objects.count() == 3
    response = manager_client.post(
        CHANGELIST, {**selection, "post": "yes", "change_reason": "cleaned up"}
    )
    assert response.status_code == 302
    assert list(BlacklistEntry.objects.all()) == [kept]
    removed = BlacklistEntry.history.filter(history_type="-")
    assert {(r.email, r.history_user, r.history_change_reason) for r in removed} == {
        ("a@club.example", manager, "cleaned up"),
        ("b@club.example", manager, "cleaned up"),
    }


def test_remove_and_add_again_from_the_admin(manager_client):
    entry = add("member@club.example", reason=Reason.BOUNCE)
    manager_client.post(
        reverse("admin:blacklist_blacklistentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    response = manager_client.post(ADD, {"email": "member@club.example", "reason": "manual"})
    assert response.status_code == 302
    assert BlacklistEntry.objects.get().reason == "manual"


def test_the_history_page_lists_every_change_including_removed_entries(manager_client, manager):
    entry = add("member@club.example", reason=Reason.BOUNCE, acting_user=manager)
    blacklist_change(entry=entry, reason=Reason.PRIVACY, acting_user=manager, change_reason="why")
    entry_id = entry.pk
    entry.delete()
    response = manager_client.get(HISTORY_CHANGELIST, {"q": "member@club.example"})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("member@club.example") >= 3
    assert "Reason: Bounced → Data-protection settings" in page
    assert "why" in page
    # A removed entry's own history page still opens.
    own = manager_client.get(reverse("admin:blacklist_blacklistentry_history", args=[entry_id]))
    assert own.status_code == 200


def test_the_history_trail_is_read_only(manager_client):
    add("member@club.example")
    record = BlacklistEntry.history.get()
    url = reverse("admin:blacklist_historicalblacklistentry_change", args=[record.pk])
    assert manager_client.get(url).status_code == 200
    manager_client.post(url, {"email": "changed@club.example"})
    record.refresh_from_db()
    assert record.email == "member@club.example"
    assert (
        manager_client.get(
            reverse("admin:blacklist_historicalblacklistentry_delete", args=[record.pk])
        ).status_code
        == 403
    )


def blacklist_pages(entry, record):
    return {
        "changelist": CHANGELIST,
        "add": ADD,
        "change": change_url(entry),
        "delete": reverse("admin:blacklist_blacklistentry_delete", args=[entry.pk]),
        "history": reverse("admin:blacklist_blacklistentry_history", args=[entry.pk]),
        "history record": reverse(
            "admin:blacklist_blacklistentry_simple_history", args=[entry.pk, record.pk]
        ),
        "import": reverse("admin:blacklist_blacklistentry_import"),
        "export": reverse("admin:blacklist_blacklistentry_export"),
        "history trail": HISTORY_CHANGELIST,
        "history trail record": reverse(
            "admin:blacklist_historicalblacklistentry_change", args=[record.pk]
        ),
    }


@pytest.mark.parametrize("method", ["get", "post"])
def test_staff_without_the_blacklist_permissions_get_403_everywhere(client, plain_staff, method):
    entry = add("member@club.example")
    client.force_login(plain_staff)
    for name, url in blacklist_pages(entry, entry.history.get()).items():
        if method == "post" and name in ("history", "history trail"):
            continue
        response = getattr(client, method)(url)
        assert response.status_code == 403, name
    process = client.post(reverse("admin:blacklist_blacklistentry_process_import"))
    assert process.status_code == 403
    assert BlacklistEntry.objects.get() == entry


def test_a_manager_opens_every_blacklist_page(manager_client):
    entry = add("member@club.example")
    for name, url in blacklist_pages(entry, entry.history.get()).items():
        assert manager_client.get(url).status_code == 200, name


def test_view_only_staff_can_read_but_neither_import_nor_change(client, plain_staff):
    plain_staff.user_permissions.add(Permission.objects.get(codename="view_blacklistentry"))
    client.force_login(plain_staff)
    entry = add("member@club.example")
    assert client.get(CHANGELIST).status_code == 200
    assert client.get(reverse("admin:blacklist_blacklistentry_export")).status_code == 200
    assert client.get(reverse("admin:blacklist_blacklistentry_import")).status_code == 403
    assert client.get(ADD).status_code == 403
    client.post(change_url(entry), {"email": "x@club.example", "reason": "manual", "note": ""})
    entry.refresh_from_db()
    assert entry.email == "member@club.example"


def test_the_success_message_after_adding(manager_client):
    response = manager_client.post(ADD, {"email": "member@club.example", "reason": "manual"})
    assert any("was added successfully" in str(m) for m in get_messages(response.wsgi_request))


def test_a_change_racing_another_manager_is_refused_with_a_message(manager_client, monkeypatch):
    """The form found the new address free; another manager lists it just before the save."""
    entry = add("member@club.example")

    def listed_just_before(**kwargs):
        BlacklistEntry.objects.create(email="new@club.example", reason=Reason.BOUNCE)
        return blacklist_change(**kwargs)

    monkeypatch.setattr("blacklist.admin.blacklist_change", listed_just_before)
    response = manager_client.post(
        change_url(entry), {"email": "New@club.example", "reason": "manual", "note": ""}
    )
    assert response.status_code == 302
    assert response["Location"] == change_url(entry)
    assert any(
        "“new@club.example” is already on the blacklist" in str(m)
        for m in get_messages(response.wsgi_request)
    )
    entry.refresh_from_db()
    assert entry.email == "member@club.example"


def test_an_add_racing_another_manager_shows_their_entry(manager_client, monkeypatch):
    """The form found the address free; another manager lists it just before the save."""

    def listed_just_before(**kwargs):
        blacklist_add(email="member@club.example", reason=Reason.BOUNCE, source=Source.STAFF)
        return blacklist_add(**kwargs)

    monkeypatch.setattr("blacklist.admin.blacklist_add", listed_just_before)
    response = manager_client.post(ADD, {"email": "member@club.example", "reason": "manual"})
    entry = BlacklistEntry.objects.get()
    assert entry.reason == "bounce"
    assert response.status_code == 302 and response["Location"] == change_url(entry)
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("is already on the blacklist" in message for message in shown)
    assert not any("added successfully" in message for message in shown)
