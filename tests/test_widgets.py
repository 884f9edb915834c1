"""The interactive frame browser reacts to its controls (no browser needed)."""

from tiny_data import write_tiny_dataset

from nblib.data.hdf5 import DemoStore
from nblib.studies.card import frame_browser


def test_frame_browser_follows_task_demo_camera_and_step(tmp_path):
    path = write_tiny_dataset(
        tmp_path / "t.h5", lengths=(12, 9, 15), tasks=("reach", "push", "reach")
    )
    store = DemoStore(path)
    box = frame_browser(store)
    (task, demo, camera), step, (image, info) = (
        box.children[0].children,
        box.children[1],
        box.children[2].children,
    )

    # the first display, before any control is touched: a demo, its steps and its frame
    assert task.value == "push" and demo.options == ("demo_1",) and demo.value == "demo_1"
    assert step.max == 8 and image.value and "push the puck" in info.value

    assert task.options == ("push", "reach")
    task.value = "reach"
    assert demo.options == ("demo_0", "demo_2") and demo.value == "demo_0"
    assert step.max == 11
    demo.value = "demo_2"
    assert step.max == 14  # 15 steps

    step.value = 0
    first = image.value
    step.value = 14
    assert image.value != first  # the square moved with the actions
    assert "reach the goal" in info.value
    camera.value = "behindGripper"
    assert image.value != first
