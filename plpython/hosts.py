"""Host name normalization: the reference behind tenancy.normalize_host().

``normalize(host)`` returns the canonical form under which a host is stored in
``tenancy.domain_mappings`` and looked up by ``tenancy.resolve_domain``, or
raises ``ValueError`` with the sentence the SQL functions report (SQLSTATE
22023).  The steps, in this order:

1. trim ASCII white space (space, tab, CR, LF, FF, VT); empty → rejected;
2. a URL (``/``, ``?``, ``#`` or ``@`` anywhere, which covers ``://``) → rejected;
3. a bracketed or bare IPv6 literal (``[`` first, or two colons or more) → rejected;
4. strip a ``:port`` (ASCII digits after the only colon);
5. non-ASCII input only: IDNA 2008 as browsers and registries apply it, UTS #46
   with non-transitional processing and the STD3 rules (``to_ascii``): the whole
   name is mapped (case folding, NFC, full-width letters and the dots U+3002,
   U+FF0E, U+FF61 to ASCII; ``ß`` and final ``ς`` are kept, so ``straße.de`` is
   ``xn--strae-oqa.de``, not ``strasse.de``), then every non-ASCII label is
   checked by IDNA 2008 (code points, hyphens, leading combining marks,
   CONTEXTJ/CONTEXTO, bidi) and written in punycode with the ``xn--`` prefix;
6. lower-case (ASCII only, so no locale can turn ``I`` into a dotless ``ı``);
7. strip one trailing dot (a fully qualified ``example.com.``);
8. then reject, in this order: empty; longer than 253 characters; an empty
   label; a label longer than 63 characters; a character outside
   ``[a-z0-9.-]``; a label that starts or ends with a hyphen; a last label that
   is a number (all digits, or ``0x`` and hex digits), i.e. an IPv4 literal in
   any of the forms a URL parser accepts (``10.0.0.1``, ``127.1``, ``0x7f.1``).

IDNA 2008 is the distribution's ``idna`` package (Debian/Ubuntu: python3-idna),
imported at the first non-ASCII host a backend sees; without it such a host is an
error naming the package (``packages.MissingPackage``).  Labels that are already
ASCII (``xn--bcher-kva``) are checked against the host grammar only; their
punycode is not decoded (so an ASCII host never needs Python).

The ASCII path is re-implemented in SQL (sql/idempotent/30_domains.sql) step for
step, with the same regular expressions; non-ASCII input is handed to this module
by ``tenancy._normalize_host_py``.  ``tests/py/test_hosts.py`` checks that both
agree.

``renormalized(domain)`` says what a domain stored by the IDNA 2003 rule of
tenancy 0.1.0 becomes under this one (the upgrade re-normalizes and reports).

Pure: imported by the tests, embedded into PL/Python bodies by scripts/build_sql.py.
"""

from __future__ import annotations

import re

from .packages import MissingPackage

MAX_HOST = 253
MAX_LABEL = 63
WHITESPACE = " \t\n\r\f\v"
LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
ACE_PREFIX = "xn--"
GRAMMAR = "has characters outside the host name grammar (letters, digits, hyphens, dots)"

# The same patterns as in sql/src/30_domains.sql (PostgreSQL's `$` is Python's `\Z`).
URL_CHARS = re.compile(r"[/?#@]")
PORT = re.compile(r":[0-9]+\Z")
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


_idna_cache: list = []


def _idna():
    """The ``idna`` package; ``MissingPackage`` (naming python3-idna) without it."""
    if not _idna_cache:
        try:
            import idna
        except ImportError as exc:
            raise MissingPackage(
                "idna", "python3-idna", "internationalized host names (IDNA 2008)", exc
            ) from None
        _idna_cache.append(idna)
    return _idna_cache[0]


def _outside_grammar(text: str) -> bool:
    return any(c.isascii() and not (c.isalnum() or c in ".-") for c in text)


def to_ascii(name: str) -> str:
    """A non-ASCII name in its ASCII form: UTS #46 mapping (non-transitional, STD3 rules), then IDNA 2008
    validity and punycode (``xn--``) for each label that is not ASCII after the mapping.

    Lengths, empty labels and the host grammar are left to ``normalize``, so that a long or empty
    result gets the same message as an ASCII one.  Raises ``ValueError`` (without the host) when
    IDNA 2008 refuses, ``MissingPackage`` when the idna package cannot be imported.
    """
    idna = _idna()
    try:
        mapped = idna.uts46_remap(name, std3_rules=True, transitional=False)
    except idna.IDNAError as exc:
        # a character that is, or maps to, ASCII the host grammar refuses (``_``, a no-break space):
        # say it as for ASCII input
        try:
            loose = idna.uts46_remap(name, std3_rules=False, transitional=False)
        except idna.IDNAError:
            loose = name
        if _outside_grammar(name) or _outside_grammar(loose):
            raise _Grammar from None
        raise ValueError(str(exc)) from None
    labels = []
    for label in mapped.split("."):
        if not label.isascii():
            try:
                idna.check_label(label)
            except idna.IDNAError as exc:
                raise ValueError(f"label {quote(label)}: {exc}") from None
            label = ACE_PREFIX + label.encode("punycode").decode("ascii")
        labels.append(label)
    return ".".join(labels)


class _Grammar(ValueError):
    """An ASCII character outside the host grammar, found while mapping a non-ASCII name."""


def to_unicode(host: str) -> str:
    """The display form of a normalized host: ``xn--`` labels decoded (punycode; not validated)."""
    return ".".join(
        label[4:].encode("ascii").decode("punycode") if label.startswith(ACE_PREFIX) else label
        for label in host.split(".")
    )


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
            s = to_ascii(s)
        except _Grammar:
            raise _reject(host, GRAMMAR) from None
        except ValueError as exc:
            raise _reject(host, f"is not a valid internationalized domain name (IDNA 2008): {exc}") from None
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
        raise _reject(host, GRAMMAR)
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


def renormalized(domain: str) -> str:
    """What a stored domain (normalized by tenancy 0.1.0: IDNA 2003) is under IDNA 2008: each ``xn--``
    label decoded and the name normalized again.  The same string for every domain whose labels mean
    the same under both; ``ValueError`` when a decoded label is refused by IDNA 2008 (an emoji, a
    symbol) or is not punycode.  An ASCII label that IDNA 2003 mapped (``strasse`` from ``straße``)
    cannot be told from one typed that way and is kept."""
    wildcard = domain.startswith("*.")
    body = domain[2:] if wildcard else domain
    try:
        text = to_unicode(body)
    except UnicodeError:
        raise ValueError(f"domain {quote(domain)} has an xn-- label that is not valid punycode") from None
    return normalize_domain(("*." if wildcard else "") + text) if not text.isascii() else domain
