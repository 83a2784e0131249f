"""The command line: run, demo, eval, report, lab pretrain, lab headroom, recipes.

A user's mistake (UserError) prints one line naming the field or file and exits with code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional, cast

import typer
from rich.console import Console

from autoalign.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Align language models to the 3H standard with automated signals.")
lab_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The embedded lab world.")
app.add_typer(lab_app, name="lab")
console = Console(stderr=True)


def package_version() -> str:
    """The installed distribution's version (the package metadata), else the source tree's ``__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autoalign")
    except PackageNotFoundError:
        from autoalign import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"autoalign {package_version()}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_print_version, is_eager=True, help="print the version and exit")] = False):
    """Align language models to the 3H standard with automated signals."""


def recipes_dir() -> Path:
    """The shipped recipes: package data (``autoalign/recipes/``), so they come with a wheel; a checkout's top-level
    ``recipes/`` links to the same directory."""
    return Path(__file__).resolve().parent / "recipes"


def resolve_recipe(name: str) -> Path:
    """A recipe file: ``name`` as a path, else a shipped recipe by name (``demo``, ``demo.yaml``, or
    ``recipes/demo.yaml`` as the README writes it, which resolves outside a checkout too)."""
    p = Path(name)
    file_name = name if name.endswith(".yaml") else f"{name}.yaml"
    candidate = recipes_dir() / (file_name[len("recipes/"):] if file_name.startswith("recipes/") else file_name)
    try:
        if p.is_file():
            return p
        if candidate.is_file():
            return candidate
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        raise UserError(f"recipe {name[:80]!r}: not a usable file name ({getattr(exc, 'strerror', None) or exc})") from None
    raise UserError(f"recipe {name}: file not found (looked in . and {recipes_dir()})")


DRY_RUN_HELP = "check everything, print the plan (stages, models, suites, data files, model calls) and exit"
WAIT_HELP = "when another run holds the run directory, wait for it to end (then resume) instead of exiting 2"


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="recipe YAML path, or the name of one in recipes/")],
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="dotted overrides: train.epochs=3 (a variant runs as <name>-<overrides> unless name=... is given)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
    wait: Annotated[bool, typer.Option("--wait", help=WAIT_HELP)] = False,
):
    """Run an alignment recipe: rounds of prompts -> samples -> signals -> training -> evaluation, then a report.

    Everything the run needs is checked before a model loads or a file is written."""
    from autoalign.recipe import load_recipe, variant_name

    r = load_recipe(resolve_recipe(recipe), overrides or [])
    r = r.model_copy(update={"name": variant_name(r.name, overrides or [])})
    if dry_run:
        from autoalign.plan import preflight

        for line in preflight(r).lines():
            typer.echo(line)
        return
    from autoalign.loop import Run

    Run(r, console=console).execute(wait=wait)


