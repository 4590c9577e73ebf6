"""Sample a running server's Python stacks with py-spy, and read back where its CPU went.

py-spy reads the interpreter's memory from outside the process, so the server runs unchanged; it
needs ptrace permission over the server (root, CAP_SYS_PTRACE, or the same user where
``kernel.yama.ptrace_scope`` is 0). Where it cannot attach, :func:`attach_problem` says so in one
line and the caller goes on without a profile.

One ``py-spy record`` writes one format, so a recording runs two recorders side by side: one
writes the flame graph (SVG), the other the speedscope JSON that ``bench.speedscope`` ranks.
Both are ``--nonblocking``: the server is never paused, so the two never contend for it, and what
the server pays is the CPU the recorders take. ``--subprocesses`` follows the fork model's
children. py-spy counts a thread when the kernel has it runnable: a thread that waits in the
kernel is left out, but one that was woken and waits for a CPU is counted where it waits. This
module imports only the stdlib.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: samples per second per recorder (py-spy's default)
RATE_HZ = 100
#: how py-spy records: never pausing the server, following its children, grouping by function.
#: Not --gil: with py-spy 0.4 on Python 3.11 it found no GIL holder in whole windows of a busy
#: single-threaded server, blocking or not.
RECORD_OPTIONS = ("--nonblocking", "--subprocesses", "--function")
#: py-spy output format → suffix of the file it writes next to the recording's stem
FORMATS = {"flamegraph": ".svg", "speedscope": ".speedscope.json"}
#: what py-spy prints once it has attached and samples
SAMPLING_LINE = b"Sampling process"
#: seconds to wait for a recorder to attach, and for it to write its file once stopped
ATTACH_TIMEOUT_S = 20.0
WRITE_TIMEOUT_S = 30.0
#: the recorders stop by themselves this long after the window they were started for
SAFETY_MARGIN_S = 30
#: where the sysctl that restricts ptrace lives (absent without the Yama LSM)
PTRACE_SCOPE_FILE = Path("/proc/sys/kernel/yama/ptrace_scope")
#: the line when there is no py-spy to run
NOT_INSTALLED = "py-spy not found: install it (pip install py-spy) to profile the servers"
#: py-spy without Rust's backtraces: its errors are then one line
PY_SPY_ENV = {**os.environ, "RUST_BACKTRACE": "0"}


def find_py_spy() -> str | None:
    """The py-spy beside this interpreter (a venv's bin), else on PATH; None where absent."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def ptrace_hint() -> str:
    """What lets py-spy read another process; names ptrace_scope's value where it exists."""
    scope = ""
    if PTRACE_SCOPE_FILE.exists():
        scope = f" (kernel.yama.ptrace_scope is {PTRACE_SCOPE_FILE.read_text().strip()})"
    return (
        "py-spy needs ptrace permission over the server: run the bench as root, or as the"
        f" server's user with kernel.yama.ptrace_scope = 0{scope}, or give py-spy CAP_SYS_PTRACE"
    )


def first_error_line(output: str) -> str:
    """py-spy's error in one line: its first ``Error:`` line without the prefix, else its first
    line (a log line or a bare message)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "no output"
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines)[0].removeprefix("Error:").strip()


def explain_failure(pid: int, output: str) -> str:
    """One line: why py-spy could not read ``pid``, and the remedy when it is a permission."""
    reason = first_error_line(output)
    if "permission" in reason.lower():
        return f"py-spy cannot read process {pid}: permission denied; {ptrace_hint()}"
    return f"py-spy cannot read process {pid}: {reason}"


def attach_problem(pid: int, py_spy: str | None) -> str | None:
    """None when py-spy can read ``pid``'s Python stacks; else one line saying why not.

    A real attempt (``py-spy dump``), not a guess from settings: containers, capabilities and
    security modules all decide, and only the kernel knows the answer.
    """
    if py_spy is None:
        return NOT_INSTALLED
    try:
        done = subprocess.run(
            [py_spy, "dump", "--pid", str(pid), "--nonblocking"],
            capture_output=True, text=True, timeout=ATTACH_TIMEOUT_S, env=PY_SPY_ENV,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"py-spy cannot read process {pid}: no answer within {ATTACH_TIMEOUT_S:.0f} s"
    except OSError as error:  # found but not runnable by this user (a 0700 directory, noexec)
        return f"py-spy at {py_spy} cannot be run: {error.strerror}"
    if done.returncode != 0:
        return explain_failure(pid, done.stderr + done.stdout)
    return None


def sampling_problem(py_spy: str | None) -> str | None:
    """None when py-spy can sample a Python process this one starts, as the runner starts its
    servers; else one line saying why not. Asked once, before a run's first server."""
    if py_spy is None:
        return NOT_INSTALLED
    waiting = subprocess.Popen(
        [sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        waiting.stdout.readline()  # its interpreter is up: there are Python stacks to read
        return attach_problem(waiting.pid, py_spy)
    finally:
        waiting.communicate(b"")


@dataclass
class RecordedProfile:
    """What one recording left: its files (None where not written) and why, if anything failed."""

    #: the flame graph
    svg: Path | None
    #: the speedscope JSON
    speedscope: Path | None
    #: one line saying what went wrong; None when both files were written
    problem: str | None = None
    #: the recorders' own CPU, in percent of one core, from their start to their stop
    recorder_cpu_pct: float | None = None


class Recording:
    """Two py-spy recorders sampling one process tree, from :meth:`start` until :meth:`stop`."""

    def __init__(
        self,
        pid: int,
        stem: Path,
        py_spy: str,
        rate_hz: int = RATE_HZ,
        cpus: list[int] | None = None,
    ):
        #: root of the process tree sampled (children are followed)
        self.pid = pid
        #: the output files are this path plus each format's suffix
        self.stem = stem
        #: the py-spy executable
        self.py_spy = py_spy
        #: samples per second per recorder
        self.rate_hz = rate_hz
        #: the CPUs the recorders may run on (None: any), kept off the server's own
        self.cpus = cpus
        #: py-spy format → its running recorder
        self.recorders: dict[str, subprocess.Popen] = {}
        #: when the recorders were started (time.monotonic)
        self.started_at = 0.0

    def path(self, output_format: str) -> Path:
        return self.stem.with_name(self.stem.name + FORMATS[output_format])

    def start(self, longest_s: float) -> str | None:
        """Start both recorders and wait until each samples; None, or one line why not.

        ``longest_s`` bounds the recording: the recorders stop by themselves a margin after it,
        so none outlives a caller that never calls :meth:`stop`.
        """
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        duration = str(math.ceil(longest_s) + SAFETY_MARGIN_S)
        self.started_at = time.monotonic()
        for output_format in FORMATS:
            output = self.path(output_format)
            argv = [self.py_spy, "record", "--pid", str(self.pid), *RECORD_OPTIONS,
                    "--rate", str(self.rate_hz), "--duration", duration,
                    "--format", output_format, "--output", str(output)]  # fmt: skip
            recorder = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=PY_SPY_ENV
            )
            if self.cpus:
                os.sched_setaffinity(recorder.pid, self.cpus)
            self.recorders[output_format] = recorder
        for recorder in self.recorders.values():
            problem = self.wait_until_sampling(recorder)
            if problem is not None:
                self.stop()
                return problem
        return None

    def wait_until_sampling(self, recorder: subprocess.Popen) -> str | None:
        """Read the recorder's output until it says it samples; one line if it exits instead."""
        deadline = time.monotonic() + ATTACH_TIMEOUT_S
        seen = b""
        while SAMPLING_LINE not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"py-spy did not start sampling process {self.pid} in {ATTACH_TIMEOUT_S} s"
            readable, _, _ = select.select([recorder.stdout], [], [], left)
            chunk = os.read(recorder.stdout.fileno(), 4096) if readable else b""
            if readable and not chunk:  # the recorder exited before sampling
                recorder.wait(WRITE_TIMEOUT_S)
                return explain_failure(self.pid, recorder.stderr.read().decode(errors="replace"))
            seen += chunk
        return None

    def stop(self) -> RecordedProfile:
        """Stop the recorders (py-spy writes its file on SIGINT) and say what they left."""
        problems = []
        running = [recorder.pid for recorder in self.recorders.values() if recorder.poll() is None]
        cpu_pct = 100 * sum(map(cpu_seconds, running)) / (time.monotonic() - self.started_at)
        for output_format, recorder in self.recorders.items():
            errors = finish(recorder)
            if recorder.returncode != 0:  # a failed write can leave a stub behind
                self.path(output_format).unlink(missing_ok=True)
            if not self.path(output_format).is_file():
                problems.append(f"{output_format}: {first_error_line(errors)}")
        written = {f: self.path(f) if self.path(f).is_file() else None for f in FORMATS}
        problem = f"py-spy wrote no {'; no '.join(problems)}" if problems else None
        return RecordedProfile(written["flamegraph"], written["speedscope"], problem, cpu_pct)


def cpu_seconds(pid: int) -> float:
    """CPU-seconds a running process has used, all its threads (``/proc/PID/stat``); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the command name: state is field 0, utime 11 and stime 12, in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def finish(recorder: subprocess.Popen) -> str:
    """Interrupt a recorder still sampling, wait until it has written its file; its errors."""
    if recorder.poll() is None:
        recorder.send_signal(signal.SIGINT)
    try:
        output, errors = recorder.communicate(timeout=WRITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        recorder.kill()
        output, errors = recorder.communicate()
    # py-spy reports some failures on stdout, after its progress lines
    return (errors + output).decode(errors="replace")


class WindowRecording:
    """A :class:`Recording` that samples only while a measured window is open.

    The load generator appends a line ``start`` to the ``marks`` file when its window opens and
    ``stop`` when it closes; whoever waits on the generator calls :meth:`poll` in its loop, so
    the warm-up is never sampled.
    """

    def __init__(self, recording: Recording, marks: Path, longest_s: float):
        #: the recorders, started and stopped with the window
        self.recording = recording
        #: the file the generator marks the window in
        self.marks = marks
        #: bound on the window's length (see :meth:`Recording.start`)
        self.longest_s = longest_s
        #: "waiting" for the window, "sampling" in it, "done" after it
        self.state = "waiting"
        #: why sampling could not start, if it could not
        self.problem: str | None = None
        #: what the recorders left, once stopped
        self.recorded: RecordedProfile | None = None

    def poll(self) -> None:
        """Start or stop the recorders as the window opened or closed since the last call."""
        marks = self.marks.read_text().split() if self.marks.exists() else []
        if self.state == "waiting" and "start" in marks:
            self.problem = self.recording.start(self.longest_s)
            self.state = "sampling" if self.problem is None else "done"
        if self.state == "sampling" and "stop" in marks:
            self.recorded = self.recording.stop()
            self.state = "done"

    def finish(self) -> RecordedProfile:
        """What was recorded; the recorders stopped however the window ended."""
        self.poll()
        if self.state == "sampling":  # the generator ended without closing its window
            self.recorded = self.recording.stop()
            self.recorded.problem = self.recorded.problem or "the measured window never closed"
        elif self.recorded is None:
            self.recorded = RecordedProfile(None, None, self.problem or "no window opened")
        self.state = "done"
        return self.recorded
