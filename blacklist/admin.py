"""Admin of the blacklist for managers.

Every write goes through ``blacklist.services``; the history of each entry (who, when,
before and after) is simple_history's, and the whole trail, removed entries included, has
its own read-only page.
"""

from urllib.parse import quote, urlencode

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import now
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportMixin
from import_export.tmp_storages import CacheStorage, TempFolderStorage
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from blacklist.models import BlacklistEntry
from blacklist.normalize import address_match_key, domain_of, normalize_address
from blacklist.resources import BlacklistExportResource, BlacklistImportResource, SpreadsheetCSV
from blacklist.selectors import blacklist_entry_get
from blacklist.services import (
    CHANGE_REASON_MAX_LENGTH,
    BlacklistConflict,
    blacklist_add,
    blacklist_change,
    blacklist_entry_explain,
    blacklist_remove,
    blacklist_remove_all,
)
from core.paginators import CappedCountPaginator

# The field of the confirmation pages (single and bulk) that says why entries are removed.
REMOVE_REASON_FIELD = "change_reason"
FORM_FIELDS = ("email", "reason", "note")


# The mail program setting and the compose page live in the layers above the blacklist
# (smtpconfig, then the portal), which import it: they are reached by name at run time so
# the blacklist imports neither. The rule is smtpconfig.links.member_email_link's.
MAIL_SETTINGS_MODEL = ("smtpconfig", "MailSettings")
EXTERNAL_MAIL_CLIENT = "external"
COMPOSE_URL_NAME = "mailadmin_compose"
COMPOSE_PERMISSION = "mailadmin.compose_mail"


def blacklist_mail_client() -> str:
    """The mail program setting: ``module`` (the compose page) or ``external`` (mailto)."""
    return apps.get_model(*MAIL_SETTINGS_MODEL).load().mail_client


def blacklist_write_link(*, address: str, user, mail_client: str) -> str:
    """A link to write to a listed address, empty for a domain or for who may not compose."""
    if address.startswith("@"):
        return ""
    if mail_client == EXTERNAL_MAIL_CLIENT:
        href = f"mailto:{quote(address, safe='@')}"
    elif user.has_perm(COMPOSE_PERMISSION):
        href = f"{reverse(COMPOSE_URL_NAME)}?{urlencode({'to': address})}"
    else:
        return ""
    return format_html('<a class="member-email" href="{}">{}</a>', href, gettext("Write"))


def with_write_column(list_display, *, request, after: str) -> tuple:
    """``list_display`` with a column to write to each row's address after ``after``."""
    mail_client = blacklist_mail_client()

    @admin.display(description=_("write"))
    def write(row):
        return blacklist_write_link(address=row.email, user=request.user, mail_client=mail_client)

    position = list_display.index(after) + 1
    return (*list_display[:position], write, *list_display[position:])


class EntryChangeDisplay(HistoricalRecordContextHelper):
    """Before/after values as managers read them: reason labels, no user for "nobody"."""

    def prepare_delta_change_value(self, change, value):
        labels = dict(self.model._meta.get_field(change.field).flatchoices)
        if value in labels:
            return labels[value]
        if isinstance(value, DeletedObject) and value.pk is None:
            return ""
        return super().prepare_delta_change_value(change, value)


class SharedCacheStorage(CacheStorage):
    """The uploaded file kept in the shared cache between preview and confirmation."""

    def read(self):
        data = super().read()
        if data is None:
            raise FileNotFoundError(self.name)
        return data


class BlacklistEntryForm(forms.ModelForm):
    change_reason = forms.CharField(
        label=_("Why"),
        required=False,
        max_length=CHANGE_REASON_MAX_LENGTH,
        help_text=_("Kept in the history with your change, e.g. “member wrote to the office”."),
    )

    class Meta:
        model = BlacklistEntry
        fields = FORM_FIELDS
        help_texts = {
            "email": _("An address, or “@example.org” to block a whole domain."),
        }

    def clean_email(self):
        address = normalize_address(self.cleaned_data["email"])
        listed = blacklist_entry_get(email=address)
        if listed is not None and listed.pk != self.instance.pk:
            raise ValidationError(
                format_html(
                    '{} <a href="{}">{}</a>',
                    blacklist_entry_explain(entry=listed),
                    reverse("admin:blacklist_blacklistentry_change", args=[listed.pk]),
                    gettext("Open that entry"),
                )
            )
        return address


