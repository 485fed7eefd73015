"""CSV import (preview, per-line errors, all or nothing, idempotent) and export, via the admin."""

import csv
import io
import os
import tempfile

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from blacklist.models import BlacklistEntry
from blacklist.resources import BlacklistImportResource, SpreadsheetCSV
from blacklist.services import blacklist_add

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:blacklist_blacklistentry_import")
PROCESS = reverse("admin:blacklist_blacklistentry_process_import")
EXPORT = reverse("admin:blacklist_blacklistentry_export")


def preview(client, content: str, name="members.csv"):
    upload = SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv")
    return client.post(IMPORT, {"format": "0", "import_file": upload})


def confirm(client, preview_response):
    form = preview_response.context["confirm_form"]
    return client.post(PROCESS, {**form.initial, "confirm": "Confirm import"})


def import_file(client, content: str, name="members.csv"):
    response = preview(client, content, name)
    assert response.context.get("confirm_form") is not None, _errors_of(response)
    return confirm(client, response)


def _errors_of(response):
    result = response.context.get("result")
    if result is None:
        return response.context["form"].errors
    return [(row.number, row.error_dict) for row in result.invalid_rows] + [
        str(error.error) for error in result.base_errors
    ]


def bad_lines(response) -> dict[int, list[str]]:
    result = response.context["result"]
    return {
        row.number: [message for messages in row.error_dict.values() for message in messages]
        for row in result.invalid_rows
    }


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_preview_imports_nothing_and_confirming_imports_with_who_and_why(manager_client, manager):
    content = "email,reason,note\nMember@Club.example,privacy,letter\n@Spam.example,complaint,\n"
    response = preview(manager_client, content, "opt-outs.csv")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing has been imported yet" in page
    assert "add 2 addresses" in page
    assert not BlacklistEntry.objects.exists()
    assert not BlacklistEntry.history.exists()

    done = confirm(manager_client, response)
    assert done.status_code == 302
    assert "Import finished: 2 added, 0 changed, 0 unchanged." in messages_of(done)
    member = BlacklistEntry.objects.get(email="member@club.example")
    assert (member.reason, member.note, member.source) == ("privacy", "letter", "import")
    assert (member.source_detail, member.created_by) == ("opt-outs.csv", manager)
    assert BlacklistEntry.objects.get(email="@spam.example").reason == "complaint"
    record = member.history.get()
    assert (record.history_type, record.history_user) == ("+", manager)
    assert record.history_change_reason == "Imported from opt-outs.csv"


def test_every_bad_line_is_listed_with_its_line_number_and_nothing_is_imported(manager_client):
    content = (
        "email,reason,note\n"
        "good@club.example,bounce,\n"
        "not-an-address,bounce,\n"  # line 3
        "\n"  # a blank line still counts for the line numbers
        "other@club.example,dislike,\n"  # line 5
        'multi@club.example,manual,"two\nlines"\n'
        "broken@,spite,\n"  # line 8
    )
    response = preview(manager_client, content)
    assert response.status_code == 200
    assert response.context.get("confirm_form") is None
    lines = bad_lines(response)
    assert sorted(lines) == [3, 5, 8]
    assert lines[3] == ["“not-an-address” is not a valid e-mail address."]
    assert lines[5] == [
        "“dislike” is not a known reason; use one of: manual, privacy, unsubscribe, bounce, "
        "complaint."
    ]
    assert len(lines[8]) == 2
    page = response.content.decode()
    assert "The file was refused: 3 lines are wrong. Nothing was imported." in page
    assert not BlacklistEntry.objects.exists()


# One host, no Redis: the embedded setup, whatever cache the test run was started with.
ONE_HOST_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def test_a_file_that_turns_bad_before_confirmation_imports_nothing(manager_client, settings):
    settings.CACHES = ONE_HOST_CACHE  # the preview's file in a temporary folder
    response = preview(manager_client, "email\na@club.example\nb@club.example\n")
    stored = response.context["confirm_form"].initial["import_file_name"]
    with open(os.path.join(tempfile.gettempdir(), stored), "w") as replaced:
        replaced.write("email\na@club.example\nnot an address\n")
    done = confirm(manager_client, response)
    assert done.status_code == 200
    assert "Nothing was imported." in messages_of(done)
    assert sorted(bad_lines(done)) == [3]
    assert not BlacklistEntry.objects.exists()
    assert not BlacklistEntry.history.exists()


def test_importing_the_same_file_again_changes_nothing(manager_client):
    content = "email,reason,note\nA@club.example,bounce,x\njörg@müller.example,,\n"
    import_file(manager_client, content)
    history = BlacklistEntry.history.count()
    second = preview(manager_client, content)
    assert "importing changes nothing" in second.content.decode()
    done = confirm(manager_client, second)
    assert "Import finished: 0 added, 0 changed, 2 unchanged." in messages_of(done)
    assert BlacklistEntry.history.count() == history
    assert BlacklistEntry.objects.count() == 2


