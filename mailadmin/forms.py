"""Forms of the template admin and of the compose page."""

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from mailadmin.models import MailTemplate
from mailadmin.templating import (
    context_from_paths,
    context_value_at,
    template_source_check,
    template_variables,
)

# Most a staff member may address from the compose page at once; mailings go through the CRM.
MAX_COMPOSE_RECIPIENTS = 50

_RECIPIENT_SEPARATORS = re.compile(r"[,;\s]+")

SAMPLE_CONTEXT_HELP = _(
    'The values the preview uses, as a JSON object, e.g. {"member": {"first_name": "Anne"}}.'
)


class JsonObjectField(forms.JSONField):
    """A JSON field that only takes an object (what a template context is)."""

    default_error_messages = {
        "not_object": _('Enter a JSON object, e.g. {"member": {"first_name": "Anne"}}.'),
    }

    def prepare_value(self, value):
        # An empty box stays empty instead of showing "null".
        if value is None:
            return ""
        return super().prepare_value(value)

    def to_python(self, value):
        converted = super().to_python(value)
        if converted in (None, ""):
            return {}
        if not isinstance(converted, dict):
            raise ValidationError(self.error_messages["not_object"], code="not_object")
        return converted


class MailTemplateForm(forms.ModelForm):
    """The template editor: every template field must compile, with the line of any problem."""

    sample_context = JsonObjectField(
        label=_("sample context"),
        required=False,
        help_text=SAMPLE_CONTEXT_HELP,
        widget=forms.Textarea(attrs={"rows": 6, "class": "vLargeTextField"}),
    )

    class Meta:
        model = MailTemplate
        fields = [
            "name",
            "language",
            "description",
            "sender_name",
            "sender_email",
            "reply_to",
            "is_bulk",
            "subject",
            "body_text",
            "body_html",
            "sample_context",
        ]

    def clean_subject(self):
        return self._checked("subject")

    def clean_body_text(self):
        return self._checked("body_text")

    def clean_body_html(self):
        return self._checked("body_html")

    def _checked(self, field_name: str) -> str:
        source = self.cleaned_data[field_name]
        template_source_check(source=source)
        return source


class TemplatePreviewForm(forms.Form):
    """What the preview of an unsaved template needs: its template fields and sample values."""

    language = forms.ChoiceField(choices=MailTemplate.Language.choices, required=False)
    subject = forms.CharField(required=False)
    body_text = forms.CharField(required=False, strip=False)
    body_html = forms.CharField(required=False, strip=False)
    sender_email = forms.EmailField(required=False)
    sample_context = JsonObjectField(required=False)

    def clean_subject(self):
        return self._checked("subject")

    def clean_body_text(self):
        return self._checked("body_text")

    def clean_body_html(self):
        return self._checked("body_html")

    def _checked(self, field_name: str) -> str:
        source = self.cleaned_data[field_name]
        template_source_check(source=source)
        return source

    def template(self) -> MailTemplate:
        """An unsaved template holding the previewed values."""
        return MailTemplate(
            language=self.cleaned_data.get("language") or MailTemplate.Language.EN,
            subject=self.cleaned_data.get("subject", ""),
            body_text=self.cleaned_data.get("body_text", ""),
            body_html=self.cleaned_data.get("body_html", ""),
            sender_email=self.cleaned_data.get("sender_email", ""),
        )


def recipients_parse(value: str) -> list[str]:
    """Split comma, semicolon or line separated addresses; raise one error per bad address."""
    addresses = []
    seen = set()
    errors = []
    for item in _RECIPIENT_SEPARATORS.split(value or ""):
        if not item:
            continue
        try:
            validate_email(item)
        except ValidationError:
            errors.append(
                ValidationError(
                    _("“%(value)s” is not an e-mail address."),
                    code="invalid_recipient",
                    params={"value": item},
                )
            )
            continue
        if item.lower() not in seen:
            seen.add(item.lower())
            addresses.append(item)
    if errors:
        raise ValidationError(errors)
    if not addresses:
        raise ValidationError(_("Enter at least one recipient."), code="no_recipient")
    if len(addresses) > MAX_COMPOSE_RECIPIENTS:
        raise ValidationError(
            _("At most %(limit)s recipients at once; you entered %(count)s."),
            code="too_many_recipients",
            params={"limit": MAX_COMPOSE_RECIPIENTS, "count": len(addresses)},
        )
    return addresses


class RecipientsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"})

    def clean(self, value):
        return recipients_parse(super().clean(value))


class HistoryLookupForm(forms.Form):
    address = forms.EmailField(
        label=_("Member's e-mail address"),
        widget=forms.EmailInput(attrs={"autofocus": True, "size": 40}),
    )

    def clean_address(self):
        return self.cleaned_data["address"].strip()


VARIABLE_PREFIX = "var:"


class ComposeForm(forms.Form):
    """Template, recipients and context values; one field per variable the template reads.

    The values may also (or instead) be given as JSON, which wins where both give a value.
    """

    template = forms.ModelChoiceField(
        label=_("Template"), queryset=MailTemplate.objects.order_by("name", "language")
    )
    recipients = RecipientsField(
        label=_("Recipients"),
        help_text=_("One address per line, or separated by commas."),
    )
    context_json = JsonObjectField(
        label=_("Values as JSON"),
        required=False,
        help_text=_("Optional. Values the fields above cannot hold, such as lists."),
        widget=forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField"}),
    )

    def __init__(self, *args, template: MailTemplate | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mail_template = template
        self.list_variables: list[str] = []
        if template is None:
            return
        variables = template_variables(template=template)
        self.list_variables = variables.lists
        for path in variables.values:
            sample = context_value_at(template.sample_context or {}, path)
            # The sample shows as a hint only: a value left over from it would go out to
            # real members ("Dear Anne" to everyone).
            hint = "" if sample is None or isinstance(sample, dict | list) else str(sample)
            self.fields[VARIABLE_PREFIX + path] = forms.CharField(
                label=path,
                required=False,
                widget=forms.TextInput(attrs={"placeholder": hint} if hint else {}),
            )

    def variable_fields(self):
        return [self[name] for name in self.fields if name.startswith(VARIABLE_PREFIX)]

    def context(self) -> dict:
        """The context the template is rendered with: the fields' values, then the JSON."""
        values = {
            name.removeprefix(VARIABLE_PREFIX): value
            for name, value in self.cleaned_data.items()
            if name.startswith(VARIABLE_PREFIX) and value != ""
        }
        return _merged(context_from_paths(values), self.cleaned_data.get("context_json") or {})


def _merged(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def context_as_json(context: dict) -> str:
    """The context as the compose form's JSON field takes it back (confirmation step)."""
    return json.dumps(context, ensure_ascii=False, sort_keys=True)
