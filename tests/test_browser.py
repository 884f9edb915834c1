"""The interactive path in a real JupyterLab in a real browser (Chromium via Playwright).

Each notebook with ``interactive`` controls is opened as a user would: ``interactive =
True`` (and small sizes, so the whole file runs in a few minutes) written into its
parameters cell, Run All, then every control operated and what it drives checked — the
first display included, before anything is touched. A figure a control redraws must
really change (the image bytes are compared). No traceback in any output, no error in the
browser console. A failing test leaves a screenshot in the pytest temporary folder (its
path is in the failure message).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import nbformat
import pytest
from browser_lab import Lab, Notebook, launch_chromium

from nblib.paths import repo_root

NOTEBOOKS = repo_root() / "notebooks"
# small sizes per notebook (the defaults run in minutes; the controls are the same)
PARAMS = {
    "00_dataset_card": {},
    "01_overfit_diagnosis": {"demos": 2, "val_demos": 1, "steps": 30, "warmup_steps": 5},
    "02_conditioning_probes": {
        "samples": 30,
        "train_steps": 20,
        "isolation_samples": 30,
        "isolation_steps": 20,
        "umap": False,
    },  # fmt: skip
    "03_lr_schedule_study": {
        "steps": 40,
        "schedules": ["cosine", "constant"],
        "peak_lrs": [1e-3],
        "warmups": [5],
        "workers": 1,
        "range_test_steps": 0,
        "plateau_window": 20,
        "smoothing": 5,
    },  # fmt: skip
    "04_token_compass": {  # tokens of the bundled latent-action model
        "strides_compared": [4],
        "pairs_per_stride": 20,
        "umap": False,
        "gallery_tokens": 2,
        "gallery_per_token": 1,
    },  # fmt: skip
    "05_libero_comparison": {"n_boot": 200},
    "06_train_eval_consistency": {},
}


def _with_parameters(source: str, params: dict) -> str:
    """The parameters cell as a user would edit it: each ``name = value`` line replaced."""
    for name, value in params.items():
        pattern = re.compile(rf"^{name} = .*$", re.MULTILINE)
        if not pattern.search(source):
            raise KeyError(f"parameter {name!r} is not in the parameters cell")
        source = pattern.sub(f"{name} = {value!r}", source, count=1)
    return source


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    for name, params in PARAMS.items():
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = _with_parameters(cell.source, {**params, "interactive": True})
        nbformat.write(nb, root / f"{name}.ipynb")
    # the kernels' cwd is ``root``, outside the checkout: figures and metrics.json land
    # in root/figures and root/runs, as for a user's notebook outside the repository
    server = Lab(root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module; the watchdog below bounds a hung renderer."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


# Longest a notebook's test may take (they take 20-40 s); past it the watchdog kills the
# Chromium renderers, so a call blocked on a hung renderer (new_page, mouse moves and
# evaluate have no timeout) fails the test instead of hanging the whole run. If that does
# not free the test within KILL_ALL_S more, every Chromium process goes (the browser too).
WATCHDOG_S = 300
KILL_ALL_S = 60


def _kill_chromium(fired: list, only: str | None) -> None:
    """Kill this process's Chromium descendants (those whose command line has ``only``)."""
    import psutil  # an ipykernel dependency

    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            args = proc.cmdline()
            if "chrom" in proc.name().lower() and (only is None or only in args):
                kind = next((a for a in args if a.startswith("--type=")), "browser")
                fired.append(f"{kind} pid {proc.pid} at {proc.cpu_percent(0.2):.0f} % CPU")
                proc.kill()


class Watchdog:
    """Two timers: renderers killed after ``seconds``, all of Chromium ``KILL_ALL_S`` later.
    ``fired`` lists what was killed (for the failure message)."""

    def __init__(self, seconds: float = WATCHDOG_S):
        import threading

        self.seconds, self.fired = seconds, []
        self._timers = [
            threading.Timer(seconds, _kill_chromium, args=(self.fired, "--type=renderer")),
            threading.Timer(seconds + KILL_ALL_S, _kill_chromium, args=(self.fired, None)),
        ]
        for timer in self._timers:
            timer.daemon = True
            timer.start()

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def message(self) -> str:
        return f"\nwatchdog: over {self.seconds} s, killed {self.fired}" if self.fired else ""


