"""Host normalization: plpython/hosts.py (the reference) and tenancy.normalize_host agree.

The unit tests need no server.  The property tests generate hosts (ASCII and unicode labels, random
case, IDNA dot equivalents, a trailing dot, ports, white space, characters that must be refused)
and require, for every one of them, that SQL and Python return the same host, or both refuse it
with the same sentence (SQLSTATE 22023 on the SQL side).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tenancy_testlib import connect

from plpython import hosts

# --- the reference, without a server ------------------------------------------------------------

GOOD = [
    ("brand.example.com", "brand.example.com"),
    ("Brand.Example.COM.", "brand.example.com"),
    ("  brand.example.com\t\n", "brand.example.com"),
    ("brand.example.com:8443", "brand.example.com"),
    ("brand.example.com.:443", "brand.example.com"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.example.", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("bücher。example", "xn--bcher-kva.example"),
    ("bücher．example", "xn--bcher-kva.example"),
    ("straße.de", "xn--strae-oqa.de"),
    ("strasse.de", "strasse.de"),
    ("βόλος.com", "xn--nxasmm1c.com"),
    ("ＡＢＣ.com", "abc.com"),
    ("ｂüｃｈｅｒ．ｅｘａｍｐｌｅ", "xn--bcher-kva.example"),
    ("Ⅻ.example", "xii.example"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("localhost", "localhost"),
    ("a-b--c.example", "a-b--c.example"),
    ("x.0xgg", "x.0xgg"),
    ("a" * 63 + ".com", "a" * 63 + ".com"),
    ("abcdefghi." * 25 + "com", "abcdefghi." * 25 + "com"),
]

BAD = [
    (None, "must not be null"),
    ("", "is empty"),
    ("   ", "is empty"),
    (".", "is empty"),
    (":80", "is empty"),
    ("a..b.com", "empty label"),
    (".a.com", "empty label"),
    ("a.com..", "empty label"),
    ("a" * 64 + ".com", "longer than 63"),
    ("abcdefghi." * 25 + "comm", "longer than 253"),
    ("a_b.com", "outside the host name grammar"),
    ("a b.com", "outside the host name grammar"),
    ("a.com:", "outside the host name grammar"),
    ("a.com:http", "outside the host name grammar"),
    ("-a.com", "hyphen"),
    ("a-.com", "hyphen"),
    ("1.2.3.4", "IP address literal"),
    ("1.2.3.4:80", "IP address literal"),
    ("127.1", "IP address literal"),
    ("2130706433", "IP address literal"),
    ("a.0x7f", "IP address literal"),
    ("[::1]", "IP address literal"),
    ("[::1]:443", "IP address literal"),
    ("::1", "IP address literal"),
    ("fe80::1%eth0", "IP address literal"),
    ("http://a.com", "URL"),
    ("a.com/", "URL"),
    ("a.com?x=1", "URL"),
    ("a.com#x", "URL"),
    ("user@a.com", "URL"),
    ("*.a.com", "wildcard"),
    ("ü" * 64 + ".com", "longer than 63"),
    ("a\u00a0b.com", "outside the host name grammar"),
    ("ü\uff3fx.com", "outside the host name grammar"),
    ("\u00ad.com", "empty label"),
    ("xn--bücher.com", "valid internationalized domain name"),
    ("\u05d0a.com", "valid internationalized domain name"),
    ("💩.la", "valid internationalized domain name"),
    ("⒈.com", "valid internationalized domain name"),
]

# From Unicode's UTS #46 conformance file IdnaTestV2.txt (Unicode 16.0.0; © 2024 Unicode, Inc., terms of
# use: https://www.unicode.org/terms_of_use.html), a subset: non-ASCII sources with their toAsciiN
# (non-transitional) result, and sources with a toAsciiN error status. Left out: lines whose characters
# IDNA 2008 excludes (NV8/XV8), ASCII xn-- sources (tenancy does not decode ASCII labels), bidi errors
# that span labels (the idna package applies the bidi rule label by label), and U+1E9E, whose mapping
# changed in Unicode 15.1 (the server's python3-idna decides).
IDNA_TEST_V2_VALID = [
    ("faß.de", "xn--fa-hia.de"),
    ("Faß.de", "xn--fa-hia.de"),
    ("à.\u05d0\u0308", "xn--0ca.xn--ssa73l"),
    ("A\u0300.\u05d0\u0308", "xn--0ca.xn--ssa73l"),
    ("à\u0308.\u05d0", "xn--0ca81i.xn--4db"),
    ("a\u094d\u200cb", "xn--ab-fsf604u"),
    ("A\u094d\u200dB", "xn--ab-fsf014u"),
    ("Bücher.de", "xn--bcher-kva.de"),
    ("Bu\u0308cher.de", "xn--bcher-kva.de"),
    ("BÜCHER.DE", "xn--bcher-kva.de"),
    ("BU\u0308CHER.DE", "xn--bcher-kva.de"),
    ("ÖBB", "xn--bb-eka"),
    ("O\u0308BB", "xn--bb-eka"),
    ("βόλος.com", "xn--nxasmm1c.com"),
    ("βο\u0301λος.com", "xn--nxasmm1c.com"),
    ("Βόλος.com", "xn--nxasmm1c.com"),
    ("ΒΟ\u0301ΛΟΣ.COM", "xn--nxasmq6b.com"),
    ("ΒΌΛΟΣ.COM", "xn--nxasmq6b.com"),
    ("βόλοσ.com", "xn--nxasmq6b.com"),
    ("www.ශ\u0dca\u200dර\u0dd3.com", "www.xn--10cl1a0b660p.com"),
    ("WWW.ශ\u0dca\u200dර\u0dd3.COM", "www.xn--10cl1a0b660p.com"),
    ("www.ශ\u0dcaර\u0dd3.com", "www.xn--10cl1a0b.com"),
    ("ꭠ", "xn--3y9a"),
]
IDNA_TEST_V2_ERRORS = [
    "à\u05d0",  # [B5, B6]
    "a\u0300\u05d0",  # [B5, B6]
    "\u0308.\u05d0",  # [B1, V6]
    "a\u200cb",  # [C1]
    "A\u200cB",  # [C1]
    "a\u200db",  # [C2]
    "à.\u05d00\u0660\u05d0",  # [B4]
    "\u0308\u200c\u0308\u0628b",  # [B1, C1, V6]
    "a\u0628\u0308\u200c\u0308",  # [B5, B6, C1]
    "1234567890ä1234567890123456789012345678901234567890123456",  # [A4_2]: a label over 63
]


@pytest.mark.parametrize(("host", "normalized"), GOOD)
def test_normalize_accepts(host: str, normalized: str) -> None:
    assert hosts.normalize(host) == normalized
    assert hosts.normalize(normalized) == normalized, "normalization is idempotent"


@pytest.mark.parametrize(("host", "problem"), BAD)
def test_normalize_refuses(host: str | None, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as exc:
        hosts.normalize(host)
    if host is not None:
        assert hosts.quote(host) in str(exc.value), "the message names the input"


def test_quote_is_quote_literal() -> None:
    assert hosts.quote("a'b") == "'a''b'"
    assert hosts.quote("a\\b") == "E'a\\\\b'"


def test_to_ascii() -> None:
    assert hosts.to_ascii("Bücher") == "xn--bcher-kva"
    assert hosts.to_ascii("ＡＢＣ．ｄｅ") == "abc.de"
    assert hosts.to_ascii("\u00ad") == ""
    with pytest.raises(ValueError, match="hyphens"):
        hosts.to_ascii("xn--ü")
    assert hosts.to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert hosts.to_unicode("xn--strae-oqa.de") == "straße.de"


@pytest.mark.parametrize(("source", "expected"), IDNA_TEST_V2_VALID)
def test_idna_test_v2_valid(source: str, expected: str) -> None:
    assert hosts.normalize(source) == expected


@pytest.mark.parametrize("source", IDNA_TEST_V2_ERRORS)
def test_idna_test_v2_errors(source: str) -> None:
    with pytest.raises(ValueError):
        hosts.normalize(source)


def test_sharp_s_and_final_sigma_are_other_domains_than_ss_and_sigma() -> None:
    assert hosts.normalize("straße.de") != hosts.normalize("strasse.de")
    assert hosts.normalize("βόλος.com") != hosts.normalize("βόλοσ.com")


def test_missing_idna_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(hosts, "_idna_cache", [])
    monkeypatch.setitem(sys.modules, "idna", None)
    with pytest.raises(hosts.MissingPackage) as info:
        hosts.normalize("bücher.example")
    assert info.value.sqlstate == "58P01" and "python3-idna" in info.value.hint
    assert hosts.normalize("ascii.example") == "ascii.example"  # ASCII hosts need no package


@pytest.mark.parametrize(
    ("stored", "now"),
    [
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("*.xn--bcher-kva.example", "*.xn--bcher-kva.example"),
        ("strasse.de", "strasse.de"),
        ("xn--strae-oqa.de", "xn--strae-oqa.de"),
        ("plain.example", "plain.example"),
    ],
)
def test_renormalized(stored: str, now: str) -> None:
    assert hosts.renormalized(stored) == now


@pytest.mark.parametrize(("stored", "words"), [("xn--ls8h.la", "IDNA 2008"), ("xn--zz.example", "punycode")])
def test_renormalized_refuses(stored: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        hosts.renormalized(stored)


@pytest.mark.parametrize(
    ("domain", "stored"),
    [
        ("*.BrandSyncUp.com.", "*.brandsyncup.com"),
        ("  *.bücher.example ", "*.xn--bcher-kva.example"),
        ("Acme.Example.COM", "acme.example.com"),
    ],
)
def test_normalize_domain(domain: str, stored: str) -> None:
    assert hosts.normalize_domain(domain) == stored


@pytest.mark.parametrize("domain", ["*.com", "*", "*.", "*.*.a.com", "a.*.com", "*.1.2.3.4", "*.a_b.com"])
def test_normalize_domain_refuses(domain: str) -> None:
    with pytest.raises(ValueError):
        hosts.normalize_domain(domain)


def test_wildcard_key() -> None:
    assert hosts.wildcard_key("acme.brandsyncup.com") == "*.brandsyncup.com"
    assert hosts.wildcard_key("a.b.brandsyncup.com") == "*.b.brandsyncup.com"
    assert hosts.wildcard_key("brandsyncup.com") is None
    assert hosts.wildcard_key("localhost") is None


# --- SQL against the reference ------------------------------------------------------------------

ASCII_LABEL = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?\Z")
UNICODE_LABEL = st.text(
    alphabet=st.sampled_from("abcxyzABCXYZ0189-üÜßéÉñøåçЖжшωΩ例え日本ÄÖ"), min_size=1, max_size=10
)
ODD_LABEL = st.one_of(
    st.sampled_from(
        ["", "-a", "a-", "a_b", "0x1f", "123", "xn--bcher-kva", "xn--ü", "*", "straße", "βόλος", "💩"]
    ),
    st.sampled_from(["a" * 63, "a" * 64, "ü" * 20, "b" * 62 + "ü"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
)
LABEL = st.one_of(ASCII_LABEL, ASCII_LABEL, UNICODE_LABEL, ODD_LABEL)
DOT = st.sampled_from([".", ".", ".", ".", "。", "．", "｡"])


@st.composite
def host_strings(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LABEL, min_size=1, max_size=5))
    host = labels[0]
    for label in labels[1:]:
        host += draw(DOT) + label
    if draw(st.booleans()):
        host = "".join(c.upper() if draw(st.booleans()) else c for c in host)
    host += draw(st.sampled_from(["", "", ".", "..", "。"]))
    host += draw(st.sampled_from(["", "", ":443", ":8080", ":", ":x1", "/path", "?q", "#f"]))
    host = draw(st.sampled_from(["", "", " ", "\t", "user@", "http://", "[", "*."])) + host
    return host + draw(st.sampled_from(["", "", " ", "\n", "]"]))


HOSTS_SOURCE = (Path(__file__).resolve().parents[2] / "plpython" / "hosts.py").read_text(encoding="utf-8")

# plpython/hosts.py as the server's own Python loaded it (with the server's idna package): the
# reference the SQL must agree with. The server's Python and idna are not the tests' (Python 3.13 and
# a newer idna with PostgreSQL 17 and 18), and their Unicode versions differ.
REFERENCE = """
T = next((v for k, v in GD.items() if isinstance(k, str) and k.startswith("tenancy ")), None)
if T is None:
    plpy.execute("select tenancy._py_boot()")
    T = next(v for k, v in GD.items() if isinstance(k, str) and k.startswith("tenancy "))
