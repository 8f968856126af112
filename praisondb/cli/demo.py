"""``praisondb demo``: the main job on embedded defaults, start to finish (see :mod:`praisondb.demo`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("praisondb-demo"),
    show_default=True,
    help="Where the demo keeps its databases.",
)
@click.option("--resume", is_flag=True, hidden=True, help="Internal: the second process.")
def demo(directory: Path, resume: bool) -> None:
    """Run a scripted agent conversation on embedded defaults and print what was stored."""
    from ..demo.steps import run

    run(directory, resume=resume)