@contextlib.contextmanager
def opened(browser, lab, name: str, tmp_path: Path):
    """``name`` opened and run in a fresh page; a screenshot on failure; at the end, no
    traceback in any output and no error in the console. The watchdog runs from before
    the page opens until after it is closed: a hung renderer once blocked the clean-up
    (an evaluate, after the watchdog had been cancelled) and with it the whole CI run."""
    watchdog = Watchdog()
    page = notebook = None
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        notebook = Notebook(page, lab, f"{name}.ipynb")
        notebook.open()
        notebook.run_all(timeout=240)
        yield notebook
        assert notebook.tracebacks() == [], f"{name}: errors in the outputs"
        assert notebook.console_errors == [], f"{name}: browser console errors"
    except BaseException as error:
        shot = tmp_path / f"{name}.png"
        with contextlib.suppress(Exception):
            notebook.screenshot(shot)
        raise AssertionError(f"{error}\n(screenshot: {shot}){watchdog.message()}") from error
    finally:
        with contextlib.suppress(Exception):
            notebook.command("kernelmenu:shutdown")
        with contextlib.suppress(Exception):
            page.close()
        watchdog.cancel()


# ----------------------------------------------------------------------------- widgets


def _control(area, kind: str, label: str):
    return area.locator(f".widget-{kind}:has(label:text-is('{label}'))")


def _select(area, label: str, value) -> None:
    _control(area, "dropdown", label).locator("select").select_option(label=str(value))


def _dropdown_value(area, label: str) -> str:
    select = _control(area, "dropdown", label).locator("select")
    return select.evaluate("s => s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text")


def _slider(area, label: str):
    return _control(area, "slider", label)


def _set_slider(area, label: str, value: int) -> None:
    readout = _slider(area, label).locator(".widget-readout")
    readout.click()
    readout.press("Control+a")
    readout.type(str(value))
    readout.press("Enter")


def _readout(area, label: str) -> str:
    return _slider(area, label).locator(".widget-readout").inner_text().strip()


def _image_digest(image) -> str:
    """SHA-256 of the bytes an <img> shows (blob: and data: URLs alike)."""
    return image.evaluate(
        """async img => {
            const bytes = await (await fetch(img.src)).arrayBuffer();
            const hash = await crypto.subtle.digest('SHA-256', bytes);
            return [...new Uint8Array(hash)].map(b => b.toString(16).padStart(2, '0')).join('');
        }"""
    )


def _wait_source_change(image, old: str | None) -> None:
    image.page.wait_for_function(
        "([img, old]) => img.src && img.src !== old", arg=[image.element_handle(), old]
    )


def _figures(area) -> list[str]:
    return [_image_digest(img) for img in area.locator(".jp-OutputArea-output img").all()]


def _wait_redraw(notebook, area, before: list[str], timeout: float = 30.0) -> list[str]:
    """The interact output's images once they differ from ``before``."""
    page = notebook.page
    deadline = page.evaluate("Date.now()") + timeout * 1000
    while page.evaluate("Date.now()") < deadline:
        notebook.wait_idle(timeout)
        after = _figures(area)
        if after and after != before:
            return after
        page.wait_for_timeout(200)
    raise AssertionError(f"the figure did not change (still {len(before)} image(s))")


def _interact(notebook):
    return notebook.page.locator(".widget-interact").last


# ----------------------------------------------------------------------------- tests


