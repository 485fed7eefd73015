"""CSV import and export of the blacklist (django-import-export).

The import is all or nothing: every bad line is reported with its line number and reason,
and one bad line refuses the whole file. Rows are matched to entries by the normal form of
their address, and unchanged rows are skipped, so importing the same file twice changes
nothing. Writes go through ``blacklist.services.blacklist_import`` in batches.

The export writes a cell that a spreadsheet would run as a formula after an apostrophe
(``FORMULA_STARTS``), and the import reads it back as it was.
"""

import csv
import io

import tablib
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets
from import_export.formats.base_formats import CSV
from import_export.instance_loaders import BaseInstanceLoader

from blacklist.models import BlacklistEntry
from blacklist.normalize import address_match_key, normalize_address
from blacklist.services import blacklist_import

EMAIL_COLUMN = "email"
# Existing entries are looked up in chunks: one IN list per chunk stays far below the
# databases' limits on query parameters, whatever the size of the file.
LOOKUP_CHUNK = 500
# The preview shows the first rows that add or change an entry, and counts the rest.
PREVIEW_ROWS = 200
# What makes a spreadsheet run a cell as a formula (a note, or a bounce reason a remote server
# wrote, could start so): the export writes such a cell after an apostrophe, which shows it as
# text, and the import takes the apostrophe off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell_as_text(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _cell_read(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


class ImportRefused(Exception):
    """The file as a whole cannot be imported (its message is shown to the user)."""


class SpreadsheetCSV(CSV):
    """CSV as spreadsheets write it: UTF-8 or Windows-1252, comma, semicolon or tab separated.

    The dataset also carries the physical line where each record starts (blank lines and
    quoted line breaks included), so errors name the line a text editor shows, and the
    records with more cells than the header line, which are reported instead of refusing to
    read the file.
    """

    def is_binary(self):
        # Read as bytes, so the encoding is chosen here rather than by the upload.
        return True

    def get_read_mode(self):
        return "rb"

    def export_data(self, dataset, **kwargs):
        as_text = tablib.Dataset(headers=dataset.headers)
        for row in dataset:
            as_text.append([_cell_as_text(cell) for cell in row])
        # The byte order mark makes Excel open the UTF-8 file with its accents intact.
        return "\ufeff" + super().export_data(as_text, **kwargs)

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            try:
                in_stream = in_stream.decode("utf-8-sig")
            except UnicodeDecodeError:
                # What Excel writes for "CSV" on French and German Windows.
                in_stream = in_stream.decode("cp1252", errors="replace")
        header_line = in_stream.split("\n", 1)[0]
        # French and German spreadsheets separate with ";" because "," is the decimal mark.
        delimiter = max(",;\t", key=header_line.count)
        reader = csv.reader(io.StringIO(in_stream, newline=""), delimiter=delimiter)
        dataset = tablib.Dataset()
        dataset.line_numbers = []
        dataset.overlong_rows = {}
        start = 1
        for cells in reader:
            if not dataset.headers:
                dataset.headers = cells
            elif any(cell.strip() for cell in cells):
                width = len(dataset.headers)
                if len(cells) > width:
                    dataset.overlong_rows[len(dataset)] = len(cells)
                dataset.append([_cell_read(cell) for cell in (cells + [""] * width)[:width]])
                dataset.line_numbers.append(start)
            start = reader.line_num + 1
        return dataset


class AddressWidget(widgets.CharWidget):
    def clean(self, value, row=None, **kwargs):
        try:
            return normalize_address(force_str(value) if value is not None else "")
        except ValidationError as error:
            raise ValueError(error.messages[0]) from None


class ReasonWidget(widgets.CharWidget):
    """A reason code; a blank cell keeps the entry's reason (``manual`` for a new one)."""

    def clean(self, value, row=None, **kwargs):
        code = force_str(value if value is not None else "").strip().lower()
        if not code:
            return None
        if code not in BlacklistEntry.Reason.values:
            raise ValueError(
                _("“%(value)s” is not a known reason; use one of: %(choices)s.")
                % {
                    "value": force_str(value).strip(),
                    "choices": ", ".join(BlacklistEntry.Reason.values),
                }
            )
        return code


class AddressInstanceLoader(BaseInstanceLoader):
    """Finds the existing entries of the whole file at once, by the normal form of the address."""

    def __init__(self, resource, dataset=None):
        super().__init__(resource, dataset)
        keys = []
        if dataset is not None and EMAIL_COLUMN in (dataset.headers or []):
            keys = sorted({address_match_key(force_str(value)) for value in dataset[EMAIL_COLUMN]})
        self.entries = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            for entry in BlacklistEntry.objects.filter(
                email__in=keys[start : start + LOOKUP_CHUNK]
            ):
                self.entries[entry.email] = entry

    def get_instance(self, row):
        return self.entries.get(address_match_key(force_str(row.get(EMAIL_COLUMN))))


