"""Shared fixtures: a fresh region per test, boot IDs, the CLI, the C writer."""
import os
import pathlib
import subprocess
import sys
import uuid

import pytest
from hypothesis import settings

ROOT = pathlib.Path(__file__).resolve().parent.parent

# CI runs with HYPOTHESIS_PROFILE=ci: the same examples every run, so a red run
# is reproducible and a green one is not luck; locally each run explores anew.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def region(tmp_path):
    """Path of a region file that does not exist yet."""
    return str(tmp_path / "ring")


@pytest.fixture
def boot_env(monkeypatch):
    """Set $PERSISTLOG_BOOT_ID; returns a function that switches to a new boot ID."""
    def new_boot(boot_id=None):
        boot_id = boot_id or str(uuid.uuid4())
        monkeypatch.setenv("PERSISTLOG_BOOT_ID", boot_id)
        return boot_id
    new_boot()
    return new_boot


def run_cli(*args, region=None, boot_id=None, input=None, env=None, timeout=60):
    """Run ``python -m persistlog ARGS`` in a subprocess; returns CompletedProcess (text)."""
    e = dict(os.environ if env is None else env)
    if boot_id:
        e["PERSISTLOG_BOOT_ID"] = boot_id
    cmd = [sys.executable, "-m", "persistlog"]
    if region:
        cmd += ["--region", region]
    return subprocess.run(cmd + list(args), input=input, capture_output=True, text=True,
                          env=e, timeout=timeout)


@pytest.fixture
def cli():
    """The run_cli function."""
    return run_cli


def _build_writer(out, *defines):
    cc = os.environ.get("CC", "gcc")
    flags = os.environ.get("PERSISTLOG_TEST_CFLAGS", "-O2").split()
    subprocess.run([cc, *flags, *defines, "-std=gnu11", "-Wall", "-I", str(ROOT / "persistlog"),
                    str(ROOT / "tests/c/writer.c"), str(ROOT / "persistlog/_ring.c"),
                    "-o", str(out), "-lpthread"], check=True)
    return str(out)


@pytest.fixture(scope="session")
def c_writer(tmp_path_factory):
    """Path of tests/c/writer.c compiled against the C core."""
    return _build_writer(tmp_path_factory.mktemp("cwriter") / "writer")


@pytest.fixture(scope="session")
def c_writer_testpoints(tmp_path_factory):
    """Path of tests/c/writer.c and the core built with their test points
    (-DPLR_TESTPOINTS): PLR_STOP_AT=NAME stops it there (see writer.c)."""
    return _build_writer(tmp_path_factory.mktemp("cwriter") / "writer-tp", "-DPLR_TESTPOINTS")
