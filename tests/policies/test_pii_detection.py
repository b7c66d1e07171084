"""The PII and secret detector, type by type, with the false positives it must not make."""

from __future__ import annotations

import sys

import pytest

from apps.policies import detection
from apps.policies.detection import STRUCTURED, DetectorUnavailable, Finding, detect

# Made-up values in real formats; none is a live credential.
AWS = "AKIAZ7QX4M2LPWE9RT5K"
GITHUB = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
ANTHROPIC = "sk-ant-api03-" + "aB3dE5fG7hJ9kL1m" * 6 + "AA"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


def found(text: str, types=None) -> list[tuple[str, str]]:
    return [(f.type, text[f.start : f.end]) for f in detect(text, types)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mail ana.lima@example.org today", ("EMAIL", "ana.lima@example.org")),
        ("Mail an Jürgen.Müller@firma.de bitte", ("EMAIL", "Jürgen.Müller@firma.de")),
        ("call +44 20 7946 0958 now", ("PHONE", "+44 20 7946 0958")),
        ("call (415) 867-5309 now", ("PHONE", "(415) 867-5309")),
        ("Telefon: 030 12345678.", ("PHONE", "030 12345678")),
        ("appelez le 01 23 45 67 89", ("PHONE", "01 23 45 67 89")),
        ("電話番号: 03-1234-5678", ("PHONE", "03-1234-5678")),
        ("E.164 +4915123456789 works", ("PHONE", "+4915123456789")),
        ("card 4111 1111 1111 1111 exp 12/27", ("CARD", "4111 1111 1111 1111")),
        ("amex 3782-822463-10005", ("CARD", "3782-822463-10005")),
        (
            "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX",
            ("IBAN", "DE89 3704 0044 0532 0130 00"),
        ),
        ("pay to GB82WEST12345698765432.", ("IBAN", "GB82WEST12345698765432")),
        ("SSN 123-45-6789 on file", ("SSN", "123-45-6789")),
        ("from 203.0.113.7 at noon", ("IP", "203.0.113.7")),
        ("host 2001:db8::8a2e:370:7334 up", ("IP", "2001:db8::8a2e:370:7334")),
        ("bind [::1]:8080", ("IP", "::1")),
        ("mapped ::ffff:192.0.2.128 ok", ("IP", "::ffff:192.0.2.128")),
        (f"key {AWS} leaked", ("SECRET", AWS)),
        (f"token {GITHUB}", ("SECRET", GITHUB)),
        (f"stripe {STRIPE}", ("SECRET", STRIPE)),
        (f"x-api-key: {ANTHROPIC}", ("SECRET", ANTHROPIC)),
        (f"Authorization: Bearer {JWT}", ("SECRET", JWT)),
        ("postgres://app:S3cr3tPa55@db.internal:5432/app", ("SECRET", "S3cr3tPa55")),
        ("Server=tcp:x.net;User ID=sa;Password=Tr0ub4dor&3x;", ("SECRET", "Tr0ub4dor")),
        ('DB_PASSWORD="hunter2-Hunter2"', ("SECRET", "hunter2-Hunter2")),
    ],
)
def test_each_structured_type_is_found_with_its_exact_span(text, expected):
    assert found(text) == [expected]


def test_private_key_block_is_one_secret_and_a_certificate_is_none():
    body = "MIIEowIBAAKCAQEA7Zq4x9Lm2P0wQv8Ry3Tn6Ks1Ue5Hb7Jc4Fd2Ga9Vw0Xy\nAbC3dE5fG7hJ9kL1mN3pQ5=="
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    cert = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----"
    assert found(f"deploy key:\n{key}\nthanks") == [("SECRET", key)]
    assert found(f"the certificate:\n{cert}\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 was declined",  # fails Luhn
        "id 123e4567-e89b-12d3-a456-426614174000",  # UUID
        "upgrade to v2.14.0 or version 1.2.3.4",  # versions, one shaped like an IP
        "order #48201937 and ORD-2024-001234, invoice 6232990925",  # order numbers
        "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",  # git SHA
        "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        "on 2024-03-15, 15.03.2024 or 3/15/2024",  # dates
        "at 2025-03-14T10:22:31.123Z, epoch 1710411751 (1710411751123 ms)",  # timestamps
        "costs $1,299.00 or 1.299,00 € or 12,50 €",  # prices
        "ISBN 978-3-16-148410-0",  # ISBN
        "MAC 00:1a:2b:3c:4d:5e and time 10:22:31",
        "std::vector<int>::iterator and a[::2]",
        "call getUserAccountSettingsByIdV2 in src/components/UserProfileCard2.tsx",
        "install lodash@4.17.21 and icon@2x.png, see @dataclass",
        "resolution 1920x1080 and 45.5% growth, lat 48.858370, lon 2.294481",
        'API_KEY = os.environ["API_KEY"] and password: ********',
    ],
)
def test_hard_negatives_are_not_findings(text):
    assert found(text) == []


