"""French and German: complete catalogues, compiled as committed, and pages that speak them."""

import gettext
import os
import runpy
import shutil
import subprocess
import sys

import pytest
from django.conf import settings
from django.urls import reverse

CHECK = settings.BASE_DIR / "scripts" / "check-translations"
LOCALE = settings.BASE_DIR / "locale"
po = runpy.run_path(str(CHECK))


def test_french_and_german_have_no_untranslated_or_fuzzy_message():
    result = subprocess.run(
        [sys.executable, str(CHECK), "fr", "de"], capture_output=True, text=True, check=False
    )
    assert result.stdout == ""
    assert result.returncode == 0


@pytest.mark.parametrize("language", ["fr", "de"])
def test_the_committed_mo_file_holds_every_translation_of_the_po_file(language):
    directory = LOCALE / language / "LC_MESSAGES"
    with (directory / "django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    for entry in po["po_entries"](directory / "django.po"):
        if entry.msgid_plural:
            found = (
                catalog.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 2)
                if (entry.msgctxt)
                else catalog.ngettext(entry.msgid, entry.msgid_plural, 2)
            )
            assert found == entry.msgstr[1], entry.msgid
        elif entry.msgctxt:
            assert catalog.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr[0]
        else:
            assert catalog.gettext(entry.msgid) == entry.msgstr[0], entry.msgid


# What `make messages` leaves out of the catalogues (Makefile), and what else need not be
# copied: makemessages reads every file of the copy.
_NOT_SCANNED = {".venv", ".git", "var", "tests", "bench", "test-artifacts", "node_modules"}


@pytest.mark.skipif(
    shutil.which("xgettext") is None, reason="GNU gettext is not installed (.ci/run installs it)"
)
def test_every_translatable_text_of_the_code_is_in_the_catalogues(tmp_path):
    # The committed catalogues only tell about the entries they hold: a text added to the
    # code without `make messages` is missing from them, not untranslated. So the
    # catalogues are made again from a copy of the code, and checked there.
    copy = tmp_path / "project"
    shutil.copytree(
        settings.BASE_DIR, copy, ignore=lambda _folder, names: _NOT_SCANNED.intersection(names)
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "-l", "de"],
        cwd=copy,
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "mailadmin.settings"},
        capture_output=True,
        check=True,
    )
    result = subprocess.run(
        [sys.executable, str(copy / "scripts" / "check-translations"), "fr", "de"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout == ""


def test_the_check_finds_untranslated_and_fuzzy_entries(tmp_path):
    catalogue = tmp_path / "django.po"
    catalogue.write_text(
        'msgid ""\nmsgstr ""\n"Language: fr\\n"\n\n'
        'msgid "Dashboard"\nmsgstr "Tableau de bord"\n\n'
        '#, fuzzy\nmsgid "Outbox"\nmsgstr "Boîte"\n\n'
        'msgid "Sent"\nmsgstr ""\n\n'
        'msgid "%(n)s message"\nmsgid_plural "%(n)s messages"\n'
        'msgstr[0] "%(n)s message"\nmsgstr[1] ""\n',
        encoding="utf-8",
    )
    entries = {entry.msgid: entry for entry in po["po_entries"](catalogue)}
    assert not entries["Dashboard"].untranslated
    assert "fuzzy" in entries["Outbox"].flags
    assert entries["Sent"].untranslated
    assert entries["%(n)s message"].untranslated


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", ["Tableau de bord", "Boîte d'envoi", "14 derniers jours", "Vérification de"]),
        ("de", ["Übersicht", "Postausgang", "Letzte 14 Tage", "Routing-Prüfung"]),
    ],
)
def test_the_dashboard_follows_the_browser_language(client, club_staff, language, expected):
    client.force_login(club_staff)
    response = client.get(reverse("admin:index"), headers={"accept-language": language})
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{language}"' in page
    for text in expected:
        assert text in page
    assert "Last 14 days" not in page