@app.command()
def demo(
    overrides: Annotated[Optional[list[str]], typer.Argument(help="dotted overrides")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False,
    wait: Annotated[bool, typer.Option("--wait", help=WAIT_HELP)] = False,
):
    """The main job: recipes/demo.yaml on the lab model, two rounds, with its report."""
    run("demo", overrides, dry_run=dry_run, wait=wait)


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Argument(help="model URI: lab:small, hf:PATH, openai:URL#MODEL, vllm:ID")],
    suite: Annotated[list[str], typer.Option(
        help="suite or group, repeatable or comma-separated: lab, xstest, harmbench, do_not_answer, realtoxicity, "
             "bbq, hh_rlhf, robustness, truthfulqa, gsm8k, humaneval, winrate; groups helpful, harmless, honest, "
             "public, 3h (all)")] = ["lab"],  # noqa: B006 -- typer shows this default in --help; it is only read
    limit: Annotated[Optional[int], typer.Option(help="at most N items per suite (stratified, seeded)")] = None,
    per_family: Annotated[Optional[int], typer.Option(
        help="lab suite: items per task family (default: --limit, else 30)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="public benchmark files (default $AUTOALIGN_DATA, else ../shared/data)")] = None,
    judge: Annotated[Optional[str], typer.Option(help="judge model URI for refusal, toxicity and win-rate scoring")] = None,
    reference: Annotated[Optional[str], typer.Option(help="reference model URI for the win rate")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(
        help="cap every suite's generation length (default: each suite's own)")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        help="suite option KEY=VALUE, repeatable: rtp_samples=5, humaneval_samples=1, templates=direct,base64, "
             "instructions=FILE.jsonl, hh_scorer=judge")] = None,
    out: Annotated[Path, typer.Option(help="output directory (report.html, results.json, cache/)")] = Path("runs/eval"),
    best_of_n: Annotated[Optional[int], typer.Option(
        help="answer with the best of N samples under --reward-model (best-of-n at inference)")] = None,
    reward_model: Annotated[Optional[Path], typer.Option(
        help="a reward model directory (e.g. one a raft run trained) for --best-of-n")] = None,
    seed: int = 1234,
):
    """Evaluate a model on 3H suites and write an HTML report. Model calls are cached in OUT/cache: a rerun is free."""
    import time

    from autoalign.evaluate.runner import check_data, expand, parse_options, run_suites
    from autoalign.models.registry import load_lm
    from autoalign.plan import check_model, check_suites

    started = time.monotonic()
    for flag, uri in (("model", model), ("--judge", judge), ("--reference", reference)):
        if uri:
            check_model(uri, "" if flag == "model" else flag)
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    if (best_of_n is None) != (reward_model is None):
        raise UserError("--best-of-n and --reward-model go together (best-of-n needs a reward model to pick with)")
    if best_of_n is not None and best_of_n < 1:
        raise UserError(f"--best-of-n must be at least 1 (got {best_of_n})")
    if reward_model is not None and not (reward_model / "config.json").is_file():
        raise UserError(f"--reward-model {reward_model}: not a reward model directory (no config.json)")
    options = parse_options(option or [])
    names = expand([s for x in suite for s in x.split(",") if s.strip()], judge, reference, options)
    check_suites(names, judge, reference, options, "--suite")
    counts = check_data(names, data_dir, options)  # a bad data file fails here, before the model loads
    lm = load_lm(model)  # a model that cannot load (no key, server down) is one line before anything else prints
    if best_of_n is not None:
        from autoalign.signals.model_feedback.reward_model import BestOfNLM, RewardModel

        try:
            rm = RewardModel(cast(Path, reward_model))  # set: checked above to go with --best-of-n
        except (OSError, ValueError) as exc:
            raise UserError(f"--reward-model {reward_model}: {str(exc).splitlines()[0]}") from None
        lm = BestOfNLM(lm, rm, n=best_of_n)
    judge_lm = load_lm(judge) if judge else None
    reference_lm = load_lm(reference) if reference else None
    console.print(f"suites: {', '.join(f'{n} ({counts[n]} items)' if n in counts else n for n in names)}",
                  soft_wrap=True, highlight=False)

    def progress(name, result, seconds):
        heads = result.config.get("headline") or list(result.metrics)[:2]
        figs = ", ".join(f"{h} {result.metrics[h].value:.3f}" for h in heads if h in result.metrics)
        console.print(f"  {name}: {figs} ({seconds:.1f}s)", soft_wrap=True, highlight=False, markup=False)

    results = run_suites(lm, names, limit=limit, data_dir=data_dir, seed=seed, judge=judge_lm,
                         reference=reference_lm, cache_dir=out / "cache", per_family=per_family,
                         max_new_tokens=max_new_tokens, options=options, on_suite=progress)
    from autoalign.report.html import write_eval_report

    path = write_eval_report(results, out, title=f"autoalign eval: {model}")
    for r in results:
        for name, m in r.metrics.items():
            console.print(f"{r.suite}.{name} = {m.value:.3f} [{m.lo:.3f}, {m.hi:.3f}] n={m.n} ({m.scorer})",
                          highlight=False, soft_wrap=True, markup=False)
    console.print(f"[bold green]report[/] {path} ({time.monotonic() - started:.0f}s)")


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory holding metrics.json")]):
    """(Re)write a run's HTML report from its metrics.json."""
    if not (run_dir / "metrics.json").is_file():
        raise UserError(f"run directory {run_dir}: no metrics.json (has the run finished?)")
    from autoalign.report.html import write_run_report

    console.print(f"[bold green]report[/] {write_run_report(run_dir)}")


