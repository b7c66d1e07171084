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


# --- context: a phone, an SSN or a secret needs a reason to be one -----------------------------


@pytest.mark.parametrize(
    "text",
    [
        "processed 1308 8782 rows in 1626ms",  # a bare grouped number, no phone word
        "ZIP 94105-1234, EIN 12-3456789",  # ZIP+4 and employer ids
        "Bestellung 2025-418161, Tel. was not given",  # "Bestellung" holds no "tel"
        "Ship to: 89 Calle Mayor, 971-1177",  # "Calle" is no "call"
        "total 2 548 825 EUR and 8 170 909 EUR",  # amounts with space groups
        '"GET /api/v2/orders/526318843 HTTP/1.1" 304 29438',  # access-log fields
        "I called on 20200526 at 09:30",  # a compact date after a phone word
        'assert parse_phone("6975777") is None',  # a call argument, not a labelled number
        "Loan no. 5498144867, routing 123456789 account 9876543210",
        "| 1 | Art. 482913 Cable | 12 | 1.299,00 € |",
    ],
)
def test_digit_runs_without_a_phone_reason_are_not_phones(text):
    assert found(text) == []


@pytest.mark.parametrize(
    "text, value",
    [
        ("Telefon:\n612 34 56 78", "612 34 56 78"),  # the label on the line before
        ("Ph: 612 34 56 78", "612 34 56 78"),
        ("T: 020 7946 0958", "020 7946 0958"),  # a trunk prefix needs no word
        ("Tel. 01.23.45.67.89", "01.23.45.67.89"),  # French dotted
        ("appelez le 01\u00a023\u00a045\u00a067\u00a089", "01\u00a023\u00a045\u00a067\u00a089"),
        ("Office: +49 (0)30 1234567", "+49 (0)30 1234567"),
        ("Recipient phone: +44 020 7946 0958", "+44 020 7946 0958"),
        ("SUPPORT_PHONE=+4930123456", "+4930123456"),
    ],
)
def test_phones_written_as_people_write_them_are_found(text, value):
    assert found(text) == [("PHONE", value)]


def test_a_phone_column_header_names_the_numbers_below_it():
    text = "id;name;telefono;cp\n1042;Ana;612 34 56 78;28001\n1043;Luis;698 76 54 32;08001\n"
    assert found(text) == [("PHONE", "612 34 56 78"), ("PHONE", "698 76 54 32")]


@pytest.mark.parametrize(
    "text, value",
    [
        ("SSN: 123 45 6789", "123 45 6789"),
        ("Social Security Number of the primary applicant: 123456789", "123456789"),
        ("SSN#123-45-6789", "123-45-6789"),
        ("SSN (9 digits): 123456789", "123456789"),
        ("her SSN 123–45–6789.", "123–45–6789"),  # en dashes
        ("Número de Seguro Social: 123456789", "123456789"),
        ('{"social_security_number": "123 45 6789"}', "123 45 6789"),
        ("Tax ID: 123-45-6789 (sole proprietor)", "123-45-6789"),  # an individual's tax id
        ("Номер социального страхования: 123 45 6789", "123 45 6789"),
        ("Numer ubezpieczenia społecznego: 123456789", "123456789"),
        ("Sosyal güvenlik numarası: 123456789", "123456789"),
        # The label far back on its line, nothing numeric in between.
        (
            "Social Security Number (as printed on the card, without dashes or spaces): 123456789",
            "123456789",
        ),
        ("社会保障番号：１２３－４５－６７８９", "１２３－４５－６７８９"),  # full-width
    ],
)
def test_ssns_are_found_in_every_usual_spelling(text, value):
    assert found(text) == [("SSN", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Tax ID: 12-3456789",  # an EIN
        "Member ID: 123-45-6789",
        "Order number 123-45-6789",
        "Tax ID: 912-78-1234",  # an ITIN (area 9xx)
        # A label far back, but another number between it and the value.
        "Social Security Number on file (last checked 2024, ticket 5531): 123456789",
    ],
)
def test_ssn_shaped_ids_of_other_kinds_are_not_ssns(text):
    assert found(text) == []


@pytest.mark.parametrize(
    "text, value",
    [
        ("電話：０３－１２３４－５６７８", "０３－１２３４－５６７８"),
        ("携帯　０９０－１２３４－５６７８まで", "０９０－１２３４－５６７８"),
        ("Tel：＋８１　３－１２３４－５６７８", "＋８１　３－１２３４－５６７８"),
    ],
)
def test_full_width_numbers_are_read_as_their_digits(text, value):
    assert found(text) == [("PHONE", value)]