try:
    return ["ok", T.hosts.normalize(host)]
except ValueError as exc:
    return ["error", str(exc)]
"""


@pytest.fixture(scope="module")
def conn(tenancy_db: str) -> Iterator[psycopg.Connection]:
    with connect(tenancy_db) as c:
        c.execute("set client_min_messages = warning")
        c.execute(
            "create function pg_temp.reference_normalize(src text, host text) returns text[]"
            f" language plpython3u as $py${REFERENCE}$py$"
        )
        yield c


IDN_REFUSED = "is not a valid internationalized domain name (IDNA 2008): "


def _comparable(message: str) -> str:
    """A refusal without the idna library's own words after ours: the distribution's package and the
    test virtualenv's may word them differently (Debian patches its python3-idna)."""
    head, sep, _ = message.partition(IDN_REFUSED)
    return head + sep


def sql_normalize(conn: psycopg.Connection, host: str | None) -> tuple[str, str]:
    """('ok', host) or ('error', message); any SQLSTATE other than 22023 fails the test."""
    try:
        row = conn.execute("select tenancy.normalize_host(%s)", [host]).fetchone()
    except psycopg.Error as exc:
        assert exc.sqlstate == "22023", f"{host!r}: SQLSTATE {exc.sqlstate}: {exc}"
        assert exc.diag.message_primary is not None
        return ("error", _comparable(exc.diag.message_primary))
    assert row is not None
    return ("ok", row[0])