@admin.register(BlacklistEntry)
class BlacklistEntryAdmin(ImportExportMixin, SimpleHistoryAdmin):
    form = BlacklistEntryForm
    list_display = ("email", "reason", "source", "created_by", "created_at")
    list_filter = ("reason", "source", "created_at")
    search_fields = ("email", "note")
    search_help_text = _("Search an address (in any spelling), a domain or a note.")
    list_select_related = ("created_by",)
    list_per_page = 100
    # A list of 100,000 addresses opens as fast as one of a thousand: no count of them all.
    paginator = CappedCountPaginator
    show_full_result_count = False
    readonly_fields = (
        "source",
        "source_detail",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
    )
    history_list_display = ("reason", "note")

    def get_list_display(self, request):
        # The address opens its entry; the next column writes to it, for this viewer.
        return with_write_column(self.list_display, request=request, after="email")

    resource_classes = [BlacklistImportResource]
    import_formats = [SpreadsheetCSV]
    export_formats = [SpreadsheetCSV]
    import_template_name = "admin/blacklist/blacklistentry/import.html"
    # simple_history keeps the record of every imported row; the admin log would repeat it.
    skip_admin_log = True

    def get_historical_record_context_helper(self, request, historical_record):
        return EntryChangeDisplay(self.model, historical_record)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": FORM_FIELDS})]
        return [
            (None, {"fields": [*FORM_FIELDS, "change_reason"]}),
            (
                _("Origin"),
                {
                    "fields": [
                        "source",
                        "source_detail",
                        ("created_at", "created_by"),
                        ("updated_at", "updated_by"),
                    ]
                },
            ),
        ]

    def get_search_results(self, request, queryset, search_term):
        filtered = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            queryset |= _search_in_normal_form(filtered, term)
        return queryset, may_have_duplicates

    # Writes: only through the services.

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BlacklistConflict as conflict:
            # Another manager listed the address after this form was checked.
            messages.error(request, conflict.messages[0])
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            blacklist_change(
                entry=obj,
                acting_user=request.user,
                change_reason=data.get("change_reason", ""),
                **{name: data[name] for name in FORM_FIELDS if name in data},
            )
            return
        entry, created = blacklist_add(
            email=data["email"],
            reason=data["reason"],
            note=data["note"],
            source=BlacklistEntry.Source.STAFF,
            acting_user=request.user,
        )
        if not created:
            # Listed by someone else since the form was checked: show theirs.
            messages.warning(request, blacklist_entry_explain(entry=entry))
        obj.pk = entry.pk
        obj.refresh_from_db()
        obj._state.adding = False
        obj.already_listed = not created

    def response_add(self, request, obj, post_url_continue=None):
        if obj.already_listed:
            return HttpResponseRedirect(
                reverse("admin:blacklist_blacklistentry_change", args=[obj.pk])
            )
        return super().response_add(request, obj, post_url_continue)

    def delete_model(self, request, obj):
        blacklist_remove(entry=obj, acting_user=request.user, change_reason=_remove_reason(request))

    def delete_queryset(self, request, queryset):
        blacklist_remove_all(
            entries=queryset, acting_user=request.user, change_reason=_remove_reason(request)
        )

    # Import and export: the blacklist permissions decide, not any staff account.

    def has_import_permission(self, request):
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_import_resource_classes(self, request):
        return [BlacklistImportResource]

    def get_export_resource_classes(self, request):
        return [BlacklistExportResource]

    def get_export_filename(self, request, queryset, file_format):
        return f"blacklist-{now():%Y-%m-%d}.{file_format.get_extension()}"

    def get_tmp_storage_class(self):
        # Preview and confirmation may reach different web hosts when scaled out (Redis
        # configured): the file then waits in the shared cache; one host uses a temp file.
        if isinstance(caches["default"], RedisCache):
            return SharedCacheStorage
        return TempFolderStorage

    def process_import(self, request, **kwargs):
        try:
            return super().process_import(request, **kwargs)
        except FileNotFoundError:
            messages.error(
                request,
                gettext("The file of the preview is no longer available; please upload it again."),
            )
            return HttpResponseRedirect(reverse("admin:blacklist_blacklistentry_import"))

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        # One bad line rolls the whole file back, also when it appears only at confirmation.
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            messages.error(request, gettext("Nothing was imported."))
            # The confirmation posted no file: offer the upload again.
            form = self.get_import_form_class(request)(
                self.get_import_formats(), self.get_import_resource_classes(request)
            )
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Import"),
                "opts": self.model._meta,
                "form": form,
                "media": self.media + form.media,
                "result": result,
                "import_error_display": self.import_error_display,
            }
            return TemplateResponse(request, [self.import_template_name], context)
        return super().process_result(result, request)

    def add_success_message(self, result, request):
        messages.success(
            request,
            gettext("Import finished: %(new)s added, %(changed)s changed, %(unchanged)s unchanged.")
            % {
                "new": result.totals["new"],
                "changed": result.totals["update"],
                "unchanged": result.totals["skip"],
            },
        )


@admin.register(BlacklistEntry.history.model)
class BlacklistHistoryAdmin(admin.ModelAdmin):
    """Every change to every entry, removed ones included; read only."""

    list_display = (
        "history_date",
        "email",
        "history_type",
        "history_user",
        "history_change_reason",
        "changes",
    )
    list_filter = ("history_type", "history_date", "reason")
    search_fields = ("email", "note", "history_change_reason")
    list_select_related = ("history_user",)
    date_hierarchy = "history_date"
    list_per_page = 100

    def get_list_display(self, request):
        return with_write_column(self.list_display, request=request, after="email")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("before → after"))
    def changes(self, record):
        previous = record.prev_record
        if previous is None:
            return ""
        delta = record.diff_against(previous, excluded_fields=["updated_at"])
        changes = EntryChangeDisplay(BlacklistEntry, record).context_for_delta_changes(delta)
        return format_html_join(
            "; ", "{}: {} → {}", ((c["field"], c["old"], c["new"]) for c in changes)
        )


def _remove_reason(request) -> str:
    return request.POST.get(REMOVE_REASON_FIELD, "").strip()[:CHANGE_REASON_MAX_LENGTH]


def _search_in_normal_form(queryset, term: str):
    """The entries a manager means by ``term`` in whatever spelling: for an address, its entry
    and its domain's entry; for a domain, every entry in it."""
    if "@" not in term:
        domain = address_match_key(f"@{term}")[1:]
        return queryset.filter(email__icontains=domain) if domain else queryset.none()
    key = address_match_key(term)
    return queryset.filter(email__in=[key, "@" + domain_of(key)])