def test_00_frame_browser_first_display_and_every_control(browser, lab, tmp_path):
    from nblib.data.hdf5 import DemoStore
    from nblib.data.manifest import load_manifest

    store = DemoStore(load_manifest("metaworld_default").data_path)
    with opened(browser, lab, "00_dataset_card", tmp_path) as notebook:
        area = notebook.page.locator(".widget-vbox").last
        image = area.locator("img.widget-image")
        info = area.locator(".widget-html-content")
        # first display, untouched: a demo chosen, its steps on the slider, its frame shown
        task = _dropdown_value(area, "task")
        demo = _dropdown_value(area, "demo")
        assert task == store.tasks()[0] and demo, "the demo dropdown is empty"
        assert store.task_label(demo) == task
        slider_max = _slider(area, "step").locator(".noUi-handle").get_attribute("aria-valuemax")
        assert int(float(slider_max)) == store.lengths[demo] - 1
        assert image.evaluate("img => img.complete && img.naturalWidth") > 0
        first = _image_digest(image)
        assert store.instruction[demo] in info.inner_text()

        # step: the frame and the action/proprio text follow, to the right values
        source = image.get_attribute("src")
        _set_slider(area, "step", 5)
        _wait_source_change(image, source)
        expected = ", ".join(f"{v:+.3f}" for v in store.actions[demo][5])
        notebook.page.wait_for_function(
            "([el, text]) => el.innerText.includes(text)", arg=[info.element_handle(), expected]
        )
        assert _readout(area, "step") == "5"
        assert _image_digest(image) != first
        stepped = _image_digest(image)
        # camera: another camera's frame
        source = image.get_attribute("src")
        _select(area, "camera", store.cameras[1])
        _wait_source_change(image, source)
        assert _image_digest(image) != stepped
        # task: the demo list is that task's, and a demo of it is shown
        from playwright.sync_api import expect

        other = store.tasks()[1]
        members = [d for d in store.demos if store.task_label(d) == other]
        _select(area, "task", other)
        # The kernel answers the selection with new options; under load the status bar can
        # read idle before the kernel has taken the message, so wait for the options.
        options = _control(area, "dropdown", "demo").locator("option")
        expect(options).to_have_text(members, timeout=60_000)
        notebook.wait_idle()
        demos = options.all_inner_texts()
        assert demos == members
        select = _control(area, "dropdown", "demo").locator("select")
        notebook.page.wait_for_function(
            "([s, want]) => s.selectedIndex >= 0 && s.options[s.selectedIndex].text === want",
            arg=[select.element_handle(), members[0]],
            timeout=60_000,
        )
        assert store.instruction[demos[0]] in info.inner_text()


def test_01_chunk_browser_slider_redraws_the_chunks(browser, lab, tmp_path):
    with opened(browser, lab, "01_overfit_diagnosis", tmp_path) as notebook:
        area = _interact(notebook)
        first = _figures(area)
        assert len(first) == 1  # sample 0's predicted against true chunks, shown untouched
        _set_slider(area, "sample", 7)
        _wait_redraw(notebook, area, first)
        assert _readout(area, "sample") == "7"


def test_02_stage_browser_dropdowns_redraw_the_embedding(browser, lab, tmp_path):
    with opened(browser, lab, "02_conditioning_probes", tmp_path) as notebook:
        area = _interact(notebook)
        assert _dropdown_value(area, "stage") == "condition"  # the last stage first
        figure = _figures(area)
        assert len(figure) == 1
        # umap=False here: PCA is the one embedding on offer
        options = _control(area, "dropdown", "embedding").locator("option").all_inner_texts()
        assert options == ["pca"]
        for label, value in (("stage", "projector"), ("colour", "timestep"),
                             ("stage", "condition")):  # fmt: skip
            _select(area, label, value)
            figure = _wait_redraw(notebook, area, figure)
            assert _dropdown_value(area, label) == value


def test_03_run_browser_toggles_runs_and_smoothing(browser, lab, tmp_path):
    with opened(browser, lab, "03_lr_schedule_study", tmp_path) as notebook:
        area = _interact(notebook)
        runs = _control(area, "select-multiple", "runs").locator("select")
        names = runs.locator("option").all_inner_texts()
        assert len(names) == 2 and runs.evaluate("s => [...s.selectedOptions].length") == 2
        figure = _figures(area)
        assert len(figure) == 1
        runs.select_option(label=[names[0]])  # one run only
        figure = _wait_redraw(notebook, area, figure)
        # 40 logged steps: the curves smooth over at most a tenth of a run (4 points),
        # as the verdict does, so the slider starts at 4 (not 5) and stops there
        assert _readout(area, "smoothing") == "4"
        _set_slider(area, "smoothing", 1)
        _wait_redraw(notebook, area, figure)
        assert _readout(area, "smoothing") == "1"