@app.command()
def runs(runs_dir: Annotated[Path, typer.Argument(help="the directory holding the runs")] = Path("runs")):
    """List the runs under RUNS_DIR (default runs) with their status and headline figures.

    Per run: running, finished or stopped; rounds done of planned; the final policy's round (the last one the 3H
    gate kept) and its lab composite and 3H score per axis, with 95% CIs."""
    from autoalign.runs_index import list_runs, runs_table

    if not runs_dir.is_dir():
        raise UserError(f"runs directory {runs_dir}: not a directory")
    found = list_runs(runs_dir)
    if not found:
        console.print(f"no runs in {runs_dir}")
        return
    Console(width=None if sys.stdout.isatty() else 200).print(runs_table(found, f"runs in {runs_dir}"))


@app.command()
def compare(
    entries: Annotated[list[str], typer.Argument(
        help="runs (a run directory, or a run's name under --runs-dir), eval output directories, or model URIs")],
    out: Annotated[Path, typer.Option(help="output directory (compare.html, compare.json, cache/)")] = Path(
        "runs/compare"),
    runs_dir: Annotated[Path, typer.Option(help="where run names are looked up")] = Path("runs"),
    suite: Annotated[list[str], typer.Option(
        help="suites a model URI is evaluated on (as autoalign eval)")] = ["lab"],  # noqa: B006 -- only read
    limit: Annotated[Optional[int], typer.Option(help="model URIs: at most N items per suite")] = None,
    per_family: Annotated[Optional[int], typer.Option(help="model URIs: lab suite items per task family")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="public benchmark files, for model URIs")] = None,
    judge: Annotated[Optional[str], typer.Option(help="judge model URI for a model's judged suites")] = None,
    seed: int = 1234,
):
    """Put several runs or models side by side: a table on the console and OUT/compare.html.

    Each headline figure with its 95% CI and its change against the first entry. A run shows its final policy (the
    last round the 3H gate kept); an eval output directory its results; a model URI is evaluated first (on --suite,
    cached in OUT/cache)."""
    from autoalign.plan import check_model, check_suites
    from autoalign.report.compare import (
        Entry,
        console_table,
        distinct,
        find_entry,
        load_run_entry,
        write_compare_report,
    )

    if len(entries) < 2:
        raise UserError("compare needs at least two runs or models")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    found: list[Path | str] = []
    for arg in entries:  # every argument checked before anything loads
        path = find_entry(arg, runs_dir)
        if path is None:
            try:
                check_model(arg)
            except UserError as exc:
                raise UserError(f"compare {arg}: not a finished run nor an eval directory (no metrics.json or "
                                f"results.json), and not a model: {exc}") from None
        found.append(path if path is not None else arg)
    models = [a for a in found if isinstance(a, str)]
    names: list[str] = []
    if models:
        from autoalign.evaluate.runner import check_data, expand

        if judge:
            check_model(judge, "--judge")
        names = expand([s for x in suite for s in x.split(",") if s.strip()], judge, None, {})
        check_suites(names, judge, None, {}, "--suite")
        check_data(names, data_dir, {})
    loaded: list[Entry] = []
    for item in found:
        if isinstance(item, Path):
            loaded.append(load_run_entry(item))
            continue
        from autoalign.evaluate.runner import run_suites
        from autoalign.models.registry import load_lm

        console.print(f"evaluating {item} on {', '.join(names)}", highlight=False, markup=False)
        results = run_suites(load_lm(item), names, limit=limit, data_dir=data_dir, seed=seed,
                             judge=load_lm(judge) if judge else None, cache_dir=out / "cache", per_family=per_family)
        loaded.append(Entry(item, item, results))
    loaded = distinct(loaded)
    Console(width=None if sys.stdout.isatty() else 200).print(console_table(loaded))
    console.print(f"[bold green]compare[/] {write_compare_report(loaded, out)}")


@app.command()
def recipes():
    """List the recipes shipped in recipes/."""
    for p in sorted(recipes_dir().glob("*.yaml")):
        typer.echo(p.stem)


@lab_app.command("pretrain")
def lab_pretrain(size: Annotated[str, typer.Argument(help="tiny, small or teacher")]):
    """Build (or find cached) the lab model SIZE and print its directory (teacher builds small first)."""
    from autoalign.lab.pretrain import LAB_SIZES, ensure_lab_model

    if size not in LAB_SIZES:
        raise UserError(f"lab size {size!r}: unknown (known: {', '.join(LAB_SIZES)})")
    typer.echo(str(ensure_lab_model(size)))


