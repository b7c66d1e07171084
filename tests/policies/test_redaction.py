"""Redaction, restoration and the egress scanner over the real detector."""

from __future__ import annotations

import pytest

from apps.policies.detection import detect
from apps.policies.redaction import (
    EgressBlocked,
    EgressScanner,
    PIIBlocked,
    Redaction,
    StreamRestorer,
)

ANA = "ana.lima@example.org"
BOB = "bob.stone@example.net"
# A made-up key in the AWS access key format (AKIA + 16 upper-case letters and digits).
AWS_KEY = "AKIAZ7QX4M2LPWE9RT5K"


def redaction(**modes: str) -> Redaction:
    return Redaction(modes, detect, key=b"k" * 32)


def test_mask_gives_one_numbered_placeholder_per_value_and_restores_them():
    r = redaction(EMAIL="mask")
    text = f"Write to {ANA}, copy {BOB}, and again {ANA}."
    out = r.redact_text(text)
    assert out == "Write to [EMAIL_1], copy [EMAIL_2], and again [EMAIL_1]."
    assert ANA not in out and BOB not in out
    assert r.evidence() == {"EMAIL": 3}
    assert r.restore("Sent to [EMAIL_2] and [EMAIL_1].") == f"Sent to {BOB} and {ANA}."


def test_a_placeholder_the_request_did_not_issue_is_left_alone():
    r = redaction(EMAIL="mask")
    r.redact_text(f"mail {ANA}")
    assert r.restore("[EMAIL_7] and [PHONE_1]") == "[EMAIL_7] and [PHONE_1]"


def test_types_without_a_mode_pass_unchanged():
    r = redaction(EMAIL="mask")
    text = f"{ANA} from 10.1.2.3"
    assert r.redact_text(text) == "[EMAIL_1] from 10.1.2.3"


def test_hash_is_keyed_stable_and_not_restorable():
    first, second = redaction(EMAIL="hash"), redaction(EMAIL="hash")
    out = first.redact_text(f"to {ANA}")
    assert out == second.redact_text(f"to {ANA}")
    assert out.startswith("to [EMAIL_") and ANA not in out
    assert not first.restorable
    other_key = Redaction({"EMAIL": "hash"}, detect, key=b"x" * 32)
    assert other_key.redact_text(f"to {ANA}") != out


def test_remove_drops_the_value():
    r = redaction(EMAIL="remove")
    assert r.redact_text(f"mail {ANA} now") == "mail  now"
    assert r.evidence() == {"EMAIL": 1}


def test_block_refuses_naming_the_type_never_the_value():
    r = redaction(EMAIL="mask", SECRET="block")
    with pytest.raises(PIIBlocked) as caught:
        r.redact_text(f"key {AWS_KEY} for {ANA}")
    assert caught.value.status == 403 and caught.value.code == "pii_blocked"
    assert "SECRET" in caught.value.message and AWS_KEY not in caught.value.message


def test_redact_slots_rewrites_containers_in_place():
    r = redaction(EMAIL="mask")
    message = {"role": "user", "content": f"hi {ANA}"}
    call = {"arguments": f'{{"to": "{ANA}"}}'}
    r.redact_slots([(message, "content"), (call, "arguments")])
    assert message["content"] == "hi [EMAIL_1]"
    assert call["arguments"] == '{"to": "[EMAIL_1]"}'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_stream_restoration_across_every_split(size):
    r = redaction(EMAIL="mask")
    r.redact_text(f"{ANA} {BOB}")
    answer = "Dear [EMAIL_1], I wrote to [EMAIL_2] about [x] and [EMAIL_9]. [EMAIL_"
    restorer = StreamRestorer(r)
    pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
    out = "".join(restorer.feed(p) for p in pieces) + restorer.flush()
    assert out == r.restore(answer)
    assert ANA in out and BOB in out and "[EMAIL_9]" in out


@pytest.mark.parametrize("split", range(1, 40))
def test_egress_masks_a_secret_split_anywhere(split):
    answer = f"Here it is: {AWS_KEY} and contact {ANA} for more."
    scanner = EgressScanner({"SECRET", "EMAIL"}, "mask", detect, window=64)
    out = scanner.feed(answer[:split]) + scanner.feed(answer[split:]) + scanner.flush()
    assert AWS_KEY not in out and ANA not in out
    assert out == EgressScanner({"SECRET", "EMAIL"}, "mask", detect).scan(answer)
    assert "[REDACTED_SECRET]" in out and "[REDACTED_EMAIL]" in out


def test_egress_streaming_releases_text_without_waiting_for_the_end():
    scanner = EgressScanner({"SECRET"}, "mask", detect, window=32)
    released = scanner.feed("word " * 40)
    assert released and len(released) >= 200 - 32


def test_egress_block_refuses():
    scanner = EgressScanner({"SECRET"}, "block", detect)
    with pytest.raises(EgressBlocked) as caught:
        scanner.scan(f"the key is {AWS_KEY}")
    assert caught.value.code == "pii_blocked" and AWS_KEY not in caught.value.message
