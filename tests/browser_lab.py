"""A real JupyterLab in a real browser, for the interactive-path tests (tests/test_browser.py).

Not a test module. :class:`Lab` starts JupyterLab on 127.0.0.1 with its network features
off (no news, no update check, read-only extension manager, announcements disabled) and
isolated Jupyter / IPython / matplotlib config folders; :func:`launch_chromium` starts
Debian's headless Chromium through Playwright (FACTS.md: ``playwright install`` does not
work here, the system browser does). :class:`Notebook` opens a notebook, runs it, waits
for the kernel and reads and operates ipywidgets the way a user does.

Nothing is skipped: a missing browser or a server that does not start fails the tests
with the reason.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Debian's headless shell (package chromium-headless-shell), the browser Playwright itself
# uses for headless runs: no browser UI, so fewer processes than the full browser, which
# is the fallback; NBLIB_CHROMIUM picks another binary.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium")
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# JupyterLab user settings: no news and no update check, so the "notified about official
# Jupyter news?" toast never covers a control
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/apputils-extension/announcements.jupyterlab-settings": {"fetchNews": "false"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A JupyterLab server serving ``root`` (a temporary folder), stopped by :meth:`stop`."""

    def __init__(self, root: Path, env_extra: dict | None = None, timeout: float = 60.0):
        self.root = Path(root)
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        home = self.root.parent / "lab-home"
        settings = home / "lab-settings"
        for name, values in SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the kernel must use the inline backend
        env |= {
            "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
            "IPYTHONDIR": str(home / "ipython"),
            "MPLCONFIGDIR": str(home / "matplotlib"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
            "MUJOCO_GL": "egl",
            **(env_extra or {}),
        }
        jupyter = Path(sys.executable).with_name("jupyter")
        command = [
            str(jupyter), "lab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
        ]  # fmt: skip
        self.log = open(home / "server.log", "w")  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            command, cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait(timeout, home / "server.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait(self, timeout: float, log: Path) -> None:
        deadline = time.monotonic() + timeout
        status = f"{self.url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.process.returncode}):\n"
                                   f"{log.read_text()[-3000:]}")  # fmt: skip
            try:
                with urllib.request.urlopen(status, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"JupyterLab did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def chromium_path() -> str:
    """The Chromium binary the tests drive; a clear error when there is none."""
    wanted = os.environ.get("NBLIB_CHROMIUM")
    candidates = (wanted,) if wanted else CHROMIUM_CANDIDATES
    for path in candidates:
        if Path(path).is_file():
            return path
    raise RuntimeError(
        f"no Chromium at {' or '.join(candidates)}: install Debian's chromium-headless-shell "
        "(apt-get install chromium-headless-shell; tools/nb.sh test does when it runs as "
        "root) or set NBLIB_CHROMIUM to a Chromium binary"
    )


def launch_chromium(playwright):
    """Headless Chromium (see CHROMIUM_CANDIDATES)."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )


class Notebook:
    """One notebook open in JupyterLab in ``page``."""

    def __init__(self, page, lab: Lab, name: str):
        self.page, self.lab, self.name = page, lab, name
        self.console_errors: list[str] = []
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def open(self, timeout: float = 60.0) -> None:
        # a workspace of its own, so no other notebook's tab (and kernel) is restored
        workspace = Path(self.name).stem.replace("_", "-")
        self.page.goto(
            f"{self.lab.url}/lab/workspaces/{workspace}/tree/{self.name}?token={self.lab.token}"
        )
        self.page.wait_for_selector(f"{PANEL} .jp-Notebook", timeout=timeout * 1000)
        self.wait_idle(timeout, everything_ran=False)

    def wait_idle(self, timeout: float = 120.0, everything_ran: bool = True) -> None:
        """Until the kernel is idle (the status bar's text: the execution indicator says
        idle too early), no cell is running and, with ``everything_ran``, every code cell
        has run."""
        self.page.wait_for_function(
            """([panel, everything]) => {
                const bar = document.querySelector('#jp-main-statusbar');
                if (!bar || !bar.innerText.includes('Idle')) return false;
                const prompts = [...document.querySelectorAll(
                    panel + ' .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
                if (prompts.some(p => p.includes('[*]'))) return false;
                return !everything || prompts.every(p => /\\[\\d+\\]/.test(p));
            }""",
            arg=[PANEL, everything_ran],
            timeout=timeout * 1000,
        )

    def command(self, name: str) -> None:
        self.page.evaluate("name => window.jupyterapp.commands.execute(name)", name)

    def run_all(self, timeout: float = 180.0) -> None:
        self.command("notebook:run-all-cells")
        self.wait_idle(timeout)

    def tracebacks(self) -> list[str]:
        """Text of every error output (tracebacks) in the notebook."""
        texts = self.page.eval_on_selector_all(
            f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
            f"{PANEL} .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']",
            "nodes => nodes.map(n => n.textContent)",
        )
        # stderr also carries progress bars and warnings: only tracebacks count
        return [t for t in texts if "Traceback" in t]

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)
