"""Fixtures for the QEMU tests: one module build and initramfs per session."""

import pytest

import qemu_harness


def pytest_configure(config):
    # Also declared in pyproject.toml; repeated so this directory works alone.
    config.addinivalue_line("markers", "qemu: boots a real kernel in QEMU (run with -m qemu)")


@pytest.fixture(scope="session")
def kit(tmp_path_factory):
    """persistlog.ko built against the Debian kernel the guest boots, and its initramfs."""
    try:
        return qemu_harness.make_kit(tmp_path_factory.mktemp("kit"))
    except qemu_harness.KitError as e:
        pytest.fail(f"QEMU test prerequisites missing: {e}", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    if qemu_harness.TIMINGS:
        terminalreporter.section("QEMU timings")
        for line in qemu_harness.TIMINGS:
            terminalreporter.write_line(line)