class BlacklistImportResource(resources.ModelResource):
    """Columns ``email`` (required), ``reason`` and ``note``; other columns are ignored."""

    email = fields.Field(attribute="email", column_name=EMAIL_COLUMN, widget=AddressWidget())
    reason = fields.Field(
        attribute="reason", column_name="reason", widget=ReasonWidget(), saves_null_values=False
    )
    note = fields.Field(attribute="note", column_name="note", widget=widgets.CharWidget())

    class Meta:
        model = BlacklistEntry
        name = _("Blacklist entries")
        fields = ("email", "reason", "note")
        import_id_fields = ("email",)
        instance_loader_class = AddressInstanceLoader
        # Unchanged rows are recognised by comparing the two editable values (skip_row), which
        # is much cheaper on a large file than the library's deep copy and HTML diff per row.
        skip_diff = True
        report_skipped = False
        use_bulk = True
        batch_size = 1000

    def before_import(self, dataset, **kwargs):
        self.acting_user = kwargs.get("user")
        self.file_name = kwargs.get("file_name") or ""
        self.line_numbers = getattr(dataset, "line_numbers", None) or [
            number + 2 for number in range(len(dataset))
        ]
        self.overlong_rows = getattr(dataset, "overlong_rows", {})
        dataset.headers = [force_str(header or "").strip().lower() for header in dataset.headers]
        if EMAIL_COLUMN not in dataset.headers:
            found = ", ".join(header for header in dataset.headers if header) or "–"
            # No row can be matched or checked: refuse the file before looking at its rows.
            dataset.wipe()
            raise ImportRefused(
                _("The file has no “email” column (columns found: %(found)s).") % {"found": found}
            )
        self.repeated_rows, self.conflicting_rows = _repeated_rows(dataset)
        self.previewed = 0

    def before_import_row(self, row, **kwargs):
        self.row_number = kwargs["row_number"]
        index = self.row_number - 1
        if index in self.overlong_rows:
            raise ValidationError(
                _(
                    "This line has %(cells)s cells but the header line only %(width)s; put a "
                    "note that contains the separator in double quotes."
                ),
                params={"cells": self.overlong_rows[index], "width": len(row)},
            )
        if index in self.conflicting_rows:
            raise ValidationError(
                _(
                    "This address is already on line %(line)s of the file, with a different "
                    "reason or note."
                ),
                params={"line": self.line_numbers[self.conflicting_rows[index]]},
            )

    def after_init_instance(self, instance, new, row, **kwargs):
        self.instance = instance
        self.stored_values = None if new else (instance.reason, instance.note)

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors:
            return False
        if self.row_number - 1 in self.repeated_rows:
            return True
        return self.stored_values == (instance.reason, instance.note)

    def after_import_row(self, row, row_result, **kwargs):
        if row_result.import_type in ("new", "update") and self.previewed < PREVIEW_ROWS:
            self.previewed += 1
            entry = self.instance
            before = self.stored_values or ("", "")
            row_result.diff = [
                entry.email,
                _before_after(before[0] and _reason_label(before[0]), _reason_label(entry.reason)),
                _before_after(before[1], entry.note),
            ]

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        self._write(using_transactions, dry_run, raise_errors, batch_size, result, new=True)

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        self._write(using_transactions, dry_run, raise_errors, batch_size, result, new=False)

    def _write(self, using_transactions, dry_run, raise_errors, batch_size, result, *, new):
        pending = self.create_instances if new else self.update_instances
        if not pending or dry_run:
            # The preview writes nothing: every row was already checked, and an address
            # listed meanwhile is caught when the confirmed import writes.
            pending.clear()
            return
        try:
            blacklist_import(
                new_entries=list(pending) if new else [],
                changed_entries=[] if new else list(pending),
                changed_fields=["reason", "note"],
                acting_user=self.acting_user,
                file_name=self.file_name,
                batch_size=batch_size,
            )
        except IntegrityError:
            self.handle_import_error(
                result,
                ImportRefused(
                    _(
                        "Someone added some of these addresses while the file was being "
                        "imported. Nothing was imported; please import the file again."
                    )
                ),
                raise_errors,
            )
        finally:
            pending.clear()

    def after_import(self, dataset, result, **kwargs):
        # Report the file's own line numbers rather than the position among the data rows.
        for failed_row in [*result.invalid_rows, *result.error_rows]:
            failed_row.number = self.line_numbers[failed_row.number - 1]


class BlacklistExportResource(BlacklistImportResource):
    """What the import reads, plus where each entry came from, when and by whom."""

    source = fields.Field(attribute="source", column_name="source", readonly=True)
    source_detail = fields.Field(
        attribute="source_detail", column_name="source_detail", readonly=True
    )
    created_at = fields.Field(
        attribute="created_at",
        column_name="created_at",
        readonly=True,
        widget=widgets.DateTimeWidget(),
    )
    created_by = fields.Field(column_name="created_by", readonly=True)

    class Meta(BlacklistImportResource.Meta):
        fields = ("email", "reason", "note", "source", "source_detail", "created_at", "created_by")

    def get_queryset(self):
        return super().get_queryset().select_related("created_by")

    def dehydrate_created_by(self, entry):
        return entry.created_by.get_username() if entry.created_by else ""


def _reason_label(code: str) -> str:
    return str(dict(BlacklistEntry.Reason.choices).get(code, code))


def _before_after(before: str, after: str) -> str:
    return after if before in ("", after) else f"{before} → {after}"


def _repeated_rows(dataset) -> tuple[set[int], dict[int, int]]:
    """Rows (0-based) repeating an earlier row's address: identical ones, and conflicting ones
    mapped to the earlier row."""
    first_rows = {}
    repeated, conflicting = set(), {}
    has_reason, has_note = "reason" in dataset.headers, "note" in dataset.headers
    for index, row in enumerate(dataset.dict):
        key = address_match_key(force_str(row[EMAIL_COLUMN] or ""))
        if not key:
            continue
        values = (
            force_str(row["reason"] or "").strip().lower() if has_reason else "",
            force_str(row["note"] or "") if has_note else "",
        )
        if key not in first_rows:
            first_rows[key] = (index, values)
        elif first_rows[key][1] == values:
            repeated.add(index)
        else:
            conflicting[index] = first_rows[key][0]
    return repeated, conflicting
