"""Host name normalization: the reference behind tenancy.normalize_host().

``normalize(host)`` returns the canonical form under which a host is stored in
``tenancy.domain_mappings`` and looked up by ``tenancy.resolve_domain``, or
raises ``ValueError`` with the sentence the SQL functions report (SQLSTATE
22023).  The steps, in this order:

1. trim ASCII white space (space, tab, CR, LF, FF, VT); empty → rejected;
2. a URL (``/``, ``?``, ``#`` or ``@`` anywhere, which covers ``://``) → rejected;
3. a bracketed or bare IPv6 literal (``[`` first, or two colons or more) → rejected;
4. strip a ``:port`` (ASCII digits after the only colon);
5. non-ASCII input only: split into labels at ``.`` and its IDNA equivalents
   (U+3002, U+FF0E, U+FF61) and convert each non-ASCII label with IDNA 2003
   ToASCII: nameprep (case folding, NFKC, prohibited characters, bidi rules)
   then punycode with the ``xn--`` prefix (``to_ascii_label``);
6. lower-case (ASCII only, so no locale can turn ``I`` into a dotless ``ı``);
7. strip one trailing dot (a fully qualified ``example.com.``);
8. then reject, in this order: empty; longer than 253 characters; an empty
   label; a label longer than 63 characters; a character outside
   ``[a-z0-9.-]``; a label that starts or ends with a hyphen; a last label that
   is a number (all digits, or ``0x`` and hex digits), i.e. an IPv4 literal in
   any of the forms a URL parser accepts (``10.0.0.1``, ``127.1``, ``0x7f.1``).

The stdlib implements IDNA 2003 (RFC 3490/3491, Unicode 3.2), not IDNA 2008 /
UTS #46: ``ß`` and ``ς`` are mapped (``straße`` → ``strasse``), and the stdlib's nameprep
lets code points unassigned in Unicode 3.2 through (an emoji label is encoded; IDNA 2008
would refuse it).  Labels that are already
ASCII (``xn--bcher-kva``) are checked against the host grammar only; their
punycode is not decoded.

The ASCII path is re-implemented in SQL (sql/src/30_domains.sql) step for step,
with the same regular expressions; non-ASCII input is handed to this module by
``tenancy._normalize_host_py``.  ``tests/py/test_hosts.py`` checks that both agree.

Pure and stdlib only: imported by the tests, embedded into PL/Python bodies by
scripts/build_sql.py.
"""

from __future__ import annotations

import re
from encodings import idna

MAX_HOST = 253
MAX_LABEL = 63
WHITESPACE = " \t\n\r\f\v"
LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
ACE_PREFIX = "xn--"

# The same patterns as in sql/src/30_domains.sql (PostgreSQL's `$` is Python's `\Z`).
URL_CHARS = re.compile(r"[/?#@]")
PORT = re.compile(r":[0-9]+\Z")
DOTS = re.compile("[.\u3002\uff0e\uff61]")
EMPTY_LABEL = re.compile(r"(^|\.)(\.|\Z)")
LONG_LABEL = re.compile(r"[^.]{64}")
OUTSIDE_GRAMMAR = re.compile(r"[^a-z0-9.-]")
EDGE_HYPHEN = re.compile(r"(^|\.)-|-(\.|\Z)")
NUMERIC_LAST_LABEL = re.compile(r"(^|\.)([0-9]+|0x[0-9a-f]*)\Z")


def quote(value: str) -> str:
    """``value`` quoted the way PostgreSQL's quote_literal() (and format('%L')) quotes it."""
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def to_ascii_label(label: str) -> str:
    """One label in its ASCII form: IDNA 2003 ToASCII (nameprep, punycode, ``xn--``).

    An ASCII label is only lower-cased.  Lengths and the host grammar are left to
    ``normalize``, so that a long or empty result gets the same message as an
    ASCII one.  Raises ``ValueError`` (without the host) when nameprep refuses.
    """
    if label.isascii():
        return label.translate(LOWER)
    try:
        mapped = idna.nameprep(label)
    except UnicodeError as exc:
        raise ValueError(f"label {quote(label)} cannot be converted by IDNA 2003 ({exc})") from None
    if mapped.isascii():
        return mapped.translate(LOWER)
    if mapped.startswith(ACE_PREFIX):
        raise ValueError(f"label {quote(label)} starts with the ACE prefix xn-- but is not ASCII")
    return ACE_PREFIX + mapped.encode("punycode").decode("ascii")


def to_unicode(host: str) -> str:
    """The display form of a normalized host: ``xn--`` labels decoded (IDNA 2003 ToUnicode)."""
    return ".".join(idna.ToUnicode(label) if label else label for label in host.split("."))


def _reject(host: str, problem: str) -> ValueError:
    return ValueError(f"host name {quote(host)} {problem}")


def normalize(host: str | None) -> str:
    """The normalized form of ``host``; ``ValueError`` (message as in SQL) when it is not a host name."""
    if host is None:
        raise ValueError("host name must not be null")
    s = host.strip(WHITESPACE)
    if not s:
        raise _reject(host, "is empty")
    if s.startswith("*."):
        raise _reject(host, "is a wildcard: only a domain mapping may be one (*.example.com)")
    if URL_CHARS.search(s):
        raise _reject(host, "looks like a URL: pass the host only (no scheme, user, path, query or fragment)")
    if s.startswith("[") or s.count(":") > 1:
        raise _reject(host, "is an IP address literal, not a host name")
    s = PORT.sub("", s)
    if not s.isascii():
        try:
            s = ".".join(to_ascii_label(label) for label in DOTS.split(s))
        except ValueError as exc:
            raise _reject(host, f"is not a valid internationalized domain name: {exc}") from None
    s = s.translate(LOWER)
    if s.endswith("."):
        s = s[:-1]
    if not s:
        raise _reject(host, "is empty")
    if len(s) > MAX_HOST:
        raise _reject(host, f"is longer than {MAX_HOST} characters")
    if EMPTY_LABEL.search(s):
        raise _reject(host, "has an empty label")
    if LONG_LABEL.search(s):
        raise _reject(host, f"has a label longer than {MAX_LABEL} characters")
    if OUTSIDE_GRAMMAR.search(s):
        raise _reject(host, "has characters outside the host name grammar (letters, digits, hyphens, dots)")
    if EDGE_HYPHEN.search(s):
        raise _reject(host, "has a label that starts or ends with a hyphen")
    if NUMERIC_LAST_LABEL.search(s):
        raise _reject(host, "is an IP address literal, not a host name")
    return s


def normalize_domain(domain: str | None) -> str:
    """The stored form of a mapping's domain: a host as ``normalize``, or ``*.`` and a host of 2+ labels."""
    if domain is None:
        raise ValueError("domain must not be null")
    s = domain.strip(WHITESPACE)
    if not s.startswith("*."):
        return normalize(domain)
    try:
        base = normalize(s[2:])
    except ValueError as exc:
        raise ValueError(f"wildcard domain {quote(domain)} is malformed: {exc}") from None
    if "." not in base:
        raise ValueError(
            f"wildcard domain {quote(domain)} needs a base of at least two labels (like *.example.com)"
        )
    return "*." + base


def wildcard_key(host: str) -> str | None:
    """The only wildcard that may serve a normalized host: ``*.`` and the host without its first label.

    ``acme.brandsyncup.com`` → ``*.brandsyncup.com``; None when the base would have fewer than two labels.
    """
    _, dot, base = host.partition(".")
    return "*." + base if dot and "." in base else None