def test_a_hex_digest_named_as_a_key_is_a_secret():
    digest = "9f86d081884c7d659a2feaa0c55ad015"
    assert found(f'"api_key": "{digest}"') == [("SECRET", digest)]
    assert found(f'"etag": "{digest}"') == []


def test_offsets_are_character_offsets_in_non_ascii_text():
    text = "日本語のテキスト 😀 ünd mail: ana@example.org, 電話 +81 3-1234-5678"
    findings = detect(text)
    assert [(f.type, text[f.start : f.end]) for f in findings] == [
        ("EMAIL", "ana@example.org"),
        ("PHONE", "+81 3-1234-5678"),
    ]


def test_empty_and_plain_text_give_nothing():
    assert detect("") == []
    assert detect("no personal data here, only words and 42 numbers") == []


def test_very_long_text_finds_every_item_at_the_right_place():
    filler = "Lorem ipsum dolor sit amet, build 2024.11.3 took 1,234 ms. " * 2000
    text = filler + "mail ana@example.org " + filler + f"key {AWS} " + filler
    findings = detect(text)
    assert [f.type for f in findings] == ["EMAIL", "SECRET"]
    assert text[findings[0].start : findings[0].end] == "ana@example.org"
    assert text[findings[1].start : findings[1].end] == AWS


def test_findings_are_sorted_and_never_overlap():
    text = f"a@example.org {AWS} +44 20 7946 0958 10.0.0.1 4111111111111111 b@example.org"
    findings = detect(text)
    assert [f.start for f in findings] == sorted(f.start for f in findings)
    for a, b in zip(findings, findings[1:], strict=False):
        assert a.end <= b.start


def test_overlap_keeps_the_longer_then_the_more_specific_finding():
    resolve = detection._resolve
    assert resolve([(0, 10, "PHONE", 1.0), (2, 16, "CARD", 1.0)]) == [Finding("CARD", 2, 16)]
    assert resolve([(0, 16, "PHONE", 1.0), (0, 16, "CARD", 1.0)]) == [Finding("CARD", 0, 16)]
    assert resolve([(0, 5, "IP", 1.0), (6, 9, "EMAIL", 1.0)]) == [
        Finding("IP", 0, 5),
        Finding("EMAIL", 6, 9),
    ]


def test_types_narrow_the_search_and_unknown_types_are_refused():
    text = f"mail ana@example.org key {AWS}"
    assert found(text, {"EMAIL"}) == [("EMAIL", "ana@example.org")]
    assert found(text, ["SECRET"]) == [("SECRET", AWS)]
    assert detect(text, ()) == []
    with pytest.raises(ValueError, match="BOGUS"):
        detect(text, {"BOGUS"})
    assert frozenset(detection.ENTITY_TYPES) - {"PERSON", "ADDRESS"} == STRUCTURED


def test_people_types_are_delegated_and_a_missing_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "apps.policies.detection.people", None)
    monkeypatch.delattr(detection, "people", raising=False)
    with pytest.raises(DetectorUnavailable, match="apps.policies.detection.people"):
        detect("Ana Lima lives at 1 Main St", {"PERSON"})
    # Structured types alone never need it.
    assert found("mail ana@example.org", None) == [("EMAIL", "ana@example.org")]


def test_people_findings_are_merged_with_structured_ones(monkeypatch):
    class People:
        @staticmethod
        def find_people(text):
            at = text.index("Ana Lima")
            return [(at, at + 8, "PERSON")]

    monkeypatch.setitem(sys.modules, "apps.policies.detection.people", People)
    monkeypatch.setattr(detection, "people", People, raising=False)
    text = "Ana Lima <ana@example.org>"
    assert found(text, {"PERSON", "EMAIL"}) == [
        ("PERSON", "Ana Lima"),
        ("EMAIL", "ana@example.org"),
    ]
