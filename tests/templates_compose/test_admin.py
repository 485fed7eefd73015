"""The template editor: list, live preview, which server sends it, duplicate into a language."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from mailadmin.models import MailTemplate


@pytest.fixture
def editor(django_user_model, db):
    """Staff allowed to edit templates (not a superuser: no second factor in these tests)."""
    user = django_user_model.objects.create_user("editor", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="mailadmin",
            codename__in=["view_mailtemplate", "add_mailtemplate", "change_mailtemplate"],
        )
    )
    return user


@pytest.fixture
def logged_in(client, editor):
    client.force_login(editor)
    return client


PREVIEW_URL = "admin:mailadmin_mailtemplate_preview"


def preview_data(**fields):
    data = {
        "language": "fr",
        "subject": "Bonjour {{ member.first_name }}",
        "body_text": "Texte {{ member.first_name }} {{ date }}",
        "body_html": "<p>{{ member.first_name }}</p>",
        "sender_email": "office@club.example",
        "sample_context": '{"member": {"first_name": "<Anne>"}}',
    }
    data.update(fields)
    return data


def test_the_editor_shows_the_preview_and_the_server_that_sends(
    logged_in, french_template, club_server
):
    url = reverse("admin:mailadmin_mailtemplate_change", args=[french_template.pk])
    page = logged_in.get(url).content.decode()
    assert "Convocation de Anne" in page
    assert "«missing: date»" in page
    assert "Which server will send this" in page and "Club relay" in page
    assert "mailadmin/template_preview.js" in page
    assert 'formaction="/admin/mailadmin/mailtemplate/preview/"' in page


def test_the_list_shows_templates(logged_in, french_template):
    page = logged_in.get(reverse("admin:mailadmin_mailtemplate_changelist")).content.decode()
    assert "Convocation de {{ member.first_name }}" in page


def test_the_preview_of_unsaved_values_as_fragment_and_as_page(logged_in, club_server):
    fragment = logged_in.post(reverse(PREVIEW_URL), preview_data(_fragment="1"))
    text = fragment.content.decode()
    assert text.lstrip().startswith('<div class="mail-preview"')
    assert "Bonjour &lt;Anne&gt;" in text
    assert "«missing: date»" in text
    # The HTML goes into the sandboxed frame escaped twice: once by the mail, once as attribute.
    assert 'srcdoc="&lt;p&gt;&amp;lt;Anne&amp;gt;&lt;/p&gt;"' in text
    page = logged_in.post(reverse(PREVIEW_URL), preview_data())
    assert "<html" in page.content.decode() and "Club relay" in page.content.decode()
    assert not MailTemplate.objects.exists()


def test_the_preview_names_a_syntax_error_with_its_line(logged_in):
    response = logged_in.post(
        reverse(PREVIEW_URL), preview_data(body_text="a\nb\n{{ x|nofilter }}", _fragment="1")
    )
    assert "Line 3: Invalid filter: &#x27;nofilter&#x27;" in response.content.decode()


def test_the_preview_says_when_no_server_can_send(logged_in):
    response = logged_in.post(reverse(PREVIEW_URL), preview_data(_fragment="1"))
    assert "No active SMTP server can send mail" in response.content.decode()


def test_the_preview_needs_the_view_permission_and_a_post(client, django_user_model, logged_in):
    assert logged_in.get(reverse(PREVIEW_URL)).status_code == 405
    client.force_login(django_user_model.objects.create_user("other", is_staff=True))
    assert client.post(reverse(PREVIEW_URL), preview_data()).status_code == 403


def test_saving_a_broken_template_is_refused_with_the_line(logged_in):
    response = logged_in.post(
        reverse("admin:mailadmin_mailtemplate_add"),
        {
            "name": "broken",
            "language": "en",
            "subject": "Hi",
            "body_text": "one\n{% if x %}",
            "body_html": "",
            "sample_context": "{}",
        },
    )
    assert response.status_code == 200
    assert "Line 2: Unclosed tag" in response.content.decode()
    assert not MailTemplate.objects.exists()


def test_duplicate_into_german_and_skip_existing(logged_in, french_template):
    MailTemplate.objects.create(name="other", language="de", subject="x", body_text="y")
    other = MailTemplate.objects.get(name="other")
    response = logged_in.post(
        reverse("admin:mailadmin_mailtemplate_changelist"),
        {"action": "duplicate_to_de", "_selected_action": [french_template.pk, other.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert MailTemplate.objects.filter(name="convocation", language="de").exists()
    assert "1 template(s) copied" in page
    assert "already exists in German" in page


def test_a_template_broken_outside_the_editor_shows_why_instead_of_failing(logged_in):
    broken = MailTemplate.objects.create(
        name="broken", language="en", subject="Hi", body_text="{% if x %}"
    )
    url = reverse("admin:mailadmin_mailtemplate_change", args=[broken.pk])
    response = logged_in.get(url)
    assert response.status_code == 200
    assert "cannot be rendered (body_text)" in response.content.decode()