@lab_app.command("headroom")
def lab_headroom(
    size: Annotated[str, typer.Argument(help="lab base model: lab:tiny or lab:small (or tiny, small)")],
    prompts: Annotated[int, typer.Option(help="train-split lab prompts (the demo's: 480)")] = 480,
    samples: Annotated[int, typer.Option(help="samples per prompt for rejection sampling (the demo's: 4)")] = 4,
    per_family: Annotated[int, typer.Option(help="lab suite: eval items per task family / kind")] = 40,
    out: Annotated[Optional[Path], typer.Option(help="output directory (default runs/headroom-SIZE)")] = None,
    seed: Annotated[int, typer.Option(help="draws the train prompts, seeds sampling and training")] = 0,
    eval_seed: Annotated[int, typer.Option(help="draws the lab suite's eval items (as autoalign eval)")] = 1234,
    epochs: Annotated[float, typer.Option(help="SFT epochs (recipes/demo.yaml: 2)")] = 2.0,
    learning_rate: Annotated[float, typer.Option(help="SFT learning rate (recipes/demo.yaml: 3e-4)")] = 3e-4,
    batch_size: Annotated[int, typer.Option(help="SFT batch size (recipes/demo.yaml: 16)")] = 16,
):
    """What a perfect signal could gain: the lab suite (composite, each axis, 95% CIs) of the base model, of SFT on
    the oracle's answers, and of rejection sampling under the oracle; writes OUT/headroom.json."""
    from autoalign.lab.pretrain import LAB_SIZES

    name = size.removeprefix("lab:")
    if name not in LAB_SIZES:
        raise UserError(f"lab size {size!r}: unknown (known: {', '.join(f'lab:{s}' for s in LAB_SIZES)})")
    for flag, value in (("--prompts", prompts), ("--samples", samples), ("--per-family", per_family),
                        ("--batch-size", batch_size)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1 (got {value})")
    for flag, real in (("--epochs", epochs), ("--learning-rate", learning_rate)):
        if not real > 0:
            raise UserError(f"{flag} must be positive (got {real})")
    from autoalign.evaluate.headroom import headroom_table, measure_headroom
    from autoalign.lab.pretrain import ensure_lab_model

    out_dir = out if out is not None else Path("runs") / f"headroom-{name}"
    report = measure_headroom(ensure_lab_model(name), out_dir, uri=f"lab:{name}", prompts=prompts, samples=samples,
                              per_family=per_family, seed=seed, eval_seed=eval_seed, epochs=epochs,
                              learning_rate=learning_rate, batch_size=batch_size,
                              log=lambda msg: console.print(msg, highlight=False, markup=False, soft_wrap=True))
    # on a terminal rich fits the table to it; in a log or a pipe (80 columns by default) it keeps one line a row
    Console(width=None if sys.stdout.isatty() else 160).print(headroom_table(report))
    console.print(f"[bold green]headroom[/] {out_dir / 'headroom.json'} ({report['seconds']['total']:.0f}s)")


@lab_app.command("judge")
def lab_judge(
    model: Annotated[str, typer.Argument(help="the judge: lab:teacher, lab:small, hf:PATH, openai:URL#MODEL")],
    per_family: Annotated[int, typer.Option(help="eval items per task family / kind")] = 30,
    seed: Annotated[int, typer.Option(help="draws the eval items and the bad responses")] = 1234,
    out: Annotated[Optional[Path], typer.Option(help="write the figures to this JSON file")] = None,
):
    """How well MODEL judges, against the lab's ground truth: per axis, how often its yes/no verdict and its
    comparison prefer the reference response to a bad one, and how far its P(Yes) spreads between them."""
    if per_family < 1:
        raise UserError(f"--per-family must be at least 1 (got {per_family})")
    from autoalign.plan import check_model

    check_model(model)
    from rich.table import Table

    from autoalign.evaluate.judge_quality import AXES, judge_quality
    from autoalign.models.registry import load_lm

    result = judge_quality(load_lm(model), per_family=per_family, seed=seed)
    table = Table(title=f"judge quality: {model} ({result.config['pairs']} good/bad pairs)")
    columns = ("pointwise_pairwise", "compare", "accuracy", "spread")
    table.add_column("axis")
    for c in columns:
        table.add_column(c, justify="right")
    for axis in (*AXES, "all"):
        cells = [result.metrics.get(f"judge.{axis}.{c}") for c in columns]
        table.add_row(axis, *("-" if m is None else f"{m.value:.3f} [{m.lo:.2f}, {m.hi:.2f}]" for m in cells))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if out is not None:
        from autoalign.store import write_json

        write_json(out, result.model_dump(mode="json"))
        console.print(f"[bold green]judge[/] {out}")


def _error(message: str) -> None:
    """One line on stderr: ``error: MESSAGE`` (the message's own brackets are text, never rich markup)."""
    from rich.markup import escape

    console.print(f"[red]error:[/] {escape(' '.join(str(message).split()))}", highlight=False, soft_wrap=True)


def _command_path(command: typer.Typer, args: list[str], prog_name: str = "autoalign") -> str:
    """``autoalign eval``: the (sub)command ``args`` name, for a parse error that carries no context."""
    path = [prog_name]
    try:
        cmd = typer.main.get_command(command)
    except Exception:  # noqa: BLE001 - only decoration of an error line
        return prog_name
    for a in args:
        sub = getattr(cmd, "commands", {}).get(a)
        if a.startswith("-") or sub is None:
            break
        cmd = sub
        path.append(a)
    return " ".join(path)


def _usage_line(exc: Exception, fallback: str = "autoalign") -> str:
    """One line for a command-line parse error (typer's vendored click exceptions), naming the command and the
    argument or option: ``autoalign eval: --limit: Input should be a valid integer, ... (got 'x')``."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else fallback
    param = getattr(exc, "param", None)
    if isinstance(exc, typer.BadParameter) and param is not None and type(exc).__name__ != "MissingParameter":
        opts = getattr(param, "opts", None) or []
        if getattr(param, "param_type_name", "") == "option" and opts:
            name = "/".join(opts)
        else:
            name = getattr(param, "display_name_raw", None) or param.name or "argument"
        message = getattr(exc, "message", None) or exc.format_message()
        got = ""
        cause = exc.__cause__
        errors = getattr(cause, "errors", None)
        if callable(errors):  # typer coerces with pydantic: the first error holds the bad input
            try:
                first = errors()[0]
                if "input" in first and repr(first["input"]) not in message:
                    got = f" (got {first['input']!r})"
            except Exception:  # noqa: BLE001 - only decoration
                got = ""
        message = message.removeprefix("Value error, ").rstrip(".")
        return f"{where}: {name}: {message}{got}"
    return f"{where}: {exc.format_message() if hasattr(exc, 'format_message') else exc}"


def run_cli(command: typer.Typer, args: list[str] | None = None, prog_name: str = "autoalign") -> int:
    """Run ``command`` on ``args`` (default: ``sys.argv[1:]``) and return the exit code. Every user mistake is one
    line on stderr and code 2: a UserError, and every argument or option typer cannot parse (never a usage block).
    ``--help`` and a bare command that shows its help keep their exit codes."""
    try:
        code = command(args, prog_name=prog_name, standalone_mode=False)
    except UserError as exc:
        _error(str(exc))
        return 2
    except typer.TyperException as exc:  # typer's click: UsageError, BadParameter, NoSuchOption, ...
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help was already printed
            return getattr(exc, "exit_code", 2)
        where = _command_path(command, sys.argv[1:] if args is None else list(args), prog_name)
        _error(_usage_line(exc, where))
        return getattr(exc, "exit_code", 2)
    except typer.Abort:
        console.print("aborted")
        return 1
    except Exception as exc:  # a disk fault outside autoalign.store (a model save, a library's own file)
        from autoalign.errors import disk_error

        if (disk := disk_error(exc)) is None:
            raise
        _error(str(disk))
        return 2
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # typer turns a KeyboardInterrupt into exit code 130; a run noted the stage it stopped in
        from autoalign.console import interrupted_at, set_interrupted

        stopped = interrupted_at()
        set_interrupted(None)
        console.print(f"interrupted: rerun the same command to resume{f' from {stopped}' if stopped else ''}",
                      highlight=False, markup=False)
    return code if isinstance(code, int) else 0


def main() -> None:
    # the command line prints its own progress: no per-file tqdm bars from the Hugging Face libraries
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    import datasets

    datasets.disable_progress_bars()
    sys.exit(run_cli(app))


if __name__ == "__main__":
    main()
