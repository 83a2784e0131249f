"""The command line: run, demo, eval, report, lab pretrain, recipes.

A user's mistake (UserError) prints one line naming the field or file and exits with code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from autoalign.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Align language models to the 3H standard with automated signals.")
lab_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The embedded lab world.")
app.add_typer(lab_app, name="lab")
console = Console(stderr=True)


def recipes_dir() -> Path:
    """``./recipes`` when run from a checkout, else the checkout this package was installed from."""
    here = Path.cwd() / "recipes"
    return here if here.is_dir() else Path(__file__).resolve().parent.parent / "recipes"


def resolve_recipe(name: str) -> Path:
    p = Path(name)
    if p.is_file():
        return p
    candidate = recipes_dir() / (name if name.endswith(".yaml") else f"{name}.yaml")
    if candidate.is_file():
        return candidate
    raise UserError(f"recipe {name}: file not found (looked in . and {recipes_dir()})")


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="recipe YAML path, or the name of one in recipes/")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="dotted overrides: train.epochs=3")] = None,
):
    """Run an alignment recipe: rounds of prompts -> samples -> signals -> training -> evaluation, then a report."""
    from autoalign.loop import Run
    from autoalign.recipe import load_recipe

    r = load_recipe(resolve_recipe(recipe), overrides or [])
    Run(r, console=console).execute()


@app.command()
def demo(overrides: Annotated[Optional[list[str]], typer.Argument(help="dotted overrides")] = None):
    """The main job: recipes/demo.yaml on the lab model, two rounds, with its report."""
    run("demo", overrides)


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Argument(help="model URI: lab:small, hf:PATH, openai:URL#MODEL, vllm:ID")],
    suite: Annotated[list[str], typer.Option(help="suite name, repeatable; '3h' = all")] = ["lab"],
    limit: Annotated[Optional[int], typer.Option(help="at most N items per suite (stratified)")] = None,
    per_family: Annotated[int, typer.Option(help="lab suite: items per task family")] = 30,
    data_dir: Annotated[Optional[Path], typer.Option(help="public benchmark files (default ../shared/data)")] = None,
    judge: Annotated[Optional[str], typer.Option(help="judge model URI for refusal / win-rate scoring")] = None,
    reference: Annotated[Optional[str], typer.Option(help="reference model URI for the win rate")] = None,
    out: Annotated[Path, typer.Option(help="output directory")] = Path("runs/eval"),
    seed: int = 1234,
):
    """Evaluate a model on 3H suites and write an HTML report."""
    from autoalign.models.registry import check_uri, load_lm
    from autoalign.store import CachedLM, CallCache, write_json

    for uri in filter(None, (model, judge, reference)):
        check_uri(uri)
    lm = CachedLM(load_lm(model), CallCache(out / "cache"))
    suites = [s for x in suite for s in x.split(",") if s]
    results = []
    if "lab" in suites:
        from autoalign.evaluate.lab_suite import evaluate_lab

        results.append(evaluate_lab(lm, per_family=per_family, seed=seed))
    others = [s for s in suites if s != "lab"]
    if others:
        from autoalign.evaluate.runner import run_suites

        results.extend(run_suites(
            lm, others, limit=limit, data_dir=data_dir, seed=seed,
            judge=load_lm(judge) if judge else None, reference=load_lm(reference) if reference else None,
        ))
    write_json(out / "results.json", [r.model_dump() for r in results])
    for r in results:
        for name, m in r.metrics.items():
            console.print(f"{r.suite}.{name} = {m.value:.3f} [{m.lo:.3f}, {m.hi:.3f}] n={m.n} ({m.scorer})")
    from autoalign.report.html import write_eval_report

    console.print(f"[bold green]report[/] {write_eval_report(results, out, title=f'autoalign eval: {model}')}")


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory holding metrics.json")]):
    """(Re)write a run's HTML report from its metrics.json."""
    if not (run_dir / "metrics.json").is_file():
        raise UserError(f"run directory {run_dir}: no metrics.json (has the run finished?)")
    from autoalign.report.html import write_run_report

    console.print(f"[bold green]report[/] {write_run_report(run_dir)}")


@app.command()
def recipes():
    """List the recipes shipped in recipes/."""
    for p in sorted(recipes_dir().glob("*.yaml")):
        typer.echo(p.stem)


@lab_app.command("pretrain")
def lab_pretrain(size: Annotated[str, typer.Argument(help="tiny or small")]):
    """Build (or find cached) the lab base model of SIZE and print its directory."""
    from autoalign.lab.pretrain import LAB_SIZES, ensure_lab_model

    if size not in LAB_SIZES:
        raise UserError(f"lab size {size!r}: unknown (known: {', '.join(LAB_SIZES)})")
    typer.echo(str(ensure_lab_model(size)))


def main() -> None:
    try:
        app(standalone_mode=True)
    except UserError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