def test_a_listed_address_is_updated_and_its_history_says_by_whom(manager_client, manager):
    entry, _ = blacklist_add(email="member@club.example", reason="bounce", source="provider")
    content = "email,reason,note\nMEMBER@club.example,privacy,asked\n"
    shown = preview(manager_client, content).content.decode()
    assert "Bounced → Data-protection settings" in shown
    assert "change 1 and leave 0 unchanged" in shown
    done = import_file(manager_client, content)
    assert "Import finished: 0 added, 1 changed, 0 unchanged." in messages_of(done)
    entry.refresh_from_db()
    assert (entry.reason, entry.note, entry.source) == ("privacy", "asked", "provider")
    assert entry.updated_by == manager
    latest = entry.history.first()
    assert (latest.history_type, latest.history_user) == ("~", manager)
    assert latest.history_change_reason == "Imported from members.csv"


def test_a_blank_reason_keeps_the_listed_reason(manager_client):
    blacklist_add(email="member@club.example", reason="bounce", source="provider")
    import_file(manager_client, "email,reason\nmember@club.example,\nnew@club.example,\n")
    reasons = dict(BlacklistEntry.objects.values_list("email", "reason"))
    assert reasons == {"member@club.example": "bounce", "new@club.example": "manual"}


def test_spreadsheet_csv_semicolons_capitals_and_byte_order_mark(manager_client):
    content = "\ufeffE-Mail;Email ;Reason\r\nx;Member@Club.example;BOUNCE\r\n"
    import_file(manager_client, content)
    assert BlacklistEntry.objects.get().reason == "bounce"


def test_a_file_without_an_email_column_is_refused_clearly(manager_client):
    response = preview(manager_client, "address,reason\nmember@club.example,bounce\n")
    assert response.context.get("confirm_form") is None
    page = response.content.decode()
    assert "The file has no “email” column (columns found: address, reason)." in page
    assert "Traceback" not in page
    assert not BlacklistEntry.objects.exists()


def test_repeated_addresses_identical_are_skipped_different_are_refused(manager_client):
    same = "email,reason\na@club.example,bounce\nA@CLUB.example,bounce\n"
    done = import_file(manager_client, same)
    assert "Import finished: 1 added, 0 changed, 1 unchanged." in messages_of(done)

    different = (
        "email,reason\nb@club.example,bounce\nc@club.example,bounce\nB@club.example,privacy\n"
    )
    response = preview(manager_client, different)
    assert bad_lines(response) == {
        4: ["This address is already on line 2 of the file, with a different reason or note."]
    }


def test_a_line_with_too_many_cells_is_reported(manager_client):
    response = preview(manager_client, "email,note\na@club.example,one, two\n")
    (messages,) = bad_lines(response).values()
    assert messages == [
        "This line has 3 cells but the header line only 2; put a note that contains the "
        "separator in double quotes."
    ]


def test_ten_thousand_addresses_with_a_few_bad_lines(manager_client):
    rows = [f"member{number}@Club.example,privacy,member {number}" for number in range(10_000)]
    bad = {1234: "member1234@", 5000: "member5000@club.example,spite", 9999: "no address"}
    content_rows = list(rows)
    for index, text in bad.items():
        content_rows[index] = text
    header = "email,reason,note\n"
    response = preview(manager_client, header + "\n".join(content_rows) + "\n", "big.csv")
    assert response.context.get("confirm_form") is None
    # Line numbers of the file: the header is line 1.
    assert sorted(bad_lines(response)) == [index + 2 for index in bad]
    assert not BlacklistEntry.objects.exists()

    fixed = header + "\n".join(rows) + "\n"
    response = preview(manager_client, fixed, "big.csv")
    assert "add 10000 addresses" in response.content.decode().replace("\u202f", "").replace(",", "")
    assert not BlacklistEntry.objects.exists()
    done = confirm(manager_client, response)
    assert "Import finished: 10000 added, 0 changed, 0 unchanged." in messages_of(done)
    assert BlacklistEntry.objects.count() == 10_000
    assert BlacklistEntry.history.filter(history_type="+").count() == 10_000
    assert BlacklistEntry.objects.filter(email="member77@club.example", reason="privacy").exists()

    again = confirm(manager_client, preview(manager_client, fixed, "big.csv"))
    assert "Import finished: 0 added, 0 changed, 10000 unchanged." in messages_of(again)
    assert BlacklistEntry.history.count() == 10_000


def test_export_gives_a_file_that_imports_back_without_changes(manager_client, manager):
    blacklist_add(
        email="jörg@müller.example",
        reason="privacy",
        source="crm",
        note="a, b",
        acting_user=manager,
    )
    blacklist_add(email="@spam.example", reason="complaint", source="staff")
    form = manager_client.get(EXPORT).context["form"]
    every_column = {name: "on" for name in form.fields if name.startswith("blacklistexport")}
    response = manager_client.post(EXPORT, {"format": "0", "resource": "0", **every_column})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="blacklist-' in response["Content-Disposition"]
    assert response.content.startswith("\ufeff".encode())
    content = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert {row["email"]: (row["reason"], row["source"], row["created_by"]) for row in rows} == {
        # A spreadsheet would take a cell starting with @ for a formula.
        "'@spam.example": ("complaint", "staff", ""),
        "jörg@xn--mller-kva.example": ("privacy", "crm", "manon"),
    }
    assert all(row["created_at"] for row in rows)
    history = BlacklistEntry.history.count()
    # The exported file as downloaded, byte order mark included.
    done = import_file(manager_client, response.content.decode("utf-8"), "blacklist.csv")
    assert "Import finished: 0 added, 0 changed, 2 unchanged." in messages_of(done)
    assert BlacklistEntry.history.count() == history


