"""The A/B regression run: HEAD and a reference commit measured alternately on one machine, in
one job, each by its own code, then judged by ``bench.analysis.compare``.

A ratio measured inside one run cancels the machine's speed but not the interpreter's build, and
instruction counts compare only on identical software; a stored baseline holds on the machine
that measured it and nowhere else. So both sides are measured here, now, by the same interpreter:

- micro: ``MICRO_ROUNDS`` rounds a side, each a fresh ``python -m bench micro`` process, in the
  order ref head head ref …, so a machine getting slower or faster lands on both sides alike;
- instructions: one count a side (``python -m bench instructions``; deterministic);
- load: the smoke matrix in two halves of the server models, the side going first alternating.

A case measured on one side only, or whose benchmark code differs between the two trees, is
listed "not comparable" and never judged (``bench.commands.comparable``). Regressed micro cases
are measured again on both sides, as ``regress`` does against a stored baseline, and so are the
server models of regressed load rows (with the null server, into each side's ``confirm-load/``).

Run directory: ``ref/`` and ``head/`` (each a run directory ``compare`` reads), ``compare.json``,
``verdict.md`` (the verdict table in Markdown, what CI shows) and ``meta.json``, whose
``regress`` entry names the reference and why it was chosen.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import rundir
from bench.analysis import compare, compare_table
from bench.analysis.ratios import load_ratios
from bench.analysis.report import build_report
from bench.commands import sides
from bench.commands.comparable import comparable
from bench.commands.sides import Side
from bench.rundir import META_FILE, Run, machine_meta, new_run_dir, read_meta, write_json
from bench.serving.spec import MODELS

#: micro rounds a side; each is a fresh process timing every smoke case
MICRO_ROUNDS = 2
#: what every load cell of both sides runs: the smoke matrix under the fixed budget of a
#: stored-baseline regress run, cells shortened so both sides fit the CI job (each second of a
#: cell is a sample; the test needs five a side, one more covers a lost second)
PROFILE = "smoke"
SERVER_CPUS = 0.1
LOAD_DURATION_S = 6.0
#: the reference server every load group needs beside our models: measured with the first group
NULL_PEER = "null"
#: where the server models of regressed load rows are measured again, on each side
LOAD_CONFIRM_DIR = "confirm-load"


class SideFailed(Exception):
    """A side could not be measured (the message says which and how)."""


# --- what to run, in which order ------------------------------------------------------------------


def micro_order(rounds: int, ref: Side, head: Side) -> list[tuple[Side, int]]:
    """(side, round) in the order ref head head ref ref head …: linear drift cancels."""
    order = []
    for number in range(1, rounds + 1):
        pair = [(ref, number), (head, number)]
        order += pair if number % 2 else pair[::-1]
    return order


def micro_dir(side_dir: Path, number: int) -> Path:
    """Round 1 is the side's micro.json, round N its micro-N/micro.json (what compare reads)."""
    return side_dir if number == 1 else side_dir / f"micro-{number}"


def load_groups() -> list[list[str]]:
    """The smoke matrix as two ``load`` invocations, half of the server models each (every
    invocation costs seconds of start-up and report); the first also runs the null server, the
    reference every model's cells divide by."""
    half = (len(MODELS) + 1) // 2
    return [
        ["--servers", ",".join(MODELS[:half]), "--peers", NULL_PEER],
        ["--servers", ",".join(MODELS[half:]), "--peers", "none"],
    ]


def load_args(run_dir: Path, group: list[str], duration: float) -> list[str]:
    return ["load", "--profile", PROFILE, "--server-cpus", str(SERVER_CPUS), "--duration",
            f"{duration:g}", "--no-progress", "--run-dir", str(run_dir), *group]  # fmt: skip


# --- measuring ------------------------------------------------------------------------------------


def measure_micro(ref: Side, head: Side, dirs: dict[str, Path], rounds: int) -> None:
    for side, number in micro_order(rounds, ref, head):
        target = micro_dir(dirs[side.name], number)
        code = side.bench(["micro", "--profile", PROFILE, "--run-dir", str(target)])
        if not (target / "micro.json").is_file():
            raise SideFailed(f"the {side.name} side's micro benchmarks wrote nothing (exit {code})")


def measure_instructions(ref: Side, head: Side, dirs: dict[str, Path]) -> str:
    """One count a side; "" when both counted, else why the rows are missing."""
    for side in (ref, head):
        code = side.bench(["instructions", "--run-dir", str(dirs[side.name])])
        if code != 0 and side is head:
            raise SideFailed(f"counting instructions on the head side failed (exit {code})")
        if code != 0:
            return f"the reference could not count instructions (exit {code})"
    return ""


