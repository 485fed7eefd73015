"""`make run`'s demo data: the printed credentials sign in, the demo server is the default."""

import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from smtpconfig.models import SmtpServer

pytestmark = pytest.mark.django_db


def run_demo_data(capsys) -> dict:
    call_command("demo_data", sink_port=2525)
    out = capsys.readouterr().out
    return {
        "password": re.search(r"password: (\S+)", out).group(1),
        "codes": re.search(r"backup codes\): (.+)", out).group(1).split(", "),
    }


def test_printed_password_and_backup_code_open_the_dashboard(client, capsys):
    printed = run_demo_data(capsys)
    response = client.post(
        reverse("admin:login"),
        {"username": "admin", "password": printed["password"], "next": reverse("admin:index")},
        follow=True,
    )
    assert "verify" in response.request["PATH_INFO"]
    response = client.post(
        response.request["PATH_INFO"], {"code": printed["codes"][0]}, follow=True
    )
    assert response.request["PATH_INFO"] == reverse("admin:index")
    assert "Local catching server" in response.content.decode()


def test_demo_data_runs_again_without_duplicates_and_renews_the_password(capsys):
    first = run_demo_data(capsys)
    second = run_demo_data(capsys)
    assert first["password"] != second["password"]
    server = SmtpServer.objects.get()
    assert server.is_default and server.port == 2525 and server.host == "127.0.0.1"