def test_04_plotly_scatter_shows_every_pair_and_hovers(browser, lab, tmp_path):
    with opened(browser, lab, "04_token_compass", tmp_path) as notebook:
        page = notebook.page
        plot = page.locator(".js-plotly-plot").last
        plot.wait_for()
        # every frame pair, one trace per token (WebGL for thousands of points: counted
        # from the figure's data, not from SVG nodes)
        traces = plot.evaluate("el => el._fullData.map(t => [t.name, t.x.length])")
        assert len(traces) >= 2 and sum(n for _, n in traces) > 50
        # hover the pair of the first token that lies farthest from every other token's
        # pairs, where plotly drew it (thousands of points overlap: the first one may sit
        # under another token's point, and plotly's hover takes the closest)
        x, y = plot.evaluate(
            """el => {
                const layout = el._fullLayout, data = el._fullData;
                const px = (t, i) => [layout.xaxis._offset + layout.xaxis.d2p(t.x[i]),
                                      layout.yaxis._offset + layout.yaxis.d2p(t.y[i])];
                const others = [];
                for (const t of data.slice(1)) {
                    for (let i = 0; i < t.x.length; i++) others.push(px(t, i));
                }
                let best = null, bestGap = -1;
                for (let i = 0; i < data[0].x.length; i++) {
                    const [a, b] = px(data[0], i);
                    let gap = Infinity;
                    for (const [c, d] of others) gap = Math.min(gap, (a - c) ** 2 + (b - d) ** 2);
                    if (gap > bestGap) { bestGap = gap; best = [a, b]; }
                }
                return best;
            }"""
        )
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        page.mouse.move(box["x"] + x - 5, box["y"] + y - 5)
        page.mouse.move(box["x"] + x, box["y"] + y, steps=5)
        hover = plot.locator(".hoverlayer .hovertext")
        hover.first.wait_for()
        assert f"token={traces[0][0]}" in hover.first.text_content()  # SVG text
        # a legend click hides that token's pairs (plotly's own control)
        plot.locator(".legend .traces").first.click()
        page.wait_for_function(
            "el => el._fullData[0].visible === 'legendonly'", arg=plot.element_handle()
        )


def test_05_browser_selects_runs_and_suites(browser, lab, tmp_path):
    with opened(browser, lab, "05_libero_comparison", tmp_path) as notebook:
        area = _interact(notebook)
        suites = _control(area, "select-multiple", "suites").locator("select")
        runs = _control(area, "select-multiple", "runs").locator("select")
        figure = _figures(area)
        assert len(figure) == 2  # the suite bars and the per-task heatmap
        names = suites.locator("option").all_inner_texts()
        assert "libero_goal" in names and "metaworld" in names
        suites.select_option(label=["libero_goal"])
        figure = _wait_redraw(notebook, area, figure)
        run_names = runs.locator("option").all_inner_texts()
        goal = [r for r in run_names if r.startswith(("pi0", "smolvla"))]
        runs.select_option(label=goal[:1])
        figure = _wait_redraw(notebook, area, figure)
        assert runs.evaluate("s => [...s.selectedOptions].map(o => o.text)") == goal[:1]


def test_06_check_browser_shows_each_checks_evidence(browser, lab, tmp_path):
    with opened(browser, lab, "06_train_eval_consistency", tmp_path) as notebook:
        area = _interact(notebook)
        # the first mismatch is shown first; the embedded data has none: the first check
        assert _dropdown_value(area, "check") == "camera_orientation"
        first = _figures(area)
        assert len(first) == 1  # the dataset, simulator and best-fit frames per camera
        assert "camera_orientation: ok" in area.inner_text()
        _select(area, "check", "coverage")
        _wait_redraw(notebook, area, first)
        assert "coverage: ok" in area.inner_text()


def test_watchdog_turns_a_hung_renderer_into_a_failure(browser):
    """A page stuck in JavaScript blocks Playwright's evaluate for ever; the watchdog kills
    the renderer and the call fails (the browser itself stays, for the tests after)."""
    from playwright.sync_api import Error

    page = browser.new_page()
    watchdog = Watchdog(seconds=3)
    try:
        with pytest.raises(Error):
            page.evaluate("() => { while (true) {} }")
    finally:
        watchdog.cancel()
        with contextlib.suppress(Exception):
            page.close()  # its renderer is gone; the page goes too
    assert watchdog.fired and "--type=renderer" in watchdog.fired[0]
    assert "% CPU" in watchdog.fired[0] and browser.is_connected()