def measure_load(ref: Side, head: Side, dirs: dict[str, Path], duration: float) -> None:
    """Each group of cells on both sides, the side going first alternating, then every side's
    cells gathered into its cells/ (one in-run reference set, as in a single smoke run)."""
    for number, group in enumerate(load_groups()):
        order = (ref, head) if number % 2 == 0 else (head, ref)
        for side in order:
            target = dirs[side.name] / f"load-{number + 1}"
            code = side.bench(load_args(target, group, duration))
            if code == 130:
                raise KeyboardInterrupt
    for side_dir in dirs.values():
        (side_dir / "cells").mkdir(exist_ok=True)
        for cell in sorted(side_dir.glob("load-*/cells/*.json")):
            shutil.copy2(cell, side_dir / "cells" / cell.name)


# --- judging: the only part that uses bench.analysis.compare ------------------------------------


def kept_cases(run: Run) -> set[str]:
    return {case.name for case in run.micro or []}


def judge_sides(ref: Side, head: Side, dirs: dict[str, Path], judging: Judging,
                load_duration: float) -> tuple:  # fmt: skip
    """The rows of HEAD against REF, their micro and load suspects measured again on both
    sides, and what was not comparable."""
    loaded = [rundir.load_run(dirs[name]) for name in ("ref", "head")]
    ref_run, head_run, reasons = comparable(*loaded, ref, head, dirs)
    rows = compare.compare_runs(
        ref_run, head_run, *judging.arguments(), load_floor=compare.LOAD_FLOOR
    )
    confirm(rows, ref, head, dirs, kept_cases(head_run), judging)
    if load_duration > 0:
        confirm_load(rows, ref, head, dirs, judging, load_duration)
    return rows, reasons


def confirm(rows: list, ref: Side, head: Side, dirs: dict[str, Path], keep: set[str],
            judging: Judging) -> None:  # fmt: skip
    """Measure the regressed micro cases again on both sides, each in a fresh process; a
    verdict stands only if every re-measurement repeats it (see compare.apply_confirmation)."""
    for directory in rundir.CONFIRM_DIRS:
        cases = compare.suspects(rows)
        if not cases:
            return
        select = " or ".join(sorted({case.split("[", 1)[0] for case in cases}))
        print(f"confirming {len(cases)} regressed micro cases on both sides: {select}", flush=True)
        again = {}
        for side in (ref, head) if directory == rundir.CONFIRM_DIRS[0] else (head, ref):
            target = dirs[side.name] / directory
            side.bench(["micro", "--profile", PROFILE, "-k", select, "--run-dir", str(target)])
            measured = rundir.read_micro(target / "micro.json")
            again[side.name] = [case for case in measured if case.name in keep]
        reference = Run(dirs["ref"] / directory, micro=again["ref"])
        compare.apply_confirmation(rows, reference, again["head"], judging.threshold, judging.alpha)


def suspect_models(rows: list, head_run: Run) -> list[str]:
    """Our server models whose cells a regressed load row divides: every load ratio's reference
    is the same model's raw cell or the null server, so these models and the null server are
    all a re-measurement needs."""
    names = compare.load_suspects(rows)
    cells = head_run.cells or {}
    numerators = {ratio.cell for ratio in load_ratios(cells) if ratio.name in names}
    return [model for model in MODELS
            if any(cells.get(cell, {}).get("server") == model for cell in numerators)]  # fmt: skip


def confirm_load(rows: list, ref: Side, head: Side, dirs: dict[str, Path], judging: Judging,
                 duration: float) -> None:  # fmt: skip
    """Measure the models of the regressed load rows again on both sides, the head first (the
    first measurement of their group may have begun with either); a verdict stands only if the
    re-measurement repeats it (see compare.apply_load_confirmation)."""
    models = suspect_models(rows, rundir.load_run(dirs["head"]))
    if not models:
        return
    count = len(compare.load_suspects(rows))
    print(f"confirming {count} regressed load rows on both sides: {', '.join(models)}", flush=True)
    group = ["--servers", ",".join(models), "--peers", NULL_PEER]
    for side in (head, ref):
        if side.bench(load_args(dirs[side.name] / LOAD_CONFIRM_DIR, group, duration)) == 130:
            raise KeyboardInterrupt
    again = [rundir.load_run(dirs[name] / LOAD_CONFIRM_DIR) for name in ("ref", "head")]
    compare.apply_load_confirmation(rows, *again, judging.threshold, judging.alpha,
                                    compare.LOAD_FLOOR)  # fmt: skip


