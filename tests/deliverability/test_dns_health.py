"""Domain health against a real DNS server on loopback serving one fixture zone per case."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command

from smtpconfig.dkim import dkim_key_generate, dkim_txt_record, dkim_txt_strings
from smtpconfig.dns_health import Verdict, domain_check, server_domain_health, server_sender_domains
from smtpconfig.models import SmtpServer

pytestmark = pytest.mark.django_db

HOST_ZONE = """
smtp.club.test.   300 IN A    192.0.2.25
relay.club.test.  300 IN A    192.0.2.99
"""


def check_of(report, name):
    return next(check for check in report.checks if check.check == name)


@pytest.fixture
def club_server(make_server):
    return make_server(host="smtp.club.test", sender_email="office@club.test")


def test_no_spf_is_red_with_the_record_to_publish(dns_zone, club_server):
    dns_zone(HOST_ZONE + 'club.test. 300 IN TXT "google-site-verification=abc"\n')
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.FAIL
    assert spf.found == []
    assert spf.publish == "v=spf1 a:smtp.club.test ~all"
    assert spf.publish_name == "club.test"


def test_two_spf_records_fail_and_are_merged(dns_zone, club_server):
    dns_zone(
        HOST_ZONE
        + 'club.test. 300 IN TXT "v=spf1 ip4:192.0.2.25 -all"\n'
        + 'club.test. 300 IN TXT "v=spf1 include:spf.protection.outlook.com ~all"\n'
    )
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.FAIL
    assert len(spf.found) == 2
    assert spf.publish == "v=spf1 ip4:192.0.2.25 include:spf.protection.outlook.com -all"


def test_spf_authorising_the_host_by_address_is_ok(dns_zone, club_server):
    dns_zone(HOST_ZONE + 'club.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"\n')
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.OK, spf.message
    assert spf.publish == ""


def test_spf_authorising_the_host_through_an_include_and_a(dns_zone, club_server):
    dns_zone(
        HOST_ZONE
        + 'club.test. 300 IN TXT "v=spf1 include:_spf.club.test -all"\n'
        + '_spf.club.test. 300 IN TXT "v=spf1 a:smtp.club.test ~all"\n'
    )
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.OK, spf.message


def test_spf_not_authorising_the_host_fails_with_the_fixed_record(dns_zone, club_server):
    dns_zone(HOST_ZONE + 'club.test. 300 IN TXT "v=spf1 a:relay.club.test -all"\n')
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.FAIL
    assert spf.publish == "v=spf1 a:relay.club.test a:smtp.club.test -all"


def test_spf_of_a_service_is_authorised_by_its_include(dns_zone, make_server):
    server = make_server(
        transport=SmtpServer.Transport.MAILGUN, host="", sender_email="news@club.test"
    )
    dns_zone(
        'club.test. 300 IN TXT "v=spf1 include:mailgun.org ~all"\n'
        'mailgun.org. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 ~all"\n'
    )
    assert check_of(domain_check(domain="club.test", server=server), "spf").verdict == Verdict.OK


def test_spf_over_ten_lookups_fails(dns_zone, club_server):
    includes = " ".join(f"include:s{index}.club.test" for index in range(11))
    zone = HOST_ZONE + f'club.test. 300 IN TXT "v=spf1 {includes} -all"\n'
    for index in range(11):
        zone += f's{index}.club.test. 300 IN TXT "v=spf1 ip4:192.0.2.{index} -all"\n'
    dns_zone(zone)
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.FAIL
    assert "10" in spf.message


def test_spf_nested_lookups_count_too(dns_zone, club_server):
    # 1 include at the top, each include holding 3 "a" terms: 1 + 3 * 4 = 13 lookups.
    zone = HOST_ZONE + 'club.test. 300 IN TXT "v=spf1 include:n.club.test -all"\n'
    zone += (
        'n.club.test. 300 IN TXT "v=spf1 '
        + " ".join(f"include:m{index}.club.test" for index in range(4))
        + ' -all"\n'
    )
    for index in range(4):
        zone += f'm{index}.club.test. 300 IN TXT "v=spf1 a a a -all"\n'
    dns_zone(zone)
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.FAIL


def test_spf_plus_all_warns(dns_zone, club_server):
    dns_zone(HOST_ZONE + 'club.test. 300 IN TXT "v=spf1 a:smtp.club.test +all"\n')
    spf = check_of(domain_check(domain="club.test", server=club_server), "spf")
    assert spf.verdict == Verdict.WARN
    assert spf.publish == "v=spf1 a:smtp.club.test ~all"


def test_dmarc_missing_none_and_reject(dns_zone):
    server = dns_zone("")
    dmarc = check_of(domain_check(domain="club.test"), "dmarc")
    assert dmarc.verdict == Verdict.FAIL
    assert dmarc.publish_name == "_dmarc.club.test"
    assert dmarc.publish.startswith("v=DMARC1; p=none")

    server.resolver.set_zone('_dmarc.club.test. 300 IN TXT "v=DMARC1; p=none; aspf=s"\n')
    dmarc = check_of(domain_check(domain="club.test"), "dmarc")
    assert dmarc.verdict == Verdict.WARN
    assert "strict" in dmarc.message
    assert dmarc.found == ["v=DMARC1; p=none; aspf=s"]

    server.resolver.set_zone('_dmarc.club.test. 300 IN TXT "v=DMARC1; p=reject"\n')
    dmarc = check_of(domain_check(domain="club.test"), "dmarc")
    assert dmarc.verdict == Verdict.OK
    assert "reject" in dmarc.message


def test_dmarc_of_the_parent_domain_applies_to_a_subdomain(dns_zone):
    dns_zone('_dmarc.club.test. 300 IN TXT "v=DMARC1; p=quarantine"\n')
    assert check_of(domain_check(domain="news.club.test"), "dmarc").verdict == Verdict.OK


def test_dmarc_without_a_valid_policy_fails(dns_zone):
    dns_zone('_dmarc.club.test. 300 IN TXT "v=DMARC1; rua=mailto:x@club.test"\n')
    assert check_of(domain_check(domain="club.test"), "dmarc").verdict == Verdict.FAIL


def test_dkim_short_key_fails(dns_zone):
    # A 512-bit RSA public key, as old setups still publish (only its size matters here).
    numbers = rsa.RSAPublicNumbers(65537, (1 << 511) | 0x2B)
    short = base64.b64encode(
        numbers.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    dns_zone(f'sel._domainkey.club.test. 300 IN TXT "v=DKIM1; k=rsa; p={short}"\n')
    dkim = check_of(domain_check(domain="club.test", selectors=["sel"]), "dkim")
    assert dkim.verdict == Verdict.FAIL
    assert "512" in dkim.message


def test_dkim_missing_record_fails_with_our_record(dns_zone):
    key = dkim_key_generate(domain="club.test", selector="s2026")
    dns_zone("")
    dkim = check_of(domain_check(domain="club.test"), "dkim")
    assert dkim.verdict == Verdict.FAIL
    assert (dkim.publish_name, dkim.publish) == dkim_txt_record(key=key)


def test_dkim_published_key_is_ok(dns_zone):
    key = dkim_key_generate(domain="club.test", selector="s2026")
    name, value = dkim_txt_record(key=key)
    strings = " ".join(f'"{part}"' for part in dkim_txt_strings(value))
    dns_zone(f"{name}. 300 IN TXT {strings}\n")
    dkim = check_of(domain_check(domain="club.test"), "dkim")
    assert dkim.verdict == Verdict.OK, dkim.message
    assert "2048" in dkim.message


def test_dkim_published_key_other_than_ours_fails(dns_zone):
    old = dkim_key_generate(domain="club.test", selector="s2026")
    name, old_value = dkim_txt_record(key=old)
    new = dkim_key_generate(domain="club.test", selector="s2026")
    strings = " ".join(f'"{part}"' for part in dkim_txt_strings(old_value))
    dns_zone(f"{name}. 300 IN TXT {strings}\n")
    dkim = check_of(domain_check(domain="club.test"), "dkim")
    assert dkim.verdict == Verdict.FAIL
    assert dkim.publish == dkim_txt_record(key=new)[1]


def test_mx_present_missing_and_null(dns_zone):
    server = dns_zone("club.test. 300 IN MX 10 mx.club.test.\n")
    mx = check_of(domain_check(domain="club.test"), "mx")
    assert (mx.verdict, mx.found) == (Verdict.OK, ["10 mx.club.test"])
    server.resolver.set_zone('club.test. 300 IN TXT "hello"\n')
    assert check_of(domain_check(domain="club.test"), "mx").verdict == Verdict.WARN
    server.resolver.set_zone("club.test. 300 IN MX 0 .\n")
    assert check_of(domain_check(domain="club.test"), "mx").verdict == Verdict.WARN


def test_a_dns_timeout_is_could_not_check_never_fail(silent_dns, club_server):
    report = domain_check(domain="club.test", server=club_server, selectors=["sel"])
    assert {check.check: check.verdict for check in report.checks} == {
        "spf": Verdict.UNKNOWN,
        "dmarc": Verdict.UNKNOWN,
        "dkim": Verdict.UNKNOWN,
        "mx": Verdict.UNKNOWN,
    }
    assert report.verdict == Verdict.UNKNOWN


def test_sender_domains_of_a_server(make_server):
    server = make_server(
        from_filter="club.test, Captain@Golf.Test , club.test", sender_email="office@other.test"
    )
    assert server_sender_domains(server) == ["club.test", "golf.test", "other.test"]


def test_server_domain_health_checks_each_sender_domain(dns_zone, make_server):
    dns_zone("")
    server = make_server(from_filter="a.test", sender_email="office@b.test")
    assert [report.domain for report in server_domain_health(server=server)] == ["a.test", "b.test"]


def test_check_domain_command_prints_the_verdicts_and_the_record(dns_zone, club_server, capsys):
    dns_zone(HOST_ZONE)
    call_command("check_domain", "club.test")
    out = capsys.readouterr().out
    assert "SPF" in out and "FAIL" in out
    assert "v=spf1 a:smtp.club.test ~all" in out


def test_check_domain_command_exit_status_on_failure(dns_zone, club_server):
    dns_zone(HOST_ZONE)
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_domain", "club.test", "--strict")
    assert exit_info.value.code == 1


def test_enforced_dmarc_without_spf_or_dkim_fails(dns_zone, club_server):
    dns_zone(
        HOST_ZONE
        + 'club.test. 300 IN TXT "v=spf1 a:relay.club.test -all"\n'
        + '_dmarc.club.test. 300 IN TXT "v=DMARC1; p=reject"\n'
    )
    report = domain_check(domain="club.test", server=club_server)
    dmarc = check_of(report, "dmarc")
    assert dmarc.verdict == Verdict.FAIL
    assert "Neither SPF nor DKIM" in dmarc.message


def test_enforced_dmarc_with_spf_passing_is_ok(dns_zone, club_server):
    dns_zone(
        HOST_ZONE
        + 'club.test. 300 IN TXT "v=spf1 a:smtp.club.test -all"\n'
        + '_dmarc.club.test. 300 IN TXT "v=DMARC1; p=reject"\n'
    )
    assert check_of(domain_check(domain="club.test", server=club_server), "dmarc").verdict == (
        Verdict.OK
    )


def test_a_service_missing_from_spf_is_a_warning_with_the_include(dns_zone, make_server):
    server = make_server(
        transport=SmtpServer.Transport.POSTMARK, host="", sender_email="news@club.test"
    )
    dns_zone('club.test. 300 IN TXT "v=spf1 mx -all"\n')
    spf = check_of(domain_check(domain="club.test", server=server), "spf")
    assert spf.verdict == Verdict.WARN
    assert spf.publish == "v=spf1 mx include:spf.mtasv.net -all"


def test_check_domain_command_names_an_unknown_server(dns_zone):
    dns_zone("")
    with pytest.raises(CommandError, match="No server named"):
        call_command("check_domain", "club.test", "--server", "nope")


def test_check_domain_command_checks_a_given_selector(dns_zone, capsys):
    dns_zone("")
    call_command("check_domain", "club.test", "--selector", "google")
    out = capsys.readouterr().out
    assert "google._domainkey.club.test" not in out  # nothing to publish for a foreign selector
    assert "DKIM" in out and "FAIL" in out


def test_no_spf_without_a_server_says_what_to_name(dns_zone):
    dns_zone("")
    spf = check_of(domain_check(domain="club.test"), "spf")
    assert spf.verdict == Verdict.FAIL
    assert spf.publish == ""
    assert "v=spf1 a:smtp.example.org ~all" in spf.message
