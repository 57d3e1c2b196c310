"""The pager of ``persistlog dump``, set up as systemd's tools set up theirs.

Only when stdout is a terminal.  ``$SYSTEMD_PAGER``, else ``$PAGER``, else
``less`` (then ``more``); an empty value or ``cat`` means no pager.  less gets
``$LESS=FRSXMK`` (``$SYSTEMD_LESS`` replaces it), and ``+G`` with
``--pager-end``, as journalctl gives them; ``$LESSSECURE=1`` when
``$SYSTEMD_PAGERSECURE`` says so, or, unset, when running with privileges
another user lent (sudo, setuid), so ``!command`` in less cannot escalate.
"""
import contextlib
import os
import shutil
import subprocess
import sys

LESS_DEFAULT = "FRSXMK"


def _truthy(text):
    return text.strip().lower() in ("1", "yes", "y", "true", "t", "on")


def pager_command(env=None):
    """The shell command of the pager, or None for no pager."""
    env = os.environ if env is None else env
    for name in ("SYSTEMD_PAGER", "PAGER"):
        if name in env:
            cmd = env[name].strip()
            return None if cmd in ("", "cat") else cmd
    for cmd in ("less", "more"):
        if shutil.which(cmd, path=env.get("PATH")):
            return cmd
    return None


def pager_env(jump_to_end=False, env=None):
    """The environment the pager runs in."""
    env = dict(os.environ if env is None else env)
    less = env.get("SYSTEMD_LESS", LESS_DEFAULT)
    env["LESS"] = less + " +G" if jump_to_end else less
    if "LESSCHARSET" not in env and (sys.stdout.encoding or "").lower().replace("-", "") == "utf8":
        env["LESSCHARSET"] = "utf-8"
    secure = env.get("SYSTEMD_PAGERSECURE")
    if secure is not None:
        secure = _truthy(secure)
    else:
        secure = "SUDO_UID" in env or os.geteuid() != os.getuid()
    if secure:
        env["LESSSECURE"] = "1"
    return env


@contextlib.contextmanager
def paged(enabled=True, jump_to_end=False):
    """Within the block, stdout goes to a pager when *enabled* and stdout is a
    terminal; the block's end waits for the pager to quit."""
    cmd = pager_command() if enabled and sys.stdout.isatty() else None
    if cmd is None:
        yield
        return
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE,
                                env=pager_env(jump_to_end))
    except OSError:
        yield  # no pager after all: print to the terminal
        return
    os.dup2(proc.stdin.fileno(), 1)
    proc.stdin.close()
    sys.stdout.reconfigure(line_buffering=False)  # a pipe now, not the terminal
    try:
        yield
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # the pager was quit early
        finally:
            # Closes our end of the pipe, so the pager sees EOF; whatever is
            # written later (a buffer a quit pager left unflushed) is dropped
            # rather than printed under the pager's screen.
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
            while True:
                try:
                    proc.wait()
                    break
                except KeyboardInterrupt:
                    continue  # ^C belongs to the pager (less exits with K)
