"""Help strings shared by the ``%mlops`` magics and the ``jupyter mlops`` command line,
so the two never drift apart."""

STATUS = "Show whether tracking is on, where records go and how many are still queued."
ON = "Track the following cells (the default after %load_ext jupyter_mlops)."
OFF = "Stop tracking the following cells until '%mlops on'."
LOG = (
    "Log k=v pairs to the current cell's run: numbers with metric-like names "
    "(loss, accuracy, f1, ...) as metrics, everything else as params."
)
TAG = "Set k=v tags on this notebook's session run."
RUNS = "Show the most recent cell runs, newest first."
FLUSH = "Write every queued record to the tracking store now."
SKIP = "Run this cell without tracking it (%%mlops skip as the cell's first line)."
DRAIN = (
    "Write journals left behind by kernels that stopped before their records reached the "
    "store (a store that was down, a kernel that crashed)."
)
UI = "Print the command that opens the MLflow UI on this project's store."
RUN = (
    "Run a pipeline.yaml: its notebook steps with papermill as a DAG, each a tracked run, "
    "unchanged steps from cache. When every step is cached the answer comes from the cache "
    "index at once and a writer process records the runs just after."
)
PIPELINES = "List past pipeline runs, newest first."
FAIL_ON_REFUSAL = (
    "Exit with status 1 when a gate refused a promotion in any step, even one its notebook "
    "caught (for CI builds)."
)
CI_INIT = (
    "Write a CI workflow for PIPELINE: GitHub Actions (.github/workflows/mlops.yml) or GitLab "
    "CI (.gitlab-ci.yml). The build installs the project, runs the pipeline with "
    "--fail-on-refusal, writes the audit report when it passes, and keeps the executed "
    "notebooks and the report as artifacts."
)
SCHEDULE = (
    "Run PIPELINE on a schedule (--cron '0 3 * * *', UTC) or monitor a deployment (schedule "
    "monitor DEPLOYMENT --every 15m) with jupyter-scheduler, in the running Jupyter server "
    "that serves the project: the jobs run while it runs, appear in JupyterLab's Notebook "
    "Jobs, and are recorded as pipeline or monitor runs tagged mlops.schedule."
)
SCHEDULE_EVERY = "An interval instead of --cron: 30s, 15m, 6h, 1d (it must divide its unit)."
SCHEDULE_WINDOW = "monitor: how far back each run looks (default: the interval)."
SCHEDULES = "List this project's schedules: cron, next run, the last job's status."
UNSCHEDULE = "Remove a schedule, the jobs it ran and its notebook."
CI_AUDIT = "The model to audit after a passing run (default: params.model_name@champion)."
PARAM = "Override a pipeline param: -p name=value (repeatable)."
PARALLEL = "Run up to N independent steps (or sweep configurations) at once."
NO_CACHE = "Execute every step even when its cache key matches an earlier run."
RESUME = "Re-run a failed pipeline run: finished steps are reused, the rest run again."
SWEEP = "Sweep a param over values: --sweep lr=0.01,0.1 (repeatable; a grid)."
SEARCH = (
    "Search the params with Optuna instead of one run: --search optuna --trials N "
    "--objective METRIC:max|min; the ranges come from the file's 'search:' mapping and --space."
)
TRIALS = "How many trials the study holds when done (a resumed search runs only the rest)."
OBJECTIVE = "A numeric step output to optimise: NAME or STEP.NAME, then :max or :min."
SPACE = "A searched param's range: --space lr=loguniform(1e-4,1e-1) or opt=[adam,sgd]."
STUDY = "The study's name in .mlops/optuna.db (default: the pipeline's name); resumed if kept."
PRUNER = (
    "How trials stop early on log_metrics(..., step=) of the objective: median (default), "
    "none, threshold:lower=X or threshold:upper=X."
)
TEMPLATE = (
    "Turn this notebook into templates/NAME.ipynb: the params tracked in this session that it "
    "sets with plain assignments move into a cell tagged 'parameters'."
)
LINEAGE = (
    "Show the cells, in the order they ran, and the params and files whose writes produced "
    "NAME's value, as a graph (jupyter_mlops.lineage(NAME) returns it as data). NAME is a "
    "variable, or MODEL@ALIAS / MODEL/VERSION for the cells behind a registered model."
)
REPRODUCE = (
    "Run a pipeline run again with its recorded params, from its recorded commit (in a "
    "temporary worktree when the tree has moved on), or the chain of cells behind a cell run, "
    "and print each metric against the original. Exit status 4 when one differs."
)
REPRODUCE_TOLERANCE = "relative tolerance for a metric to count as the same"
SLICE = (
    "Write templates/TEMPLATE.ipynb holding only the cells NAME's value came from, in the "
    "order they ran, its params in a 'parameters' cell and an output for NAME: a papermill "
    "run of it reproduces NAME. Use template to keep the whole notebook."
)
PACKAGE = (
    "Package a torch model variable as an MLflow ONNX model: export, parity check against "
    "torch, signature and model card (--example names the input batch variable)."
)
REGISTER = "Register a packaged model (the last one packaged here, or a runs:/ / models:/ URI)."
PROMOTE = "Move an alias (default champion) to a version if its gates pass; --force needs --reason."
ROLLBACK = "Move an alias back to the version that held it before."
MODELS = "List registered models with versions, aliases, parity and gate results."
DEPLOY = (
    "Serve a registered model (name@alias or name/version) as a REST endpoint on this "
    "machine; --canary SPEC:WEIGHT sends part of the traffic to another version."
)
DEPLOYMENTS = "List deployments with their live status, URL and traffic weights."
TRAFFIC = "Re-weight a deployment's traffic live: VERSION=WEIGHT ..."
SWITCH = (
    "Blue/green: send all of a deployment's traffic to another version, with no failed request."
)
CAPTURE = (
    "Pause (off) or resume (on) a running deployment's capture, live; requests answered while "
    "paused are counted as dropped 'paused'."
)
UNDEPLOY = "Stop a deployment's server (captured traffic is kept)."
SERVE = "Serve a model in the foreground until interrupted (Ctrl-C stops the server)."
DRIFT = "Compare two tables (variables) column by column with Evidently's tests."
MONITOR = (
    "Check a deployment's recent traffic for drift against its model's reference sample, log "
    "a monitor run and apply the mlops.yaml policy (alert, rollback, retrain)."
)
ALERTS = "Show the most recent drift alerts."
AUDIT = (
    "Write an audit report (one offline HTML file and its Markdown) of MODEL@ALIAS or "
    "MODEL/VERSION: deployments, lineage back to the training cells or pipeline steps and their "
    "source, datasets, git commit and environment, gate verdicts, alias moves, monitoring, "
    "explanations and fairness; --request ID starts from one captured prediction."
)
EVALUATE = (
    "Evaluate a registered model (MODEL@ALIAS, MODEL/VERSION or a models:/ or runs:/ URI) on "
    "labelled data: MLflow's metrics, curves, per-slice metrics and fairness disparities, "
    "feature attributions, logged as one evaluation run with an evaluation.html page."
)
EVAL_DATA = "Labelled data inside the project: a .csv or .parquet file."
EVAL_TARGET = "The column holding the true labels (or values)."
EVAL_SLICES = "Columns whose groups get their own metrics (default: mlops.yaml's slices)."
EVAL_EXPERIMENT = "Experiment of the evaluation run (default: interactive)."
AUDIT_OUT = "Directory inside the project for the report (default: audits/)."
AUDIT_REQUEST = "Audit the version that answered this request id (its x-request-id)."
LABELS = (
    "Record true labels of a deployment's predictions from a CSV or Parquet file with columns "
    "request_id and label (the x-request-id its server answered). Unknown ids, duplicates and "
    "labels of the wrong type are counted, not fatal; a later label for an id replaces it."
)
PANEL = (
    "Show the panel: runs to filter and compare, models to package, register, promote and roll "
    "back, deployments with a canary slider, drift charts (--tab picks the first tab shown)."
)