def py_normalize(host: str | None) -> tuple[str, str]:
    try:
        return ("ok", hosts.normalize(host))
    except ValueError as exc:
        return ("error", _comparable(str(exc)))


def server_py_normalize(conn: psycopg.Connection, host: str | None) -> tuple[str, str]:
    """py_normalize, run by the server's Python (REFERENCE)."""
    row = conn.execute("select pg_temp.reference_normalize(%s, %s)", [HOSTS_SOURCE, host]).fetchone()
    assert row is not None
    return (row[0][0], row[0][1] if row[0][0] == "ok" else _comparable(row[0][1]))


HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(host=host_strings())
@example(host="Bücher.Example.:443")
@example(host="xn--bcher-kva.example")
@example(host="evilbrandsyncup.com")
def test_sql_agrees_with_reference_on_generated_hosts(conn: psycopg.Connection, host: str) -> None:
    assert sql_normalize(conn, host) == server_py_normalize(conn, host)


@HYPOTHESIS
@given(host=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_sql_agrees_with_reference_on_any_text(conn: psycopg.Connection, host: str) -> None:
    assert sql_normalize(conn, host) == server_py_normalize(conn, host)


@HYPOTHESIS
@given(host=host_strings())
def test_normalization_is_idempotent(conn: psycopg.Connection, host: str) -> None:
    kind, value = py_normalize(host)
    if kind == "ok":
        assert hosts.normalize(value) == value
        assert sql_normalize(conn, value) == ("ok", value)


@pytest.mark.parametrize(("host", "normalized"), GOOD)
def test_sql_vectors_accept(conn: psycopg.Connection, host: str, normalized: str) -> None:
    assert sql_normalize(conn, host) == ("ok", normalized)


@pytest.mark.parametrize(("host", "normalized"), IDNA_TEST_V2_VALID)
def test_sql_idna_test_v2_valid(conn: psycopg.Connection, host: str, normalized: str) -> None:
    assert sql_normalize(conn, host) == ("ok", normalized)


@pytest.mark.parametrize("host", IDNA_TEST_V2_ERRORS)
def test_sql_idna_test_v2_errors(conn: psycopg.Connection, host: str) -> None:
    assert sql_normalize(conn, host) == py_normalize(host) and py_normalize(host)[0] == "error"


def test_server_idna_is_the_tests_idna(conn: psycopg.Connection) -> None:
    """The generated-host comparisons need one Unicode version on both sides (requirements-dev.txt pins
    the venv's idna to the distribution's)."""
    import idna

    out: list[str] = []
    conn.add_notice_handler(lambda d: out.append(d.message_primary or ""))
    conn.execute("do language plpython3u $$ import idna; plpy.warning(idna.__version__) $$")
    if out[-1] != idna.__version__:
        pytest.skip(f"the server's idna is {out[-1]}, the tests' {idna.__version__}: pin idna=={out[-1]}")


@pytest.mark.parametrize(("host", "problem"), BAD)
def test_sql_vectors_refuse(conn: psycopg.Connection, host: str | None, problem: str) -> None:
    kind, message = sql_normalize(conn, host)
    assert kind == "error" and problem in message
    assert (kind, message) == server_py_normalize(conn, host)
