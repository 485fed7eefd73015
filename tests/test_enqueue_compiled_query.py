"""core.compiled: a query composed once gives the instances the queryset gives."""

import pytest
from django.db.models import Count

from blacklist.models import BlacklistEntry
from core.compiled import CompiledQuery
from smtpconfig.models import SmtpServer

pytestmark = pytest.mark.django_db


def test_instances_match_the_orm_with_converters_and_related_objects(
    django_user_model, make_server, django_assert_num_queries
):
    user = django_user_model.objects.create_user("manager", password="pw")
    entry = BlacklistEntry.objects.create(email="gone@golf.example", created_by=user)
    BlacklistEntry.objects.create(email="@spam.example")
    query = CompiledQuery(
        lambda: BlacklistEntry.objects.filter(email__in=["0@", "1@"]).select_related("created_by")
    )
    with django_assert_num_queries(1):
        (found,) = query.instances(query.rows(["gone@golf.example", "other@golf.example"]))
        assert found.created_by == user  # came with the row
    assert found == entry
    assert found.created_at == BlacklistEntry.objects.get(pk=entry.pk).created_at
    assert found._state.adding is False

    server = make_server(use_auth=True, username="u", password="s3cret")
    servers = CompiledQuery(lambda: SmtpServer.objects.order_by("pk"))
    (read,) = servers.instances(servers.rows())
    assert str(read.password) == "s3cret"  # decrypted, like the ORM does
    assert read.is_default is False and read.port == server.port


def test_the_composed_parameters_are_used_when_none_are_given(make_server):
    make_server(name="A")
    make_server(name="B")
    query = CompiledQuery(lambda: SmtpServer.objects.filter(name="B"))
    assert [server.name for server in query.instances(query.rows())] == ["B"]
    assert [server.name for server in query.instances(query.rows(["A"]))] == ["A"]


def test_a_wrong_number_of_parameters_is_refused():
    query = CompiledQuery(lambda: BlacklistEntry.objects.filter(email__in=["0@", "1@"]))
    with pytest.raises(ValueError, match="2 parameters expected, 3 given"):
        query.rows(["a@b.example", "c@d.example", "e@f.example"])


@pytest.mark.parametrize(
    "queryset_factory",
    [
        lambda: SmtpServer.objects.annotate(count=Count("messages")),
        lambda: SmtpServer.objects.values("name"),
        lambda: SmtpServer.objects.only("name"),
        lambda: SmtpServer.objects.defer("password"),
    ],
    ids=["annotate", "values", "only", "defer"],
)
def test_queries_whose_rows_are_not_whole_instances_are_refused(queryset_factory):
    with pytest.raises(TypeError, match="cannot be compiled"):
        CompiledQuery(queryset_factory).rows()
