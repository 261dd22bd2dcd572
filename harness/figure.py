"""The `main` of every figure script: compute (unless --replot), write the tables and the json, let the point stores
go, draw the figure from the written files, say what was written, and report a failure as exit code 3 once all of
that is done.  A figure script thus holds only its config, its computation and its plot:

    def compute(cfg) -> Computed: ...            # the numbers: tables (csv rows) and the record (json fields)
    def draw(cfg, tables, record) -> Figure: ... # the figure (or {file stem: figure}), from the files only
    def failure(tables, record) -> str | None    # optional: what did not converge, from the files
    def main(cfg): figure_main(cfg, STEM, compute, draw, failure=failure)
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Sequence

from harness.errors import SolverError
from harness.outputs import print_written, read_csv, read_json, save_figure, write_csv, write_json, write_text
from harness.points import PointStore
from harness.provenance import run_metadata


@dataclasses.dataclass
class Computed:
    """What a figure's computation hands to figure_main."""

    tables: dict[str, list[dict]]  # table name -> rows; "rows" is <stem>.csv, any other name <stem>_<name>.csv
    record: dict = dataclasses.field(default_factory=dict)  # the json's fields besides the run metadata
    device: str = "cpu"  # the device the numbers were computed on (recorded in the json)
    columns: dict[str, Sequence[str]] = dataclasses.field(default_factory=dict)  # column order per table
    stores: Sequence[PointStore] = ()  # point stores to let go once the outputs are written and nothing failed
    texts: dict[str, str] = dataclasses.field(default_factory=dict)  # file extension ("md") -> text of <stem>.<ext>


def table_path(out_dir: Path, stem: str, name: str) -> Path:
    return out_dir / (f"{stem}.csv" if name == "rows" else f"{stem}_{name}.csv")


def figure_main(cfg, stem: str, compute: Callable, draw: Callable, failure: Callable | None = None,
                tables: Sequence[str] = ("rows",)) -> None:
    """`tables` names the tables the figure is drawn from (and that a --replot reads)."""
    out_dir = cfg.output_dir
    csvs, json_path, stores = [table_path(out_dir, stem, name) for name in tables], out_dir / f"{stem}.json", ()
    if not cfg.replot:
        started = time.time()
        computed = compute(cfg)
        csvs = [write_csv(table_path(out_dir, stem, name), rows, computed.columns.get(name))
                for name, rows in computed.tables.items()]
        write_json(json_path, run_metadata(cfg, started, computed.device, **computed.record))
        csvs += [write_text(out_dir / f"{stem}.{extension}", text) for extension, text in computed.texts.items()]
        if isinstance(computed.record.get("summary"), str):
            print(computed.record["summary"])
        stores = computed.stores
    written, record = {name: read_csv(table_path(out_dir, stem, name)) for name in tables}, read_json(json_path)
    failed = failure(written, record) if failure else None
    if not failed:  # a failed run keeps its finished points for the rerun
        for store in stores:
            store.close()
    figures = draw(cfg, written, record)
    figures = figures if isinstance(figures, dict) else {stem: figures}  # several figures: {file stem: figure}
    print_written([*csvs, json_path, *(path for name, figure in figures.items()
                                       for path in save_figure(figure, out_dir, name))])
    if failed:
        raise SolverError(failed)
