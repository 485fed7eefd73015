"""Rendering, escaping, save-time checks, language fallback and the variables a template reads."""

import pytest
from django.core.mail import EmailMultiAlternatives
from django.test import override_settings
from django.utils.html import conditional_escape

from mailadmin.forms import MailTemplateForm, recipients_parse
from mailadmin.models import MailTemplate
from mailadmin.services import TemplateExists, template_duplicate
from mailadmin.templating import (
    TemplateNotFound,
    context_from_paths,
    template_message,
    template_render,
    template_variables,
)


def make_template(**fields) -> MailTemplate:
    values = {
        "name": "welcome",
        "language": "en",
        "subject": "Welcome {{ member.first_name }}",
        "body_text": "Hello {{ member.first_name }} & {{ club }}",
        "body_html": "<p>Hello {{ member.first_name }}</p>",
    }
    values.update(fields)
    return MailTemplate(**values)


def test_html_is_escaped_and_text_and_subject_are_not():
    template = make_template(
        subject="Hi {{ name }}", body_text="Hi {{ name }}", body_html="<p>Hi {{ name }}</p>"
    )
    rendered = template_render(template=template, context={"name": "Tom & <Jerry>"})
    assert rendered.subject == "Hi Tom & <Jerry>"
    assert rendered.text == "Hi Tom & <Jerry>"
    assert rendered.html == "<p>Hi Tom &amp; &lt;Jerry&gt;</p>"


def test_subject_is_one_line_whatever_the_template_or_the_values():
    template = make_template(subject="Hi {{ name }}\n{{ other }}")
    rendered = template_render(template=template, context={"name": "A\r\nBcc: x@evil.example"})
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_missing_values_are_marked_in_previews_only():
    template = make_template()
    preview = template_render(template=template, context={}, preview=True)
    assert preview.subject == "Welcome «missing: member.first_name»"
    assert "«missing: club»" in preview.text
    real = template_render(template=template, context={})
    assert real.subject == "Welcome"
    assert "missing" not in real.text + real.html


@pytest.mark.parametrize(
    ("field", "source", "expected"),
    [
        ("body_text", "Hello\n{{ name|shout }}", "Line 2: Invalid filter: 'shout'"),
        ("body_html", "<p>\n\n{% frobnicate %}</p>", "Line 3: Invalid block tag"),
        ("subject", "Hi {% if x %}", "Line 1: Unclosed tag"),
        ("body_text", "a\n{% debug %}", "Line 2: the tag {% debug %} cannot be used"),
        ("body_text", '{% include "x.html" %}', "Line 1: the tag {% include %} cannot be used"),
        ("body_text", "{% load static %}", "Line 1: 'static' is not a registered tag library"),
    ],
)
@pytest.mark.django_db
def test_the_editor_refuses_a_template_that_cannot_render_with_line_and_problem(
    field, source, expected
):
    data = {
        "name": "welcome",
        "language": "en",
        "subject": "Hi",
        "body_text": "Hello",
        "body_html": "",
        "sample_context": "{}",
    }
    data[field] = source
    form = MailTemplateForm(data=data)
    assert not form.is_valid()
    assert form.errors[field][0].startswith(expected)
    assert not MailTemplate.objects.exists()


@pytest.mark.django_db
def test_the_editor_saves_a_good_template_and_refuses_a_sample_context_that_is_no_object():
    data = {
        "name": "welcome",
        "language": "fr",
        "subject": "Bonjour {{ member.first_name }}",
        "body_text": "Bonjour",
        "sample_context": '["not", "an", "object"]',
    }
    form = MailTemplateForm(data=data)
    assert not form.is_valid()
    assert "sample_context" in form.errors
    data["sample_context"] = '{"member": {"first_name": "Anne"}}'
    form = MailTemplateForm(data=data)
    assert form.is_valid(), form.errors
    assert form.save().sample_context == {"member": {"first_name": "Anne"}}


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="de")
def test_language_falls_back_to_the_default_language_then_to_any():
    make_template(language="de", subject="Willkommen").save()
    make_template(language="fr", subject="Bienvenue").save()
    assert (
        template_message(name="welcome", language="fr", context={}, to=["a@x.example"]).subject
        == "Bienvenue"
    )
    assert (
        template_message(name="welcome", language="fr-ch", context={}, to=["a@x.example"]).subject
        == "Bienvenue"
    )
    assert (
        template_message(name="welcome", language="en", context={}, to=["a@x.example"]).subject
        == "Willkommen"
    )
    assert template_message(name="welcome", context={}, to=["a@x.example"]).subject == "Willkommen"
    MailTemplate.objects.filter(language="de").delete()
    assert (
        template_message(name="welcome", language="en", context={}, to=["a@x.example"]).subject
        == "Bienvenue"
    )


