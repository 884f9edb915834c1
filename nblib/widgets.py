"""ipywidgets controls for notebooks run with ``interactive=True`` in JupyterLab.

Nothing here is imported unless a notebook asks for it, so papermill and nbval runs
(``interactive=False``) never create a widget.
"""

from __future__ import annotations

import io

from nblib.data.dataset import DemoStore


def _png(frame) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).resize((frame.shape[1] * 3, frame.shape[0] * 3), Image.NEAREST).save(
        buf, "png"
    )
    return buf.getvalue()


def frame_browser(store: DemoStore):
    """Pick a task, a demo and a camera, and scrub through its frames.

    Shows the frame, the step's action and proprio, and the instruction.
    """
    import ipywidgets as w

    tasks = store.tasks()
    task = w.Dropdown(options=tasks, description="task")
    demo = w.Dropdown(description="demo")
    camera = w.Dropdown(options=store.cameras, description="camera")
    step = w.IntSlider(min=0, max=0, description="step", continuous_update=True)
    image = w.Image(format="png")
    info = w.HTML()

    def refresh_demos(*_):
        demo.options = [d for d in store.demos if store.task_label(d) == task.value]

    def refresh_step_range(*_):
        if demo.value:
            step.max = store.lengths[demo.value] - 1
            step.value = min(step.value, step.max)
        show()

    def show(*_):
        if not demo.value:
            return
        t = step.value
        image.value = _png(store.frames(demo.value, camera.value, t, t + 1)[0])
        act = ", ".join(f"{v:+.3f}" for v in store.actions[demo.value][t])
        pro = ", ".join(f"{v:+.3f}" for v in store.proprio[demo.value][t])
        info.value = f"<b>{store.instruction[demo.value]}</b><br>action [{act}]<br>proprio [{pro}]"

    task.observe(refresh_demos, "value")
    demo.observe(refresh_step_range, "value")
    camera.observe(show, "value")
    step.observe(show, "value")
    refresh_demos()
    refresh_step_range()
    return w.VBox([w.HBox([task, demo, camera]), step, w.HBox([image, info])])
