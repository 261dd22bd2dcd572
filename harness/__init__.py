"""The harness every script of this repository runs in (no physics here), one job per module:

* `errors`: the two errors a run can end with (bad input: exit 2; a numerical failure: exit 3) and `require`;
* `paths`: where the repository, its figures and the datasets are;
* `config`: `BaseConfig`, the hyperparameter dataclass every script's `Config` extends;
* `command_line`: a `Config` becomes a command line, and `run` is the entry point of every script;
* `devices`: torch threads, devices and explicit random generators;
* `outputs`: atomic csv/json/text/figure files and reading them back;
* `provenance`: the commit, versions and wall time that every json records;
* `points`: the resumable store of a sweep's finished points;
* `sweep`: the executor of a sweep (process pool or Dask) and `SweepConfig`, the flags of a script that sweeps;
* `plotting`: the one look of every figure.

Imports run one way, from the top of this list to the bottom.
"""
