import pytest
from django.contrib.auth.models import Group, Permission

from mailadmin.models import MailTemplate
from mailadmin.roles import CLUB_STAFF
from smtpconfig.models import MailSettings


@pytest.fixture
def staff(django_user_model):
    """A club staff member: composes and reads history, may not send for real in test mode."""
    user = django_user_model.objects.create_user("desk", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=CLUB_STAFF))
    return user


@pytest.fixture
def trusted_staff(staff):
    staff.user_permissions.add(Permission.objects.get(codename="send_real_in_test_mode"))
    return type(staff).objects.get(pk=staff.pk)


@pytest.fixture
def club_server(sink, make_server):
    return make_server(sink=sink, name="Club relay", is_default=True)


@pytest.fixture
def direct_delivery(db):
    settings_row = MailSettings.load()
    settings_row.delivery = MailSettings.Delivery.DIRECT
    settings_row.save()
    return settings_row


@pytest.fixture
def test_mode(direct_delivery):
    direct_delivery.test_mode = True
    direct_delivery.test_address = "tester@club.example"
    direct_delivery.save()
    return direct_delivery


@pytest.fixture
def french_template(db):
    return MailTemplate.objects.create(
        name="convocation",
        language="fr",
        subject="Convocation de {{ member.first_name }}",
        body_text="Bonjour {{ member.first_name }},\nRendez-vous le {{ date }}.",
        body_html="<p>Bonjour {{ member.first_name }}</p>",
        sender_name="Golf Club",
        sender_email="office@club.example",
        sample_context={"member": {"first_name": "Anne"}},
    )


@pytest.fixture(autouse=True)
def _routing_mailer(routing_mailer):
    """Every test here goes through the real backend."""
