"""A corpus of bad inputs (issue 24): every command, every kind of input file and output path, and the
values that once reached an internal error. Each case runs in-process through ``planner.cli.main``
(the boundary the console script uses) with a bounded wait (SIGALRM: a case that hangs fails), and
must give the expected exit code (2 for bad input; never 3), no traceback, exactly one ``error:`` line,
and leave the case folder exactly as it was (no file written, none half-written, no temporary file).

Placeholders: ``{in}`` valid input files (model.yaml, hw.yaml, config.json, scenario.json, overlay.yaml,
results.json, runs.csv, steps.json), ``{out}`` the case folder (also the current folder), ``{X}`` the
bad file of the case (KINDS).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
from pathlib import Path

import pytest
import yaml

from hwprofiles.loader import hardware_dir, models_dir

ROOT = Path(__file__).resolve().parents[2]
BASE = "-m gpt3-125m -H a100-sxm-80gb -g 8 --global-batch 16"
CASE_LIMIT_S = 120  # a generous bound: every case is refused in well under a second


# --- bad files and paths -------------------------------------------------------------------------
def _make_kinds(folder: Path) -> dict[str, str]:
    """Paths of every bad kind of file, made in ``folder`` (sparse: the big one takes no disk)."""
    k = folder / "kinds"
    k.mkdir()
    os.mkfifo(k / "fifo")
    (k / "dir").mkdir()
    with open(k / "big.json", "wb") as fh:
        fh.truncate(3 * 2**30)  # 3 GiB of holes: refused by size before reading
    (k / "bin.json").write_bytes(bytes(range(256)) * 4)
    (k / "empty.yaml").write_bytes(b"")
    (k / "loop").symlink_to(k / "loop2")
    (k / "loop2").symlink_to(k / "loop")
    (k / "dangling.yaml").symlink_to(k / "nowhere.yaml")
    (k / "list.yaml").write_text("- 1\n- 2\n")
    (k / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    return {"fifo": str(k / "fifo"), "dir": str(k / "dir"), "big": str(k / "big.json"), "bin": str(k / "bin.json"),
            "empty": str(k / "empty.yaml"), "loop": str(k / "loop"), "dangling": str(k / "dangling.yaml"),
            "list": str(k / "list.yaml"), "deep": str(k / "deep.json"), "devnull": "/dev/null", "devzero": "/dev/zero"}


INPUT_KINDS = ("fifo", "dir", "big", "bin", "empty", "loop", "dangling", "list", "deep", "devnull", "devzero")

#: (case id, argv with {X} for the bad input file). Every kind of INPUT_KINDS is tried in each.
INPUT_SLOTS = {
    "estimate --model": "estimate --model {X} -H a100-sxm-80gb -g 8 --global-batch 16",
    "plan --model": "plan --model {X} -H a100-sxm-80gb -g 8 --global-batch 16",
    "estimate --hardware": "estimate -m gpt3-125m --hardware {X} -g 8 --global-batch 16",
    "simulate --hardware": "simulate -m gpt3-125m --hardware {X} -g 8 --global-batch 16",
    "estimate --calibration": "estimate -m gpt3-125m -H cpu-host -g 2 --global-batch 4 --calibration {X}",
    "estimate --layout": "estimate --layout {X}",
    "whatif BASE": "whatif {X} --set tp=2",
    "sweep BASE": "sweep {X} --vary gpus=8,16",
    "sensitivity BASE": "sensitivity {X}",
    "explore BASE": "explore {X} --json",
    "hw show": "hw show {X}",
    "model show": "model show {X}",
    "validate report --results": "validate report --results {X}",
    "calibrate --results": "calibrate --results {X} --out {out}/o.yaml",
    "bench accuracy CSV": "bench accuracy {X}",
    "bench steps FILE": "bench steps {X}",
    "validate run --model": "validate run --model {X} --out {out}/r.json",
    "run PLAN": "run {X}",
    "validate slurm --model": "validate slurm --model {X}",
}


def _input_cases():
    for slot, argv in INPUT_SLOTS.items():
        for kind in INPUT_KINDS:
            if slot in ("whatif BASE", "sweep BASE", "sensitivity BASE", "explore BASE") and kind == "dir":
                continue  # a folder is not a scenario; covered by estimate --layout
            yield pytest.param(argv, kind, 2, None, id=f"{slot} <- {kind}")


OUTPUT_KINDS = ("dir", "readonly", "loop", "below-file", "under-dev", "socket", "proc")
OUTPUT_SLOTS = {
    "plan --out json": f"plan {BASE} --export json --out {{X}}",
    "simulate --trace": f"simulate {BASE} --trace {{X}}",
    "simulate --png": f"simulate {BASE} --png {{X}}.png",
    "sweep --csv": f"sweep {BASE} --vary gpus=8,16 --csv {{X}}",
    "sweep --png": f"sweep {BASE} --vary gpus=8,16 --png {{X}}.png",
    "whatif --save": f"whatif {BASE} --set tp=2 --save {{X}}",
    "explore --save-to": f"explore {BASE} --save-to {{X}}",
    "explore --export-to": f"explore {BASE} --export-to {{X}}",
    "calibrate --out": "calibrate --results {in}/results.json --out {X}",
    "validate run --out": "validate run --layout tp=2 --out {X}",
    "validate slurm --out": "validate slurm --out {X}",
    "bench evidence --out": "bench evidence --out {X}",
}


def _output_path(kind: str, folder: Path) -> str:
    o = folder / "outs"
    o.mkdir(exist_ok=True)
    if kind == "dir":
        (o / "d").mkdir(exist_ok=True)
        return str(o / "d")
    if kind == "readonly":
        p = o / "ro.json"
        p.write_text("{}")
        p.chmod(stat.S_IRUSR)
        return str(p)
    if kind == "loop":
        if not (o / "l1").is_symlink():
            (o / "l1").symlink_to(o / "l2")
            (o / "l2").symlink_to(o / "l1")
        return str(o / "l1")
    if kind == "below-file":
        (o / "plain").write_text("x")
        return str(o / "plain" / "below")
    if kind == "under-dev":
        return "/dev/paraplan-corpus-new-file"
    if kind == "socket":
        import socket

        path = o / "s.sock"
        if not path.exists():
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            sock.close()
        return str(path)
    return "/proc/paraplan-corpus/x"


def _output_cases():
    for slot, argv in OUTPUT_SLOTS.items():
        for kind in OUTPUT_KINDS:
            if slot.endswith("--png") and kind in ("dir", "readonly", "loop", "socket"):
                continue  # the suffix is added after the path: those become new names
            yield pytest.param(argv, kind, 2, None, id=f"{slot} -> {kind}")


#: Values that once reached an internal error or a hang, and other refusals (argv, exit, text).
VALUE_CASES = [
    ("tokens-1e400", f"estimate {BASE} --tokens 1e400", 2, "--tokens"),
    ("tokens-nan", f"estimate {BASE} --tokens nan", 2, "--tokens"),
    ("price-nan", f"estimate {BASE} --tokens 1T --price-per-gpu-hour nan", 2, "--price-per-gpu-hour"),
    ("price-0", f"estimate {BASE} --tokens 1T --price-per-gpu-hour 0", 2, "--price-per-gpu-hour"),
    ("price-inf", f"plan {BASE} --tokens 1T --price-per-gpu-hour inf", 2, "--price-per-gpu-hour"),
    ("power-inf", f"estimate {BASE} --tokens 1T --power-per-gpu inf", 2, "--power-per-gpu"),
    ("power-nan", f"plan {BASE} --tokens 1T --power-per-gpu nan", 2, "--power-per-gpu"),
    ("power-0", f"estimate {BASE} --tokens 1T --power-per-gpu 0", 2, "--power-per-gpu"),
    ("pue-nan", f"estimate {BASE} --tokens 1T --pue nan", 2, "--pue"),
    ("seed-negative", f"simulate {BASE} --jitter 0.1 --seed -1", 2, "--seed"),
    ("seed-huge", f"simulate {BASE} --jitter 0.1 --seed 99999999999", 2, "--seed"),
    ("jitter-huge", f"simulate {BASE} --jitter 1e300", 2, "--jitter"),
    ("jitter-nan", f"simulate {BASE} --jitter nan", 2, "--jitter"),
    ("jitter-inf", f"simulate {BASE} --jitter inf --samples 3", 2, "--jitter"),
    ("jitter-negative", f"simulate {BASE} --jitter -0.5", 2, "--jitter"),
    ("samples-huge", f"simulate {BASE} --jitter 0.1 --samples 100000000", 2, "--samples"),
    ("samples-0", f"simulate {BASE} --samples 0", 2, "--samples"),
    ("set-pp-0", f"whatif {BASE} --set layout.pp=0", 2, "layout.pp"),
    ("set-tp-negative", f"whatif {BASE} --set tp=-2", 2, "layout.tp"),
    ("set-gpus-1e400", f"whatif {BASE} --set gpus=1e400", 2, "gpus"),
    ("set-gpus-nan", f"whatif {BASE} --set gpus=nan", 2, None),
    ("set-vocab-1e15", f"whatif {BASE} --set model.vocab=1e15", 2, "vocab"),
    ("set-peak-1e300", f"whatif {BASE} --set hardware.peak_tflops.bf16=1e300", 2, "peak_tflops"),
    ("set-seq-1e12", f"whatif {BASE} --set seq=1e12", 2, "seq_length"),
    ("set-unknown", f"whatif {BASE} --set nonsense=3", 2, "unknown key"),
    ("set-no-equals", f"whatif {BASE} --set tp", 2, None),
    ("step-tiny", f"sensitivity {BASE} --step 1e-300", 2, "--step"),
    ("step-nan", f"sensitivity {BASE} --step nan", 2, "--step"),
    ("step-half", f"sensitivity {BASE} --step 0.5", 2, "--step"),
    ("vary-twice", f"sweep {BASE} --vary gpus=8,16 --vary gpus=32", 2, "--vary"),
    ("vary-alias-twice", f"sweep {BASE} --vary tp=1,2 --vary layout.tp=4", 2, "--vary"),
    ("vary-huge-grid", f"sweep {BASE} --vary tp={','.join(['1'] * 101)} --vary pp={','.join(['1'] * 100)}", 2,
     "--vary"),
    ("vary-none", f"sweep {BASE}", 2, "--vary"),
    ("vary-gpus-text", f"sweep {BASE} --vary gpus=8,abc", 2, "--vary"),
    ("gpus-huge-estimate", "estimate -m gpt3-125m -H a100-sxm-80gb -g 100000000 --global-batch 100000000", 2,
     "--gpus"),
    ("gpus-huge-plan", "plan -m gpt3-125m -H a100-sxm-80gb -g 100000000 --global-batch 100000000", 2, "--gpus"),
    ("seq-huge-plan", "plan -m llama3-8b -H h100-sxm-80gb -g 8 --global-batch 8 --seq 1000000000000", 2, "--seq"),
    ("batch-huge", "estimate -m gpt3-125m -H a100-sxm-80gb -g 8 --global-batch 100000000000000", 2,
     "--global-batch"),
    ("tp-zero", f"estimate {BASE} --tp 0", 2, "--tp"),
    ("tp-text", f"estimate {BASE} --tp abc", 2, "--tp"),
    ("zero-5", f"estimate {BASE} --zero 5", 2, "--zero"),
    ("headroom-nan", f"plan {BASE} --memory-headroom nan", 2, "--memory-headroom"),
    ("headroom-1", f"plan {BASE} --memory-headroom 1", 2, "--memory-headroom"),
    ("moe-imbalance-nan", f"estimate {BASE} --moe-imbalance nan", 2, "--moe-imbalance"),
    ("capacity-inf", f"estimate {BASE} --moe-capacity-factor inf", 2, "--moe-capacity-factor"),
    ("timeout-nan", "validate run --timeout nan --out {out}/r.json", 2, "--timeout"),
    ("timeout-0", "validate run --timeout 0 --out {out}/r.json", 2, "--timeout"),
    ("timeout-huge", "calibrate --timeout 1e12 --results {in}/results.json --out {out}/o.yaml", 2, "--timeout"),
    ("collect-timeout-inf", "validate collect {out} --timeout inf --out {out}/r.json", 2, "--timeout"),
    ("slurm-timeout-nan", "validate slurm --timeout nan", 2, "--timeout"),
    ("usage-unknown-option", f"estimate {BASE} --bogus", 2, "--bogus"),
    ("usage-missing-value", f"plan {BASE} --top", 2, "--top"),
    ("usage-unknown-command", "bogus", 2, "bogus"),
    ("usage-unknown-subcommand", "hw bogus", 2, "bogus"),
    ("usage-missing-model", "plan -H a100-sxm-80gb -g 8 --global-batch 16", 2, "--model"),
    ("rope-theta-string", "estimate -m {in}/rope.json -H a100-sxm-80gb -g 8 --global-batch 16", 2, "rope_theta"),
    ("vocab-1e15-file", "estimate -m {in}/vocab.json -H a100-sxm-80gb -g 8 --global-batch 16", 2, "vocab_size"),
    ("layers-1e6-file", "plan -m {in}/layers.json -H a100-sxm-80gb -g 8 --global-batch 16", 2, "num_layers"),
    ("seq-1e12-scenario", "estimate --layout {in}/seq.json", 2, "seq_length"),
    ("peak-1e300-profile", "estimate -m gpt3-125m -H {in}/fast.yaml -g 8 --global-batch 16", 2, "bf16"),
    ("profile-as-overlay", "estimate -m gpt3-125m -H a100-sxm-80gb -g 8 --global-batch 16 --calibration "
     "{in}/hw.yaml", 2, "a whole hardware profile"),
    ("overlay-wrong-base", "estimate -m gpt3-125m -H h100-sxm-80gb -g 8 --global-batch 16 --calibration "
     "{in}/overlay.yaml", 2, "--calibration"),
    ("overlay-bad-field", "estimate -m gpt3-125m -H a100-sxm-80gb -g 8 --global-batch 16 --calibration "
     "{in}/badoverlay.yaml", 2, "badoverlay.yaml: --calibration"),
    ("overlay-missing", f"estimate {BASE} --calibration {{in}}/missing.yaml", 2, "--calibration"),
    ("scenario-as-model", "estimate -m {in}/scenario.json -H a100-sxm-80gb -g 8 --global-batch 16", 2,
     "--layout"),
    ("hf-unknown-architecture", "model show {in}/arch.json", 2, "model_type"),
    ("kv-heads-vs-tp", "estimate -m {in}/kv6.json -H a100-sxm-80gb -g 8 --global-batch 16 --tp 4 "
     "--framework megatron", 2, "kv_heads"),
    ("collect-bad-task", "validate collect {in}/work --out {out}/r.json", 2, "task file"),
    ("collect-not-folder", "validate collect {in}/runs.csv --out {out}/r.json", 2, "not a folder"),
    ("readme-unknown", "bench readme --only nothing-like-this", 2, "--only"),
    ("plan-out-without-export", f"plan {BASE} --out {{out}}/p.json", 2, "--out"),
    ("plan-export-unknown", f"plan {BASE} --export nope", 2, "--export"),
    ("validated-only-nothing", "plan -m gpt3-125m -H mi300x -g 8 --global-batch 16 --validated-only", 1,
     "measured run"),
    ("rank-variation-nan", f"simulate {BASE} --rank-variation nan", 2, "--rank-variation"),
    ("rank-variation-huge", f"simulate {BASE} --rank-variation 1e300", 2, "--rank-variation"),
    ("straggler-junk", f"simulate {BASE} --straggler junk", 2, "--straggler"),
    ("straggler-nan", f"simulate {BASE} --straggler rank=1,compute=nan", 2, "--straggler"),
    ("failure-rate-nan", f"estimate {BASE} --tokens 1T --failure-rate nan", 2, "--failure-rate"),
    ("checkpoint-interval-negative", f"estimate {BASE} --tokens 1T --checkpoint-interval -5s", 2,
     "--checkpoint-interval"),
    ("run-unknown-plan", "run no-such-plan", 2, None),
    ("run-set-unknown", "run llama3-405b --set nonsense=3", 2, "--set"),
    ("run-set-nan", "run llama3-405b --set failure_rate=nan", 2, None),
    ("stdin-junk-model", "estimate -m - -H a100-sxm-80gb -g 8 --global-batch 16", 2, "-:"),
]


def _write_inputs(folder: Path) -> None:
    """The valid input files and the purpose-made bad ones of VALUE_CASES, in ``folder``."""
    from planner.cli.common import build_scenario

    folder.mkdir()
    (folder / "model.yaml").write_text((models_dir() / "gpt3-125m.yaml").read_text())
    hw = (hardware_dir() / "a100-sxm-80gb.yaml").read_text()
    (folder / "hw.yaml").write_text(hw)
    data = yaml.safe_load(hw)
    data["device"]["peak_tflops"]["bf16"] = 1e300
    (folder / "fast.yaml").write_text(yaml.safe_dump(data))
    (folder / "overlay.yaml").write_text("calibration: {base: a100-sxm-80gb}\ndevice: {kernel_overhead_us: 5}\n"
                                         "sources: {device.kernel_overhead_us: measured}\n")
    (folder / "badoverlay.yaml").write_text("device: {kernel_overhead_us: -5}\nsources: {device: x}\n")
    scenario = build_scenario(model="gpt3-125m", hardware="a100-sxm-80gb", gpus=8, global_batch=16, tp=2)
    doc = scenario.to_file_dict()
    (folder / "scenario.json").write_text(json.dumps(doc))
    doc["training"]["seq_length"] = 10**12
    (folder / "seq.json").write_text(json.dumps(doc))
    hf = dict(model_type="llama", hidden_size=768, num_hidden_layers=2, num_attention_heads=12,
              num_key_value_heads=6, intermediate_size=1024, vocab_size=1000)
    (folder / "kv6.json").write_text(json.dumps(hf))
    (folder / "rope.json").write_text(json.dumps({**hf, "rope_theta": "abc"}))
    (folder / "vocab.json").write_text(json.dumps({**hf, "vocab_size": 10**15}))
    (folder / "layers.json").write_text(json.dumps({**hf, "num_hidden_layers": 10**6}))
    (folder / "arch.json").write_text(json.dumps({"architectures": ["NoSuchForCausalLM"], "hidden_size": 8}))
    (folder / "runs.csv").write_text("row_id,model\n1,x\n")
    (folder / "steps.json").write_text('{"steps": []}')
    (folder / "results.json").write_text('{"jobs": []}')
    (folder / "work").mkdir()
    (folder / "work" / "job_0.json").write_text('{"kind": "nonsense"}')


def _snapshot(folder: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(folder.rglob("*")):
        try:
            st = p.lstat()
        except OSError:
            continue
        out[str(p.relative_to(folder))] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return out


def _alarm(_signum, _frame):
    raise TimeoutError("the case did not finish: a hang")


def run_case(argv: list[str], stdin: bytes = b"not: [a model") -> tuple[int, str, str]:
    """``paraplan argv`` in-process with a bounded wait; (exit code, stdout, stderr)."""
    from planner.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_LIMIT_S)
    real_stdin = os.sys.stdin
    os.sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.sys.stdin = real_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    _write_inputs(root / "in")
    kinds = _make_kinds(root)
    return root, kinds


def _check(corpus_dir, argv_text: str, bad: str | None, code: int, text: str | None) -> None:
    root, kinds = corpus_dir
    case = root / "case"
    case.mkdir(exist_ok=True)
    for p in sorted(case.rglob("*"), reverse=True):  # a fresh, empty case folder
        p.chmod(0o700) if not p.is_symlink() else None
        p.unlink() if p.is_file() or p.is_symlink() or p.is_socket() else p.rmdir()
    bad_path = (kinds.get(bad) if bad in kinds else _output_path(bad, case)) if bad else None
    argv = [a.replace("{in}", str(root / "in")).replace("{out}", str(case)).replace("{X}", bad_path or "")
            for a in argv_text.split()]
    before = _snapshot(case)
    kinds_before = _snapshot(root / "kinds")
    cwd = os.getcwd()
    os.chdir(case)
    try:
        got, out, err = run_case(argv)
    finally:
        os.chdir(cwd)
    where = f"{' '.join(argv)}\nstdout: {out[-1500:]}\nstderr: {err[-1500:]}"
    assert "Traceback" not in out + err, where
    assert got == code, where
    if code:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, where
        if text is not None:
            assert text in errors[0], where
        assert _snapshot(case) == before, f"left behind: {where}"
    assert _snapshot(root / "kinds") == kinds_before, f"an input was changed: {where}"
    assert not Path("/dev/paraplan-corpus-new-file").exists()


@pytest.mark.parametrize("argv, bad, code, text", list(_input_cases()))
def test_bad_input_file(corpus_dir, argv, bad, code, text):
    _check(corpus_dir, argv, bad, code, text)


@pytest.mark.parametrize("argv, bad, code, text", list(_output_cases()))
def test_bad_output_path(corpus_dir, argv, bad, code, text):
    _check(corpus_dir, argv, bad, code, text)


@pytest.mark.parametrize("argv, code, text", [pytest.param(a, c, t, id=i) for i, a, c, t in VALUE_CASES])
def test_bad_value(corpus_dir, argv, code, text):
    _check(corpus_dir, argv, None, code, text)


def test_the_corpus_has_at_least_150_cases():
    assert len(list(_input_cases())) + len(list(_output_cases())) + len(VALUE_CASES) >= 150
