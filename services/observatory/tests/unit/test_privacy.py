import pytest

from app.analysis.privacy import find_pii, mask_pii


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to john.smith@example.co.uk today", "write to [email] today"),
        ("cc: a+tag@mail-server.io, b_c@sub.example.org", "cc: [email], [email]"),
        ("call +44 20 7946 0958 tomorrow", "call [phone] tomorrow"),
        ("US office (555) 123-4567", "US office [phone]"),
        ("my cell is 555-123-4567.", "my cell is [phone]."),
        ("or 555.123.4567", "or [phone]"),
        ("toll free 1-800-555-1234", "toll free [phone]"),
        ("+1 (415) 555-0132 ext", "[phone] ext"),
        ("+4915112345678", "[phone]"),
        ("London 020 7946 0958, mobile 07700 900123", "London [phone], mobile [phone]"),
        ("Berlin 0049 30 12345678", "Berlin [phone]"),
        ("card 4111 1111 1111 1111 expires", "card [card] expires"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("card 4111111111111111", "card [card]"),
        (
            "mastercard 5500 0000 0000 0004 and amex 378282246310005",
            "mastercard [card] and amex [card]",
        ),
        ("server at 192.168.0.1:8080", "server at [ip]:8080"),
        ("ping 1.2.3.4 now", "ping [ip] now"),
        ("range 10.0.0.0/8", "range [ip]/8"),
        ("v6 2001:db8::1 and fe80::1%eth0", "v6 [ip] and [ip]"),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334.", "full [ip]."),
        ("mapped ::ffff:10.0.0.1", "mapped [ip]"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.7 and numpy 1.26.4",
        "released on 2026-03-02 at 10:15:03",
        "dates like 02/03/2026 and 15-01-2024",
        "ISBN 978-3-16-148410-0 and 0-306-40615-2 and 9783161484100",
        "order 1234567890123456 is not a card",  # 16 digits, fails Luhn
        "4111 1111 1111 1112 fails the checksum",
        "timestamp 1700000000000 in milliseconds",
        "the year 2026 and 1234567 rows",
        "a bare number 5551234567",
        "std::vector<int> and a::b in C++",
        "MAC 00:1A:2B:3C:4D:5E",
        "version 1.2.3.4.5 of the tool",
        "score 999.999.999.999",
        "no digits here at all",
        "",
    ],
)
def test_near_misses_are_left_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_find_pii_reports_kinds_and_spans_in_order() -> None:
    text = "mail ana@example.org or call 555-123-4567 from 10.0.0.7"
    found = find_pii(text)
    assert [kind for kind, _ in found] == ["email", "phone", "ip"]
    assert [text[a:b] for _, (a, b) in found] == ["ana@example.org", "555-123-4567", "10.0.0.7"]


def test_overlapping_candidates_become_one_span() -> None:
    # The host part looks like an IP address; the whole thing is one e-mail address.
    assert mask_pii("root@10.0.0.1.example.com") == "[email]"
    assert len(find_pii("root@10.0.0.1.example.com")) == 1


# --------------------------------------------------------------------------------------
# Forms that once slipped through: other separators, other widths, other scripts
# --------------------------------------------------------------------------------------

UNUSUAL_FORMS = [
    ("card", "4111.1111.1111.1111"),
    ("card", "3782.822463.10005"),
    ("card", "４１１１ １１１１ １１１１ １１１１"),
    ("card", "4111\u00a01111\u00a01111\u00a01111"),
    ("phone", "+４４ ２０ ７９４６ ０９５８"),
    ("phone", "(５５５) １２３-４５６７"),
    ("ip", "１９２．１６８．０．１"),
    ("email", "jöhn@exämple.com"),
    ("email", "user@localhost"),
    ("email", "ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    ("email", "анна@пример.рф"),
    ("email", "me@bücher.xn--p1ai"),
    ("card", "4111\u200b1111\u200b1111\u200b1111"),
    ("card", "4111 1111-1111.1111"),
    ("email", "jo\u200bhn@exa\u200bmple.com"),
    ("email", "an\u00adna@exam\ufeffple.org"),
]


@pytest.mark.parametrize(("kind", "secret"), UNUSUAL_FORMS)
def test_unusual_forms_are_masked_and_the_rest_kept(kind: str, secret: str) -> None:
    text = f"Ünïcödé ＡＢＣ, write to {secret} — «today»."
    assert mask_pii(text) == f"Ünïcödé ＡＢＣ, write to [{kind}] — «today»."
    [(found, (start, end))] = find_pii(text)
    assert found == kind and text[start:end] == secret


@pytest.mark.parametrize(
    "text",
    [
        "C = A@B and z = x@y in numpy",
        "@decorator\ndef f(): ...",
        "npm install react@latest and pkg@1.2.3",
        "ssh deploy@buildbox",
        "4111.11.11 and 2024.1.2 and 1.2.3.4.5",
        "４.２ and ３.１１.７",
        "mailto: nobody",
    ],
)
def test_code_and_versions_stay_unmasked(text: str) -> None:
    assert mask_pii(text) == text


def test_mailto_address_without_a_dot_is_masked() -> None:
    assert mask_pii("write mailto:ops@intranet now") == "write mailto:[email] now"
