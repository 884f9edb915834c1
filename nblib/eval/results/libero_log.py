"""Text logs of LIBERO evaluation scripts, brought down to one row per episode.

The format is the one ``run_libero_eval.py`` of openvla and openvla-oft writes (openpi's
``examples/libero/main.py``, LIBERO-Plus users and many forks print the same lines)::

    Task suite: libero_spatial
    Task: pick up the black bowl between the plate and the ramekin and place it on the plate
    Starting episode 1...
    Saved rollout MP4 at path ./rollouts/...--episode=1--success=True--task=....mp4
    Success: True
    # episodes completed so far: 1
    # successes: 1 (100.0%)
    Current task success rate: 1.0
    Current total success rate: 1.0
    ...
    Final results:
    Total episodes: 500
    Total successes: 486
    Overall success rate: 0.9720 (97.2%)

Rules:

- One ``Success: True|False`` line is one episode of the task named by the last ``Task:``
  line. openvla-oft repeats ``Task:`` before every episode, openpi prints it once per task;
  both give one task. The episode index is the within-task one (``Starting episode N``
  counts from 1 within the task, the row says ``N - 1``); the ``episode=N`` of MP4 paths
  counts across the run and is ignored. A task text met again after its task finished (two
  LIBERO-90 tasks share an instruction) continues that task's numbering.
- The running totals (``# episodes completed so far``, ``# successes``, the current task
  and total rates, the final block) are checked against the episodes read so far; a
  disagreement is an error naming the line, because it means lines were lost, a run was
  appended to another, or the parser misread the log.
- ``complete`` is judged from the run's own plan, never from the final block alone (many
  forks and LIBERO-Plus runs end with their last task's summary, their own telemetry, or
  EGL tracebacks at exit). A task is unfinished (False) when an episode started and never
  reported (it is dropped), when it has fewer episodes than ``num_trials_per_task`` states,
  or when it lacks its summary (``Current task success rate``, or a fork's own ``Current
  task ...`` lines) in a log that prints summaries. The run ended (True) with a final block
  (``Final ... results`` / ``Total episodes`` / ``Overall success rate``) or when the task
  loop's tqdm bar reached its total; it was interrupted (False) when its last line is a
  ``Task:`` line for an episode that never began, or when that bar counts more tasks than
  the log holds. Otherwise the run ended if every task finished: with its summary, its
  planned episodes, or, in logs that print neither, as many episodes as the tasks before
  it; a lone task with neither is unknown (``None``), since the file cannot tell whether
  its loop went on. Every row of an interrupted run is False, of an unknown one None.
- The suite comes from ``Task suite: X`` (or ``task_suite_name=X`` in a config dump),
  otherwise from the caller; a second suite in the same file is an error (one run per file).
  ``seed`` and ``num_trials_per_task`` are read from config dumps (``seed=7``), ``task_id``
  and the episode length (``Episode length: 220``) where a fork prints them.
- Messy logs parse (:mod:`~nblib.eval.results.terminal`): ANSI escape codes and tqdm bars
  are cut out, of the pieces a carriage return leaves the last one counts, the rest of a
  bar that a terminal copy shows after a ``Task:`` text is cut off, warnings and tracebacks
  are skipped, and records of ``rich`` logging (``08/28 [10:50:11] INFO     | >> Success:
  True   run_libero_eval.py:226``) lose their prefix and right-hand ``file.py:line`` column,
  their wrapped continuation lines joined back with one space. A word longer than rich's
  column is cut by rich itself and comes back with a space in it; task texts have none.
- LIBERO-Plus tasks keep their suffixed text and get the perturbation the suffix names
  (:func:`~nblib.eval.results.libero_plus.perturbation_of`). In a log holding any such
  suffix, a task without one (LIBERO-Plus's language variants replace the instruction and
  carry no suffix), or with an unlisted combination, is ``unknown``; in other logs tasks are
  ``none`` (or the perturbation a LIBERO-PRO suite name implies).

Line numbers in errors are physical lines counted from 1 (``\\r\\n`` endings tolerated); a
wrapped rich record is reported at its first line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from nblib.errors import DataError
from nblib.eval.results.libero_plus import perturbation_of
from nblib.eval.results.schema import (
    Episode,
    default_run_name,
    kleene_all,
    line_error,
    normalize_suite,
    normalize_task,
    resolve_suite,
    suite_perturbation,
)
from nblib.eval.results.terminal import Bar, records, strip_bar_tail

# --- key lines (searched anywhere in a record, after a line start or a separator, so
# "INFO:root:", "2025-06-30 13:24:45,825 - INFO - " and similar prefixes need no handling)

_B = r"(?:^|(?<=[\s:|\]>]))"
_SUITE = (
    re.compile(_B + r"Task suite:\s*(?P<v>[^\s'\"]+)"),
    re.compile(r"\btask[_-]suite[_-]name\b['\"]?\s*[:=]\s*['\"]?(?P<v>[\w.-]+)"),
    re.compile(r"--(?:args\.)?task[_-]suite[_-]name[=\s]+['\"]?(?P<v>[\w.-]+)"),
)
_TASK = re.compile(_B + r"Task:(?P<v>.*)$")
_START = re.compile(_B + r"Starting episode\s+(?P<v>[^\s.]*)")
_SUCCESS = re.compile(_B + r"Success:\s*(?P<v>\S*)")
_DONE = re.compile(_B + r"# episodes completed so far:\s*(?P<v>\S*)")
_SUCCESSES = re.compile(_B + r"# successes:\s*(?P<v>\S*)")
_TASK_RATE = re.compile(_B + r"Current task success rate:\s*(?P<v>\S*)")
_TOTAL_RATE = re.compile(_B + r"Current total success rate:\s*(?P<v>\S*)")
# Forks close a task with summaries of their own ("Current task SVR: 0.84", PhysCogSafe's
# telemetry) where openvla-oft prints its task success rate.
_TASK_SUMMARY = re.compile(_B + r"Current task\b")
_FINAL = re.compile(_B + r"Final\b.*\bresults:")
_TOTAL_EPISODES = re.compile(_B + r"Total episodes:\s*(?P<v>\S*)")
_TOTAL_SUCCESSES = re.compile(_B + r"Total successes:\s*(?P<v>\S*)")
_OVERALL = re.compile(_B + r"Overall success rate:\s*(?P<v>\S*)")
# Lines that follow an episode's "Task:" line once the episode has begun.
_EPISODE_LINES = re.compile(
    _B + r"(?:Starting episode|Success:|# episodes completed|# successes:|"
    r"Current task\b|Current total success rate:|Final\b.*\bresults:|Total episodes:|"
    r"Overall success rate:)"
)
_TRIALS = re.compile(r"\bnum[_-]trials[_-]per[_-]task\b['\"]?(?:\s*[:=]\s*|\s+)(?P<v>\d+)\b")
_SEED = re.compile(r"(?<![\w.-])(?:--)?seed['\"]?(?:\s*[:=]\s*|\s+)(?P<v>\d+)\b")
_TASK_ID = re.compile(r"\btask[_ ]id\b['\"]?\s*[:=]\s*(?P<v>\d+)\b", re.IGNORECASE)
_STEPS = re.compile(
    r"\b(?:episode[ _]length|episode[ _]steps|steps[ _]taken|num[ _]steps|total[ _]steps)"
    r"\s*[:=]\s*(?P<v>\d+)\b",
    re.IGNORECASE,
)

# Forks print rates rounded to two decimals or in full; the counts are checked exactly.
_RATE_TOLERANCE = 6e-3

_MARKERS = (
    re.compile(r"Starting episode \d+"),
    re.compile(r"(?:^|[\s:|>\]])Success: (?:True|False)\b", re.MULTILINE),
    re.compile(r"# episodes completed so"),
    re.compile(r"# successes: \d+"),
    re.compile(r"Task suite: \S"),
    re.compile(r"Current (?:task|total) success"),
    re.compile(r"Total successes: \d+"),
    re.compile(r"(?:^|[\s:|>\]])Task: \S", re.MULTILINE),
)


def looks_like(text: str) -> bool:
    """True for a LIBERO evaluation text log: at least two of its key lines (``Task:``,
    ``Starting episode``, ``Success:``, the running totals, ``Task suite:``, the rates,
    ``Total successes:``) occur, and the content is not JSON."""
    head = text[:4_000_000]
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        return False
    if stripped.startswith("["):
        first = stripped.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return False
        except ValueError:
            pass  # "[robosuite WARNING] ..." or "[info] ...": a log line, not JSON
    return sum(1 for marker in _MARKERS if marker.search(head)) >= 2


# --- parsing -------------------------------------------------------------------------------


@dataclass
class _Task:
    """One stretch of consecutive episodes of one task."""

    text: str
    task_id: int | None = None
    offset: int = 0  # episodes of the same text in earlier stretches
    episodes: list[tuple[int, bool, int | None, int | None]] = field(default_factory=list)
    finished: bool = False  # its summary ("Current task success rate: ...") was read
    dropped: bool = False  # an episode started and never reported


def parse(
    text: str, source: str, suite: str | None = None, run: str | None = None
) -> list[Episode]:
    """Episodes of one LIBERO evaluation text log (rules in the module docstring).

    ``source`` names the file in messages; ``suite`` is used when the log states none (and
    must agree with it when it does); ``run`` defaults to the file's name
    (:func:`~nblib.eval.results.schema.default_run_name`)."""
    state = _State(source)
    for line, record, bars in records(text):
        state.feed(line, record, bars)
    return state.finish(suite, run if run is not None else default_run_name(source))


class _State:
    def __init__(self, source: str):
        self.source = source
        self.suite: str | None = None
        self.suite_line = 0
        self.tasks: list[_Task] = []
        self.current: _Task | None = None
        self.pending: int | None = None  # "Starting episode N" not yet reported
        self.steps: int | None = None
        self.episode_seed: int | None = None
        self.seed: int | None = None
        self.next_task_id: int | None = None
        self.trials: int | None = None
        self.done = 0
        self.successes = 0
        self.final_line = 0
        self.rate_lines = False
        # tqdm bars drawn once the run started (not the model-loading ones before it)
        self.bars: list[Bar] = []
        # the last key record was a "Task:" line: an episode was being set up
        self.announced = False

    def error(self, line: int, message: str) -> DataError:
        return line_error(self.source, line, message)

    # -- one record -------------------------------------------------------------------

    def feed(self, line: int, record: str, bars: list[Bar] = ()) -> None:
        if self.suite is not None or self.tasks:
            self.bars += bars
        if not record:
            return
        for pattern in _SUITE:
            match = pattern.search(record)
            if match:
                self._suite(line, match.group("v"))
                break
        if match := _TRIALS.search(record):
            self.trials = int(match.group("v"))
        if match := _SEED.search(record):
            if self.pending is not None or (self.current and self.current.episodes):
                self.episode_seed = int(match.group("v"))
            else:
                self.seed = int(match.group("v"))
        if match := _TASK_ID.search(record):
            self._task_id(int(match.group("v")))
        if self.current is not None and (match := _STEPS.search(record)):
            self.steps = int(match.group("v"))  # before any task it is a config value
        if match := _TASK.search(record):
            self._task(line, match.group("v"))
            self.announced = True
            return
        if _EPISODE_LINES.search(record):
            self.announced = False
        if match := _START.search(record):
            self._start(line, match.group("v"))
        elif match := _SUCCESS.search(record):
            self._success(line, match.group("v"))
        elif match := _DONE.search(record):
            self._check_count(line, match.group("v"), self.done, "episode(s) completed so far")
        elif match := _SUCCESSES.search(record):
            self._check_count(line, match.group("v"), self.successes, "success(es)")
        elif match := _TASK_RATE.search(record):
            self._task_rate(line, match.group("v"))
        elif match := _TOTAL_RATE.search(record):
            self._check_rate(line, match.group("v"), self.successes, self.done, "total")
        elif _TASK_SUMMARY.search(record):
            self._task_closed()
        elif match := _TOTAL_EPISODES.search(record):
            self._final(line)
            self._check_count(line, match.group("v"), self.done, "episodes in total")
        elif match := _TOTAL_SUCCESSES.search(record):
            self._final(line)
            self._check_count(line, match.group("v"), self.successes, "successes in total")
        elif match := _OVERALL.search(record):
            self._final(line)
            self._check_rate(line, match.group("v"), self.successes, self.done, "overall")
        elif _FINAL.search(record):
            self._final(line)

    def _suite(self, line: int, value: str) -> None:
        name = normalize_suite(value)
        if self.suite is None:
            self.suite, self.suite_line = name, line
            return
        if name != self.suite:
            raise self.error(
                line,
                f"a second suite {name!r} after {self.suite!r} (line {self.suite_line}); "
                "one log should hold one run: split the file per run",
            )
        if self.done:
            raise self.error(
                line,
                f"a second 'Task suite:' line after {self.done} episodes (first at line "
                f"{self.suite_line}): the file holds more than one run; split it per run",
            )

    def _task_id(self, value: int) -> None:
        if self.current is not None and self.current.task_id is None and not self.current.episodes:
            self.current.task_id = value
        else:
            self.next_task_id = value

    def _task(self, line: int, value: str) -> None:
        self._no_run_after_final(line)
        # a terminal copy keeps the rest of the progress bar this line overwrote
        text = normalize_task(strip_bar_tail(value))
        if not text:
            raise self.error(line, "a 'Task:' line without a task text")
        if self.pending is not None and self.current is not None:
            self.current.dropped = True  # an episode started and never reported
            self.pending = None
        if self.current is not None and self.current.text == text and not self.current.finished:
            return  # openvla-oft repeats the task line before every episode
        self._new_task(text)

    def _new_task(self, text: str) -> None:
        offset = sum(len(t.episodes) for t in self.tasks if t.text == text)
        self.current = _Task(text, task_id=self.next_task_id, offset=offset)
        self.next_task_id = None
        self.tasks.append(self.current)

    def _start(self, line: int, value: str) -> None:
        self._no_run_after_final(line)
        if not value.isdigit() or int(value) < 1:
            raise self.error(
                line, f"'Starting episode' expects a number from 1, got {value or 'nothing'!r}"
            )
        if self.pending is not None and self.current is not None:
            self.current.dropped = True
        number = int(value)
        if number == 1 and self.current is not None and self.current.episodes:
            # the within-task count restarted without a new "Task:" line: a new task with
            # the same text (openpi prints the task once per task)
            self._new_task(self.current.text)
        self.pending = number

    def _success(self, line: int, value: str) -> None:
        self._no_run_after_final(line)
        word = value.strip().rstrip(".,;").lower()
        if word not in ("true", "false"):
            raise self.error(
                line, f"expected 'Success: True' or 'Success: False', got {value or 'nothing'!r}"
            )
        task = self.current
        if task is None:
            raise self.error(
                line, "a 'Success:' line before any 'Task:' line: the episode's task is unknown"
            )
        index = task.offset + (self.pending - 1 if self.pending is not None else len(task.episodes))
        if any(episode[0] == index for episode in task.episodes):
            raise self.error(
                line,
                f"episode {index + 1} of task {task.text!r} is reported twice; "
                "was a run appended to this log?",
            )
        success = word == "true"
        task.episodes.append((index, success, self.steps, self.episode_seed))
        self.done += 1
        self.successes += success
        self.pending = None
        self.steps = None
        self.episode_seed = None

    def _task_rate(self, line: int, value: str) -> None:
        task = self.current
        if task is not None and task.episodes:
            succeeded = sum(episode[1] for episode in task.episodes)
            self._check_rate(line, value, succeeded, len(task.episodes), "task")
        self._task_closed()

    def _task_closed(self) -> None:
        """A task summary: the current task's episode loop is over."""
        self.rate_lines = True
        if self.current is not None and self.current.episodes:
            self.current.finished = True

    def _final(self, line: int) -> None:
        if not self.final_line:
            self.final_line = line

    def _no_run_after_final(self, line: int) -> None:
        if self.final_line:
            raise self.error(
                line,
                f"episode lines after the final results (line {self.final_line}): the file "
                "holds more than one run; split it per run",
            )

    def _check_count(self, line: int, value: str, parsed: int, what: str) -> None:
        try:
            stated = int(value)
        except ValueError:
            raise self.error(line, f"expected a whole number of {what}, got {value!r}") from None
        if stated != parsed:
            hint = (
                "; the count went back, so the file seems to hold more than one run: split it"
                if stated < parsed
                else "; lines seem to be missing from the log"
            )
            raise self.error(
                line,
                f"the log says {stated} {what} but {parsed} were read from its 'Success:' "
                f"lines up to here{hint}",
            )

    def _check_rate(self, line: int, value: str, succeeded: int, episodes: int, what: str):
        word = value.strip().rstrip(",;")
        try:
            stated = float(word[:-1]) / 100 if word.endswith("%") else float(word)
        except ValueError:
            raise self.error(line, f"expected a {what} success rate, got {value!r}") from None
        if episodes == 0:
            return
        parsed = succeeded / episodes
        if abs(stated - parsed) > _RATE_TOLERANCE:
            raise self.error(
                line,
                f"the log's {what} success rate is {word} but its 'Success:' lines give "
                f"{succeeded}/{episodes} = {parsed:.4f}",
            )

    # -- end of file --------------------------------------------------------------------

    def finish(self, suite: str | None, run: str) -> list[Episode]:
        if self.pending is not None and self.current is not None:
            self.current.dropped = True
        if not self.done:
            raise DataError(
                f"{self.source}: no episodes in this log (no 'Success: True/False' line after a "
                "'Task:' line); was the run stopped before its first episode finished?"
            )
        suite_name = resolve_suite(self.suite, suite, self.source)
        verdicts = self._completeness()
        categories = {task.text: perturbation_of(task.text) for task in self.tasks}
        plus = any(category is not None for category in categories.values())
        default = "unknown" if plus else suite_perturbation(suite_name)
        rows = []
        for task in self.tasks:
            for index, success, steps, seed in task.episodes:
                rows.append(
                    Episode(
                        run=run,
                        suite=suite_name,
                        task=task.text,
                        success=success,
                        episode=index,
                        steps=steps,
                        perturbation=categories[task.text] or default,
                        seed=seed if seed is not None else self.seed,
                        task_id=task.task_id,
                        complete=verdicts[id(task)],
                        source=self.source,
                    )
                )
        return rows

    # -- completeness -------------------------------------------------------------------

    def _completeness(self) -> dict[int, bool | None]:
        """id of each task stretch → whether its episodes are all there and the run ended
        (True), it or the run was interrupted (False), or the log cannot tell (None)."""
        started = [task for task in self.tasks if task.episodes or task.dropped]
        tasks = {id(task): self._task_verdict(task, started) for task in started}
        run = self._run_verdict(len(started))
        if run is None:
            # no final block and no plan: the run ended if every task's episodes did
            run = kleene_all(tasks.values())
        return {key: kleene_all((run, verdict)) for key, verdict in tasks.items()}

    def _task_verdict(self, task: _Task, started: list[_Task]) -> bool | None:
        if task.dropped:
            return False  # an episode started and never reported
        if self.trials is not None and len(task.episodes) < self.trials:
            return False
        if self.rate_lines:
            return task.finished  # a log that prints task summaries printed this one's
        if self.final_line or self.trials is not None or task is not started[-1]:
            return True  # the final block, the plan, or the next task closed its loop
        others = [len(t.episodes) for t in started[:-1]]
        if not others:
            return None  # one task, no summary, no plan: its loop may have gone on
        return len(task.episodes) >= max(others)

    def _run_verdict(self, started: int) -> bool | None:
        """True when the run reached its end, False on evidence that it stopped early,
        None when that rests on its tasks (:meth:`_task_verdict`)."""
        if self.final_line:
            return True
        if self.announced:
            return False  # a "Task:" line was printed for an episode that never began
        planned, reached = self._task_plan()
        if reached:
            return True
        if planned is not None and started < planned:
            return False  # the task loop's bar says more tasks were to come
        return None

    def _task_plan(self) -> tuple[int | None, bool]:
        """(tasks the task loop's tqdm bar counts to, whether it got there). That bar is
        the outer one of the two nested loops (openvla-oft, openpi): the only total of the
        bars drawn at the top, once the totals of nested bars are set aside (tqdm repaints
        a closing nested bar at the top). A single loop's bar (one task's episodes) plans
        nothing about tasks, and neither do equal totals of both loops (10 tasks × 10)."""
        inner = {bar.total for bar in self.bars if bar.nested}
        outer = {bar.total for bar in self.bars if not bar.nested} - inner
        if len(outer) != 1 or not inner:
            return None, False
        total = outer.pop()
        return total, any(bar.n >= total for bar in self.bars if bar.total == total)