def export_rows(client):
    form = client.get(EXPORT).context["form"]
    every_column = {name: "on" for name in form.fields if name.startswith("blacklistexport")}
    response = client.post(EXPORT, {"format": "0", "resource": "0", **every_column})
    return response, list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_cells_a_spreadsheet_would_run_are_exported_as_text_and_read_back_as_they_were(
    manager_client, manager
):
    formulas = {
        "a@x.example": '=HYPERLINK("http://evil.example","Click")',
        "b@x.example": "+1+1",
        "c@x.example": "-2",
        "d@x.example": "@SUM(1)",
        "e@x.example": "\tTab first",
    }
    for email, note in formulas.items():
        blacklist_add(email=email, reason="manual", source="staff", note=note, acting_user=manager)
    blacklist_add(email="f@x.example", reason="manual", source="staff", note="'kept as typed")
    response, rows = export_rows(manager_client)
    notes = {row["email"]: row["note"] for row in rows}
    assert notes == {
        **{email: f"'{note}" for email, note in formulas.items()},
        "f@x.example": "'kept as typed",
    }
    history = BlacklistEntry.history.count()
    done = import_file(manager_client, response.content.decode("utf-8"), "blacklist.csv")
    assert "Import finished: 0 added, 0 changed, 6 unchanged." in messages_of(done)
    assert BlacklistEntry.history.count() == history
    # A file that a spreadsheet saved with the apostrophes is read the same way.
    done = import_file(manager_client, "email,note\ng@x.example,'=1+1\n")
    assert "Import finished: 1 added, 0 changed, 0 unchanged." in messages_of(done)
    assert BlacklistEntry.objects.get(email="g@x.example").note == "=1+1"


def test_a_preview_file_gone_before_confirmation_asks_for_the_file_again(manager_client, settings):
    settings.CACHES = ONE_HOST_CACHE  # the preview's file in a temporary folder
    response = preview(manager_client, "email\na@club.example\n")
    stored = response.context["confirm_form"].initial["import_file_name"]
    os.remove(os.path.join(tempfile.gettempdir(), stored))
    done = confirm(manager_client, response)
    assert done.status_code == 302 and done["Location"] == IMPORT
    assert "The file of the preview is no longer available; please upload it again." in (
        messages_of(done)
    )
    assert not BlacklistEntry.objects.exists()


REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/13",
        "KEY_PREFIX": "mailadmin-blacklist-tests",
    }
}


def test_scaled_out_the_file_waits_in_the_shared_cache(manager_client, settings):
    settings.CACHES = REDIS_CACHE
    response = preview(manager_client, "email\na@club.example\n")
    stored = response.context["confirm_form"].initial["import_file_name"]
    assert not os.path.exists(os.path.join(tempfile.gettempdir(), stored))
    done = confirm(manager_client, response)
    assert "Import finished: 1 added, 0 changed, 0 unchanged." in messages_of(done)
    # Confirmed once: the file is gone, a second confirmation cannot import it again.
    again = confirm(manager_client, response)
    assert again["Location"] == IMPORT
    assert BlacklistEntry.objects.count() == 1


class ListedMeanwhile(BlacklistImportResource):
    """Another process lists the file's second address just before the batch is written."""

    def before_save_instance(self, instance, row, **kwargs):
        if instance.email == "b@club.example":
            BlacklistEntry.objects.create(email="b@club.example", reason="bounce")


def test_an_address_listed_during_the_import_refuses_the_whole_file(manager):
    dataset = SpreadsheetCSV(encoding="utf-8").create_dataset(
        "email\na@club.example\nb@club.example\nc@club.example\n"
    )
    result = ListedMeanwhile().import_data(
        dataset, dry_run=False, user=manager, rollback_on_validation_errors=True
    )
    assert result.has_errors()
    assert "Nothing was imported; please import the file again." in str(result.base_errors[0].error)
    assert not BlacklistEntry.objects.exists()
    assert not BlacklistEntry.history.exists()


def test_a_windows_spreadsheet_file_is_read_too(manager_client):
    content = (
        "email;reason;note\r\nmember@club.example;privacy;Lettre reçue, Schreiben erhalten\r\n"
    )
    upload = SimpleUploadedFile("excel.csv", content.encode("cp1252"), content_type="text/csv")
    response = manager_client.post(IMPORT, {"format": "0", "import_file": upload})
    confirm(manager_client, response)
    assert BlacklistEntry.objects.get().note == "Lettre reçue, Schreiben erhalten"