def test_ssn_table_columns_are_read_from_their_header():
    csv = 'employee_id,name,SSN,salary\nE1,Ana Lima,123456789,"52,000"\nE2,Bo Li,234 56 7890,1\n'
    assert found(csv) == [("SSN", "123456789"), ("SSN", "234 56 7890")]
    fixed = (
        "EMP#    NAME        SSN           HIRED\nE1      Ana Lima    123456789     2020-01-02\n"
    )
    assert found(fixed) == [("SSN", "123456789")]
    other = "employee_id,name,badge,salary\nE1,Ana Lima,123456789,1\n"
    assert found(other) == []


def test_every_ssn_label_holds_one_of_the_quick_hints():
    from apps.policies.detection.numbers import _SSN_HINTS, _SSN_WORDS

    assert all(any(hint in word for hint in _SSN_HINTS) for word in _SSN_WORDS)


def test_numeric_csv_fields_are_read_one_by_one_and_thousands_stay_whole():
    # A comma between two digits ends a field unless a three-digit group follows it (a
    # thousands separator), and then too when the row is delimited like its header.
    rows = (
        "customer_id,phone,ssn,zip,amount\n"
        "27821,030 5328206,546905932,65200,6323.73\n"
        "86686,030 4898798,444-97-1469,46658,1,234\n"
    )
    assert found(rows) == [
        ("PHONE", "030 5328206"),
        ("SSN", "546905932"),
        ("PHONE", "030 4898798"),
        ("SSN", "444-97-1469"),
    ]
    assert found("id,zip,ssn\n1,12345,546-90-5932\n") == [("SSN", "546-90-5932")]
    # Thousands groups and decimals in prose are no fields.
    assert found("We shipped 1,234 567 890 parcels and 3,14159265 litres.") == []


def test_a_nine_digit_number_after_another_label_is_no_ssn():
    assert found("SSN: 123-45-6789, routing 123456789") == [("SSN", "123-45-6789")]


TOKEN = "Zq8vN3kP1xR7tY5wB2mC9dF4"


@pytest.mark.parametrize(
    "text",
    [
        f"order token {TOKEN[:6]} and id cus_{TOKEN}",  # object ids
        f'"request_id": "req_{TOKEN}"',
        f'var __BUILD_ID__="{TOKEN}";',
        "integrity sha512-" + "q4GFdQdvADf6Vws8dBw9LS+NxMwnUdMLTE1axsoYKjmFFfRJWLyNQGw5RPGi==",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI8B9hvyfSc7YUHJlDQNkWY8UQeUAdbBcC deploy@ci",
        f"STRIPE_PUBLISHABLE_KEY=pk_test_{TOKEN}",
        f'cache_key = "{TOKEN}"',
        f"metadata:\n  name: api-19lyj\n  uid: {TOKEN}",  # "api" in a value is no key name
        'client = Client(api_key="sk-...")  and  OPENAI_API_KEY=YOUR_KEY',
        f"https://www.youtube.com/watch?v=dQw4w9WgXcQ src/components/{TOKEN}V2",
        f'"next_page_token": "{TOKEN}", "token_type": "Bearer"',
    ],
)
def test_random_looking_strings_without_a_secret_name_are_not_secrets(text):
    assert found(text, {"SECRET"}) == []


@pytest.mark.parametrize(
    "text, value",
    [
        (f'session.headers["Authorization"] = "Bearer {TOKEN}"', TOKEN),
        (f"export JWT_SECRET={TOKEN}", TOKEN),
        (f'{{"client_secret": "{TOKEN}"}}', TOKEN),
        (f"https://app.example.com/cb?access_token={TOKEN}&state=1", TOKEN),
        (f"here is the token for prod: {TOKEN}", TOKEN),
        ("- name: DB_PASSWORD\n  value: Hqt69z0tQp!52", "Hqt69z0tQp!52"),
        ("The admin password is FwhCYNA**mt#X12k.", "FwhCYNA**mt#X12k"),
        ("contraseña: pD3#pkRKWJdMOZPh", "pD3#pkRKWJdMOZPh"),
        ("machine api.example.com login ci password 4Bs6vvK4UP!667", "4Bs6vvK4UP!667"),
        ("curl -u admin:Esther-f26L3l1 https://ci.example.com/api", "Esther-f26L3l1"),
    ],
)
def test_secrets_named_as_such_are_found(text, value):
    assert found(text, {"SECRET"}) == [("SECRET", value)]


def test_a_credentials_csv_names_its_secret_column():
    text = f"User name,Access key ID,Secret access key\nci,{AWS},{TOKEN}x9Q\n"
    assert found(text, {"SECRET"}) == [("SECRET", AWS), ("SECRET", TOKEN + "x9Q")]
