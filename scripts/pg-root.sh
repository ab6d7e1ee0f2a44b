#!/usr/bin/env bash
# A PostgreSQL of another major than the host's, as Debian binary packages inside a debootstrap root.
#
#   scripts/pg-root.sh MAJOR            prints the root's directory (makes it first when missing)
#   scripts/pg-root.sh MAJOR --bin      prints the directory of its host-side programs (see below)
#   scripts/pg-root.sh MAJOR --rebuild  makes it again (newer packages)
#
# 17 comes from Debian 13 (trixie), 18 from sid: neither installs on the host's Debian 12, so
# `debootstrap --variant=minbase SUITE` makes a root under ~/.cache/tenancy/roots/pgMAJOR and
# apt-get installs there the server, PL/Python, the PGXS files, pgTAP and the server's Python
# packages. The archive is the one the host's own apt source list names (TENANCY_DEBIAN_MIRROR
# overrides it); no line is added to the host's apt sources. Decision record:
# docs/decisions/0001-server-matrix.md.
#
# The root's BIN directory (--bin) holds one program per PostgreSQL program, for the host:
#   - server side (postgres, initdb, pg_ctl, pg_basebackup, pg_controldata): runs chrooted into the
#     root as its postgres user; every argument and PGHOST/PGDATA naming a path under the root is
#     mapped to the path inside it. Files such a program touches must live under the root.
#   - client side (psql, pg_dump, pg_restore, pgbench, pg_config, ...): runs on the host through the
#     root's own dynamic loader and libraries, so host paths work as they are. pg_config therefore
#     reports the root's directories as host paths (make install PG_CONFIG=BIN/pg_config installs
#     into the root).
# Needs root (debootstrap, chroot) and debootstrap on the host (scripts/deps.sh installs it).
set -euo pipefail

MAJOR=${1:?usage: scripts/pg-root.sh MAJOR [--bin|--rebuild]}
MODE=${2:-}
case "$MAJOR" in
    17) SUITE=trixie ;;
    18) SUITE=sid ;;
    *) SUITE=${TENANCY_ROOT_SUITE:-} ;;
esac
[ -n "$SUITE" ] || { echo "pg-root: no Debian suite known for PostgreSQL $MAJOR (set TENANCY_ROOT_SUITE)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "pg-root: needs root (debootstrap, chroot); run it through sudo" >&2; exit 2; }

CACHE=${TENANCY_ROOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenancy/roots}
ROOT="$CACHE/pg$MAJOR"
BIN="$ROOT/.tenancy-bin"
PACKAGES="postgresql-$MAJOR postgresql-plpython3-$MAJOR postgresql-server-dev-$MAJOR postgresql-$MAJOR-pgtap python3-cryptography python3-idna"
STAMP="$ROOT/.tenancy-root"
# bumped when what this script writes into a root changes (the root is then made again), and when
# the host-side programs change (only they are written again)
LAYOUT=1
BIN_LAYOUT=2

say() { echo "== pg-root: $*" >&2; }

# The Debian archive of the host's own apt sources: the URI of the entry for the host's suite.
archive_uri() {
    if [ -n "${TENANCY_DEBIAN_MIRROR:-}" ]; then echo "$TENANCY_DEBIAN_MIRROR"; return; fi
    local codename f uri
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v want="$codename" 'BEGIN { RS = ""; FS = "\n" }
            { uris = ""; suites = ""; types = ""
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                  if ($i ~ /^Suites:/) { suites = " " $i " " }
                  if ($i ~ /^Types:/) { types = " " $i " " }
              }
              if (types ~ / deb / && suites ~ (" " want " ")) { split(uris, u, /[ \t]+/); print u[1]; exit } }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(sed -n 's/^deb[ \t]\+\(\[[^]]*\][ \t]\+\)\?\([^ \t]\+\)[ \t]\+'"$codename"'[ \t].*/\2/p' "$f" | head -1)
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    echo "pg-root: no Debian archive for suite '$codename' in /etc/apt/sources.list*; set TENANCY_DEBIAN_MIRROR" >&2
    return 1
}

in_root() { chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "${@:2}"; }