def verdict_markdown(rows: list, reasons: dict[str, str], headline: str) -> str:
    """The verdict table as GitHub Markdown (what CI writes to its step summary)."""
    header = ["ratio", "ref", "head", "change", "95% CI", "p", "verdict"]
    lines = [f"### {headline}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(compare_table.table_cells(row)) + " |" for row in rows]
    if reasons:
        lines += ["", f"Not comparable, never judged ({len(reasons)}):", ""]
        lines += [f"- {name}: {why}" for name, why in reasons.items()]
    return "\n".join(lines) + "\n"


def report(rows: list, reasons: dict[str, str], judging: Judging) -> int:
    """Print the table and what was left out; the exit code."""
    print("\nbaseline = the reference side, current = the head side")
    print(compare_table.format_table(rows, *judging.arguments()))
    if reasons:
        print(f"\nnot comparable, never judged ({len(reasons)}):")
        for name, why in reasons.items():
            print(f"  {name}: {why}")
    return compare.exit_code(rows)


# --- the command ---------------------------------------------------------------------------------


#: what a regress run concludes, by exit code
VERDICT_WORDS = {0: "no regression", 1: "REGRESSED", 2: "nothing judged"}


@dataclass(frozen=True)
class Reference:
    """The commit HEAD is measured against, and why it is that one."""

    #: what the user (or the default) named
    name: str
    #: the full commit it resolved to
    commit: str
    #: why it was chosen
    why: str

    def describe(self) -> str:
        named = "" if self.commit.startswith(self.name) else f"{self.name} = "
        return f"{named}{self.commit[:12]} ({self.why}), re-measured here beside HEAD"


@dataclass(frozen=True)
class Judging:
    """The thresholds every row is judged by."""

    threshold: float
    alpha: float
    instruction_threshold: float

    def arguments(self) -> tuple[float, float, float]:
        """In the order compare's functions take them."""
        return self.threshold, self.alpha, self.instruction_threshold


@dataclass(frozen=True)
class Plan:
    """How much each side measures."""

    micro_rounds: int = MICRO_ROUNDS
    #: count instructions: "auto" (when valgrind is installed), "on" or "off"
    instructions: str = "auto"
    #: seconds of load per cell; 0 measures no load cells
    load_duration: float = LOAD_DURATION_S


def measure_sides(ref: Side, head: Side, dirs: dict[str, Path], plan: Plan) -> dict[str, str]:
    """Every part on both sides; what could not be measured on the reference."""
    missing = {}
    measure_micro(ref, head, dirs, plan.micro_rounds)
    if plan.instructions != "off" and instructions_available(plan.instructions):
        why = measure_instructions(ref, head, dirs)
        if why:
            missing["instructions (every workload)"] = why
    if plan.load_duration > 0:
        measure_load(ref, head, dirs, plan.load_duration)
    return missing


def instructions_available(mode: str) -> bool:
    from bench.micro.instructions import valgrind

    if valgrind() is not None:
        return True
    if mode == "on":
        raise SideFailed("--instructions on, but valgrind is not installed")
    print("instruction counts: skipped, valgrind is not installed", flush=True)
    return False


def record(run_dir: Path, dirs: dict, rows: list, reasons: dict, reference: Reference,
           judging: Judging, head: Side) -> int:  # fmt: skip
    """compare.json, verdict.md and the verdict in meta.json (the run's and the head side's, so
    its report's banner names the reference); the exit code."""
    code = compare.exit_code(rows)
    entry = {
        "baseline": reference.describe(),
        "reference": {"name": reference.name, "commit": reference.commit, "why": reference.why},
        "head": head.commit,
        "verdict": VERDICT_WORDS[code],
        **asdict(judging),
        "load_floor": compare.LOAD_FLOOR,
        "regressed": sum(row.verdict == "REGRESSED" for row in rows),
        "judged": len(compare.judged(rows)),
        "not_judged": len(rows) - len(compare.judged(rows)),
        "not_comparable": reasons,
    }
    write_json(run_dir / "compare.json", [asdict(row) for row in rows])
    headline = f"bench regress: {VERDICT_WORDS[code]} — HEAD against {reference.describe()}"
    (run_dir / "verdict.md").write_text(verdict_markdown(rows, reasons, headline))
    for side_dir in (run_dir, dirs["head"]):
        write_json(side_dir / META_FILE, {**read_meta(side_dir), "regress": entry})
    return code


def run_ab(reference: Reference, worktree: Path, judging: Judging, plan: Plan) -> int:
    """Measure both sides into a new run directory and judge HEAD against the reference."""
    head = Side("head", sides.REPO_ROOT, sides.head_commit())
    head.check_imports()
    with sides.reference_side(reference.commit, worktree) as ref:
        ref.check_imports()
        run_dir = new_run_dir(label="regress")
        write_json(run_dir / META_FILE, {**machine_meta(), "profile": PROFILE})
        print(f"run dir: {run_dir}\nreference: {reference.describe()}", flush=True)
        dirs = {"ref": run_dir / "ref", "head": run_dir / "head"}
        missing = measure_sides(ref, head, dirs, plan)
        rows, reasons = judge_sides(ref, head, dirs, judging, plan.load_duration)
    reasons.update(missing)
    code = report(rows, reasons, judging)
    record(run_dir, dirs, rows, reasons, reference, judging, head)
    print(f"report: {build_report(dirs['head'])}")
    print(f"\n{run_dir}: {VERDICT_WORDS[code]} (HEAD against {reference.describe()})")
    return code
