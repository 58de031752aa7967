"""Fixtures for the real-browser tests: a throw-away JupyterLab server and headless Chromium.

The server serves *copies* of the notebooks from a temporary directory (the files in
``notebooks/`` are never touched), with its own settings, workspaces, runtime and data
directories, a random token, and news/update checks switched off. It is always stopped
at the end of the session (fixture finalizer), together with its kernels.

Chromium is Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it with apt-get; set
``QLIB_CHROMIUM`` to use another binary). It is driven through the PyPI ``playwright``
package with ``executable_path`` -- ``playwright install`` is never needed. When either is
missing, every browser test is skipped with a message that says what to install.

Environment knobs (all optional):
  QLIB_CHROMIUM              path of the Chromium binary (default /usr/bin/chromium)
  QLIB_BROWSER_NOTEBOOKS     folder whose NN_*.ipynb are tested (default: notebooks/)
  QLIB_BROWSER_ARTIFACTS     where screenshots go (default: artifacts/browser/)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(os.environ.get("QLIB_BROWSER_NOTEBOOKS", ROOT / "notebooks"))
ARTIFACTS = Path(os.environ.get("QLIB_BROWSER_ARTIFACTS", ROOT / "artifacts" / "browser"))

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
]

# JupyterLab user settings written into the temporary settings dir.
LAB_SETTINGS = {
    # no news feed, no update check, no pop-ups over the notebook
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # render every cell (no virtual scrolling), so every widget is in the DOM
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: real-browser test (JupyterLab + headless Chromium); deselect with -m 'not browser'"
    )


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.path)).parent == here:
            item.add_marker(pytest.mark.browser)


def chromium_executable() -> str | None:
    if os.environ.get("QLIB_CHROMIUM"):       # set explicitly: that binary or nothing
        candidates = [os.environ["QLIB_CHROMIUM"]]
    else:
        candidates = ["/usr/bin/chromium", shutil.which("chromium")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A running ``jupyter lab`` on 127.0.0.1 serving copies of the notebooks."""

    def __init__(self, tmp: Path, source: Path):
        self.tmp = tmp
        self.root = tmp / "root"
        shutil.copytree(source, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        settings = tmp / "settings"
        for rel, value in LAB_SETTINGS.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(tmp / "config"),
            JUPYTER_DATA_DIR=str(tmp / "data"),
            JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
            MPLBACKEND="module://matplotlib_inline.backend_inline",
        )
        env.pop("JUPYTER_PATH", None)
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        self.log_path = tmp / "jupyter-lab.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.root, start_new_session=True)
        self._wait_ready()

    # -- REST helpers ---------------------------------------------------------------
    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def _wait_ready(self, timeout: float = 120.0) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{self.log_tail()}")
            try:
                self.api("status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        raise RuntimeError(f"jupyter lab did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def kernel_states(self) -> list[str]:
        return [k.get("execution_state", "?") for k in self.api("kernels")]

    def wait_kernels_idle(self, timeout: float = 120.0, settle: float = 0.3) -> None:
        """Wait until at least one kernel exists and all are idle for ``settle`` seconds."""
        t_end = time.monotonic() + timeout
        idle_since = None
        while time.monotonic() < t_end:
            states = self.kernel_states()
            if states and all(s == "idle" for s in states):
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= settle:
                    return
            else:
                idle_since = None
            time.sleep(0.1)
        raise TimeoutError(f"kernel not idle after {timeout:.0f} s (states {self.kernel_states()})")

    def shutdown_kernels(self) -> None:
        for s in self.api("sessions"):
            try:
                self.api(f"sessions/{s['id']}", method="DELETE")
            except urllib.error.URLError:
                pass
        for k in self.api("kernels"):
            try:
                self.api(f"kernels/{k['id']}", method="DELETE")
            except urllib.error.URLError:
                pass

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.shutdown_kernels()
            except Exception:
                pass
            self.proc.send_signal(signal.SIGTERM)  # jupyter server shuts its kernels down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        try:  # anything left in the server's own process group (kernels) goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = chromium_executable()
    if path is None:
        pytest.skip("browser tests skipped: Chromium not found (install Debian's `chromium` with "
                    "`apt-get install chromium`, or set QLIB_CHROMIUM to a Chromium binary)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests skipped: the PyPI package `playwright` is not installed "
                    "(pip install -e '.[test]')")
    return path


@pytest.fixture(scope="session")
def lab(chromium_path):
    tmp = Path(tempfile.mkdtemp(prefix="qlib-lab-"))
    server = None
    try:
        server = LabServer(tmp, NOTEBOOKS)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_context(chromium_path):
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="qlib-chromium-"))
    pw = sync_playwright().start()
    context = None
    try:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
    finally:
        if context is not None:
            context.close()
        pw.stop()
        shutil.rmtree(profile, ignore_errors=True)


class LabPage:
    """One JupyterLab page, loaded once; notebooks are opened and closed inside it."""

    def __init__(self, page, lab: LabServer):
        self.page, self.lab = page, lab
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.goto(f"{lab.base}/lab?reset&token={lab.token}")
        page.wait_for_selector(".jp-DirListing-item", timeout=180_000)

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            self.console_errors.append(f"console.error: {msg.text}")


@pytest.fixture(scope="session")
def lab_page(lab, browser_context):
    page = browser_context.new_page()
    try:
        yield LabPage(page, lab)
    finally:
        page.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