# The host-side programs of a finished root (see the header).
write_bin() {
    local root=$1 bin="$1/.tenancy-bin" loader libs pgbin uid gid name
    loader=$(cd "$root" && find usr/lib -maxdepth 2 -name 'ld-linux*.so.*' -type f | head -1)
    [ -n "$loader" ] || { echo "pg-root: no dynamic loader in $root" >&2; return 1; }
    libs=$(cd "$root" && find usr/lib -maxdepth 1 -type d -name '*-linux-gnu' | sed "s|^|$ROOT/|" | paste -sd:)
    pgbin="/usr/lib/postgresql/$MAJOR/bin"
    uid=$(awk -F: '$1 == "postgres" { print $3 }' "$root/etc/passwd")
    gid=$(awk -F: '$1 == "postgres" { print $4 }' "$root/etc/passwd")
    [ -n "$uid" ] || { echo "pg-root: no postgres user in $root" >&2; return 1; }
    rm -rf "$bin"
    mkdir -p "$bin"
    for path in "$root$pgbin"/*; do
        name=$(basename "$path")
        [ "$(head -c 4 "$path" | od -An -c | tr -d ' ')" = '177ELF' ] || continue  # scripts (pgindent)
        case "$name" in
        postgres | postmaster | initdb | pg_ctl | pg_basebackup | pg_controldata | pg_resetwal | pg_rewind | pg_upgrade | pg_checksums)
            cat >"$bin/$name" <<EOF
#!/usr/bin/env bash
# $name of PostgreSQL $MAJOR, run inside $ROOT as its postgres user (written by scripts/pg-root.sh)
R='$ROOT'
args=()
for a in "\$@"; do args+=("\${a//\$R\//\/}"); done
envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/var/lib/postgresql)
for v in PGHOST PGPORT PGUSER PGDATABASE PGDATA PGOPTIONS PGPASSWORD PGAPPNAME PGCONNECT_TIMEOUT; do
    [ -n "\${!v:-}" ] && envs+=("\$v=\${!v//\$R\//\/}")
done
cwd=/
case "\$PWD/" in "\$R"/*) cwd=\${PWD#\$R} ;; esac
exec chroot --userspec=$uid:$gid "\$R" /usr/bin/env -i "\${envs[@]}" /bin/sh -c 'cd "\$0" 2>/dev/null || cd /; exec "\$@"' "\$cwd" $pgbin/$name "\${args[@]}"
EOF
            ;;
        *)
            cat >"$bin/$name" <<EOF
#!/bin/sh
# $name of PostgreSQL $MAJOR, run on the host through the root's loader and libraries (scripts/pg-root.sh)
exec '$ROOT/$loader' --library-path '$libs' '$ROOT$pgbin/$name' "\$@"
EOF
            ;;
        esac
        chmod 755 "$bin/$name"
    done
    echo "$BIN_LAYOUT" >"$bin/.layout"
}

make_root() {
    local uri tmp start
    uri=$(archive_uri)
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap (the host's own Debian package)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    start=$(date +%s)
    tmp="$CACHE/.pg$MAJOR.new"
    umount "$tmp/proc" 2>/dev/null || true
    rm -rf "$tmp"
    mkdir -p "$tmp"
    say "debootstrap --variant=minbase $SUITE (PostgreSQL $MAJOR) into $ROOT"
    debootstrap --variant=minbase "$SUITE" "$tmp" "$uri" >"$CACHE/pg$MAJOR.debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/pg$MAJOR.debootstrap.log" >&2; return 1; }
    # inside the root only: its apt source, no service starts, no default cluster
    echo "deb $uri $SUITE main" >"$tmp/etc/apt/sources.list"
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
    chmod 755 "$tmp/usr/sbin/policy-rc.d"
    mkdir -p "$tmp/etc/postgresql-common"
    echo "create_main_cluster = false" >"$tmp/etc/postgresql-common/createcluster.conf"
    say "apt-get install $PACKAGES"
    # maintainer scripts need /proc (sid's postgresql-common runs systemd-tmpfiles): mounted for the
    # installation only
    mount -t proc proc "$tmp/proc"
    trap 'umount "$tmp/proc" 2>/dev/null || true' EXIT
    local rc=0
    # sid's Release file may be past its Valid-Until date on a frozen mirror
    in_root "$tmp" apt-get -qq -o Acquire::Check-Valid-Until=false update >"$CACHE/pg$MAJOR.apt.log" 2>&1 \
        && in_root "$tmp" apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
            $PACKAGES >>"$CACHE/pg$MAJOR.apt.log" 2>&1 \
        || rc=$?
    umount "$tmp/proc"
    trap - EXIT
    [ "$rc" -eq 0 ] || { tail -20 "$CACHE/pg$MAJOR.apt.log" >&2; return 1; }
    in_root "$tmp" apt-get clean
    rm -rf "$ROOT"
    mv "$tmp" "$ROOT"
    printf 'layout %s\nsuite %s\npackages %s\nversion %s\n' "$LAYOUT" "$SUITE" "$PACKAGES" \
        "$(in_root "$ROOT" /usr/lib/postgresql/"$MAJOR"/bin/postgres --version)" >"$STAMP"
    say "ready in $(($(date +%s) - start)) s: $(sed -n 's/^version //p' "$STAMP")"
}

main() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/pg$MAJOR.lock"
    flock 9
    if [ "$MODE" = --rebuild ] || ! grep -qx "layout $LAYOUT" "$STAMP" 2>/dev/null \
        || ! grep -qx "packages $PACKAGES" "$STAMP" 2>/dev/null; then
        make_root
    fi
    # the host-side programs are cheap to write again when this script changes them
    [ "$(cat "$BIN/.layout" 2>/dev/null)" = "$BIN_LAYOUT" ] || write_bin "$ROOT"
    case "$MODE" in
        --bin) echo "$BIN" ;;
        *) echo "$ROOT" ;;
    esac
}

main "$@"
exit
