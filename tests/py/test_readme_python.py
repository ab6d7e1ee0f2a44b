"""The README's Python sections followed to the letter, as a new user would: a fresh virtualenv, the
package installed with the README's pip line from this checkout, the DBA's SQL run with psql, a Django
project made with startproject and the README's files, migrated and tested as the owner role and
served as the application role (curl through the real runserver), then the SQLAlchemy app.

Each block the test runs is the README's own, found by the `<!-- readme-test: NAME -->` line above
it; the only substitutions are the server's address and free ports. The dependencies come from a
wheel cache (TENANCY_WHEEL_CACHE, default ~/.cache/pg-tenancy-tests/wheels, filled from the package
index on the first run), so that a run takes a few seconds of pip.

It uses the README's names (roles shop_owner and shop_app, databases shop and tenancy_template), so
it skips where they exist already (a server that is not a throwaway one), and drops them afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from tenancy_testlib import connect, pg_bin

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- readme-test: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)\n```", re.DOTALL)
WHEELS = Path(os.environ.get("TENANCY_WHEEL_CACHE") or Path.home() / ".cache" / "pg-tenancy-tests" / "wheels")
NAMES = {"roles": ("shop_owner", "shop_app"), "databases": ("shop", "tenancy_template")}


def blocks() -> dict[str, str]:
    found = {m["name"]: m["body"] for m in BLOCK.finditer(README)}
    assert len(found) == len(BLOCK.findall(README)), "a readme-test name is used twice"
    return found


def commands(body: str) -> list[str]:
    """The shell lines of a block, comments dropped."""
    out = []
    for line in body.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _requirements() -> list[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(meta["build-system"]["requires"]) + list(meta["project"]["dependencies"])
    for extra in meta["project"]["optional-dependencies"].values():
        reqs += extra
    return reqs


def wheelhouse() -> Path:
    """Wheels of every dependency of the package (and of its build), downloaded once."""
    reqs = _requirements()
    stamp = WHEELS / f".stamp-{hashlib.sha256(' '.join(sorted(reqs)).encode()).hexdigest()[:16]}"
    if not stamp.exists():
        WHEELS.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "--dest",
                str(WHEELS),
                *reqs,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            pytest.skip(f"the dependencies cannot be downloaded into the wheel cache: {out.stderr[-500:]}")
        stamp.touch()
    return WHEELS


def clone(dest: Path) -> None:
    """A copy of the checkout's files (tracked, and new ones not ignored), as a clone would have them."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    )
    for name in filter(None, out.stdout.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def sh(line: str, cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    print(f"$ {line}", file=sys.stderr, flush=True)
    out = subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    print(f"  ({time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True)
    assert out.returncode == 0, f"$ {line}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture
def server(server_dsn: str) -> Iterator[dict[str, str]]:
    """The README's roles and databases do not exist yet; dropped afterwards."""
    with connect(server_dsn) as conn:
        taken = conn.execute(
            "select rolname from pg_roles where rolname = any(%s)"
            " union all select datname from pg_database where datname = any(%s)",
            [list(NAMES["roles"]), list(NAMES["databases"])],
        ).fetchall()
    if taken:
        pytest.skip(f"the README's names exist on this server already: {[t[0] for t in taken]}")
    params = {k: str(v) for k, v in conninfo_to_dict(server_dsn).items()}
    try:
        yield params
    finally:
        with connect(server_dsn) as conn:
            conn.execute("update pg_database set datistemplate = false where datname = 'tenancy_template'")
            for db in (*NAMES["databases"], "test_shop"):
                conn.execute(f"drop database if exists {db} with (force)")
            for role in NAMES["roles"]:
                conn.execute(f"drop role if exists {role}")


def test_the_readme_python_sections_work_as_written(server: dict[str, str], tmp_path: Path) -> None:
    b = blocks()
    wheels = wheelhouse()
    port = server.get("port", "5432")
    # the server as the README's clients reach it: over TCP on this machine
    host = "127.0.0.1"

    # --- install, as the README says, in a fresh virtualenv -------------------------------------------
    work = tmp_path / "work"
    clone(work / "tenancy")  # "git clone <this repository's URL> tenancy": this working tree's files
    venv.create(tmp_path / "venv", with_pip=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "DJANGO", "PG", "PIP_"))
    }
    env.update(
        PATH=f"{tmp_path / 'venv' / 'bin'}:{os.environ['PATH']}",
        PIP_FIND_LINKS=str(wheels),
        PIP_NO_INDEX="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    pip_lines = [c for c in commands(b["pip"]) if c.startswith("pip install")]
    assert pip_lines == ['pip install "./tenancy[django]"'], pip_lines
    # the README's line, with both extras it names (one build of the package instead of two)
    sh(pip_lines[0].replace("[django]", "[django,sqlalchemy]") + " -q", work, env)
    shown = sh("pip show pg-tenancy", work, env).stdout
    assert "Name: pg-tenancy" in shown and "Version: 0.2.0" in shown
    site = work / "site"
    site.mkdir()
    imported = sh("python -c 'import tenancy, tenancy.django; print(tenancy.__file__)'", site, env).stdout
    assert str(tmp_path / "venv") in imported and str(ROOT) not in imported, imported

    # --- the DBA's part, with psql ---------------------------------------------------------------------
    psql_env = dict(env, PGHOST=host, PGPORT=port, PGUSER=server.get("user", "postgres"))
    psql = [pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for db, block in (
        ("postgres", "django-roles"),
        ("shop", "django-database"),
        ("tenancy_template", "django-database"),
    ):
        out = subprocess.run([*psql, "-d", db], input=b[block], env=psql_env, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
        assert out.returncode == 0, f"{block} in {db}: {out.stderr}"

    # --- Django -----------------------------------------------------------------------------------------
    denv = dict(env, DB_HOST=host, DB_PORT=port)
    sh("django-admin startproject mysite . && python manage.py startapp shop", site, denv)
    with (site / "mysite" / "settings.py").open("a") as fh:
        fh.write("\n" + b["django-settings"] + "\n")
    (site / "shop" / "models.py").write_text(b["django-models"] + "\n")
    (site / "shop" / "views.py").write_text(b["django-views"] + "\n")
    (site / "mysite" / "urls.py").write_text(b["django-urls"] + "\n")
    (site / "shop" / "tests.py").write_text(b["django-tests"] + "\n")
    for line in commands(b["django-makemigrations"]):
        sh(line, site, denv)
    second = site / "shop" / "migrations" / "0002_tenancy.py"
    assert second.exists()
    second.write_text(b["django-migration"] + "\n")
    first = (site / "shop" / "migrations" / "0001_initial.py").read_text()
    assert "tenancy.django.TenantField()" in first and "_default_tenant" not in first, first

    migrate, test, serve = commands(b["django-run"])
    sh(migrate, site, denv)
    out = sh(test, site, denv)
    assert "Ran 1 test" in out.stderr and "OK" in out.stderr, out.stderr
    with connect(f"host={host} port={port} user={server.get('user', 'postgres')} dbname=shop") as conn:
        assert conn.execute(
            "select count(*) from tenancy.scoped_tables where relid = 'shop_order'::regclass"
        ).fetchone() == (1,)

    web = free_port()
    assert serve.endswith("runserver 8000")
    line = serve.replace("runserver 8000", f"runserver {web} --noreload")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec env {line}"],
        cwd=site,
        env=denv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", web), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"runserver did not start:\n{proc.stdout.read() if proc.stdout else ''}")
                time.sleep(0.2)
        answers = []
        for line in commands(b["django-curl"]):
            assert line.startswith("curl ") and "localhost:8000" in line
            out = sh(line.replace("curl ", "curl -sS --fail ").replace("localhost:8000", f"localhost:{web}"),
                     site, denv, timeout=60)  # fmt: skip
            answers.append(json.loads(out.stdout))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with connect(f"host={host} port={port} user={server.get('user', 'postgres')} dbname=shop") as conn:
        acme, globex = (
            str(conn.execute("select tenancy.tenant_id(%s)", [p]).fetchone()[0])  # type: ignore[index]
            for p in ("acme", "globex")
        )
    assert answers == [{"tenant": acme, "titles": ["a1"]}, {"tenant": globex, "titles": []}], answers

    # --- SQLAlchemy -------------------------------------------------------------------------------------
    alc = tmp_path / "alchemy"
    alc.mkdir()
    (alc / "app.py").write_text(b["sqlalchemy-app"] + "\n")
    (alc / "use.py").write_text(b["sqlalchemy-use"] + "\n")
    urls = re.findall(r"(APP|OWNER)_DATABASE_URL=(postgresql\+psycopg://\S+?)`", README)
    assert dict(urls).keys() == {"APP", "OWNER"}, urls
    senv = dict(env, **{f"{k}_DATABASE_URL": u.replace("@localhost/", f"@{host}:{port}/") for k, u in urls})
    out = sh("python use.py", alc, senv)
    assert out.stdout.strip() == "['hello'] []", out.stdout
    # the application role owns nothing and is no superuser: what it saw was the policies' doing
    with connect(f"host={host} port={port} user={server.get('user', 'postgres')} dbname=shop") as conn:
        assert conn.execute("select tableowner from pg_tables where tablename = 'notes'").fetchone() == (
            "shop_owner",
        )
        assert conn.execute(
            "select rolsuper or rolbypassrls from pg_roles where rolname = 'shop_app'"
        ).fetchone() == (False,)


def test_every_readme_test_block_is_used() -> None:
    src = Path(__file__).read_text()
    for name in blocks():
        assert f'"{name}"' in src, f"README block {name} is not exercised"