@pytest.mark.django_db
def test_an_unknown_template_is_a_lookup_error_naming_it():
    with pytest.raises(LookupError, match="nothing") as caught:
        template_message(name="nothing", context={}, to=["a@x.example"])
    assert isinstance(caught.value, TemplateNotFound)


@pytest.mark.django_db
def test_the_message_carries_the_templates_sender_reply_to_text_and_html():
    make_template(
        sender_name="Golf Club Évian",
        sender_email="office@club.example",
        reply_to="desk@club.example",
    ).save()
    message = template_message(
        name="welcome",
        language="en",
        context={"member": {"first_name": "Anne"}, "club": "GC"},
        to=["anne@members.example"],
        bcc=["archive@club.example"],
    )
    assert isinstance(message, EmailMultiAlternatives)
    assert message.from_email == "Golf Club Évian <office@club.example>"
    assert message.reply_to == ["desk@club.example"]
    assert message.to == ["anne@members.example"] and message.bcc == ["archive@club.example"]
    assert message.subject == "Welcome Anne"
    assert message.body == "Hello Anne & GC"
    assert message.alternatives[0].content == "<p>Hello Anne</p>"


@pytest.mark.django_db
def test_without_a_sender_the_message_uses_the_default_from_so_routing_decides():
    make_template(body_html="").save()
    message = template_message(name="welcome", context={}, to=["a@x.example"])
    assert message.from_email == "mailadmin@localhost"
    assert message.alternatives == []


def test_variables_are_found_by_parsing_without_loop_variables():
    template = make_template(
        subject="{{ member.first_name }}",
        body_text=(
            "{% for event in events %}{{ event.name }} {{ forloop.counter }}{% endfor %}"
            "{% if club.name and not closed %}{{ club.name|default:fallback }}{% endif %}"
            "{% with n=member.last_name %}{{ n }}{% endwith %}"
        ),
        body_html="<p>{{ member.first_name }}</p>",
    )
    variables = template_variables(template=template)
    assert variables.values == [
        "member.first_name",
        "club.name",
        "closed",
        "fallback",
        "member.last_name",
    ]
    assert variables.lists == ["events"]


def test_dotted_values_nest_into_the_context():
    assert context_from_paths({"member.first_name": "A", "member.last_name": "B", "x": 1}) == {
        "member": {"first_name": "A", "last_name": "B"},
        "x": 1,
    }


@pytest.mark.django_db
def test_duplicate_into_another_language_once():
    template = make_template(sample_context={"club": "GC"})
    template.save()
    copy = template_duplicate(template=template, language="fr")
    assert (copy.name, copy.language, copy.body_text) == ("welcome", "fr", template.body_text)
    assert copy.sample_context == {"club": "GC"}
    with pytest.raises(TemplateExists):
        template_duplicate(template=template, language="fr")


def test_recipients_are_split_deduplicated_and_each_bad_one_named():
    assert recipients_parse("a@x.example, b@x.example\nA@x.example;c@x.example") == [
        "a@x.example",
        "b@x.example",
        "c@x.example",
    ]
    with pytest.raises(Exception) as caught:
        recipients_parse("a@x.example, nope, also@bad")
    messages = caught.value.messages
    assert messages == ["“nope” is not an e-mail address.", "“also@bad” is not an e-mail address."]
    with pytest.raises(Exception, match="at least one"):
        recipients_parse(" , \n")


def test_rendered_parts_are_plain_strings_a_page_escapes():
    template = make_template(subject="{{ v }}", body_text="{{ v }}", body_html="<i>{{ v }}</i>")
    rendered = template_render(template=template, context={"v": "<script>"})
    for part in (rendered.subject, rendered.text, rendered.html):
        assert type(part) is str
        assert conditional_escape(part) != part


@pytest.mark.django_db
def test_a_bulk_template_carries_the_recipients_own_unsubscribe_headers(settings):
    settings.MAILADMIN = {**settings.MAILADMIN, "PUBLIC_URL": "https://mail.club.example"}
    make_template(is_bulk=True).save()
    message = template_message(name="welcome", context={}, to=["anne@members.example"])
    assert message.extra_headers["List-Unsubscribe"].startswith("<https://mail.club.example/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with pytest.raises(ValueError, match="one address per message"):
        template_message(
            name="welcome", context={}, to=["anne@members.example"], bcc=["b@x.example"]
        )


@pytest.mark.django_db
def test_a_normal_template_has_no_unsubscribe_headers():
    make_template().save()
    message = template_message(name="welcome", context={}, to=["a@x.example", "b@x.example"])
    assert "List-Unsubscribe" not in message.extra_headers
