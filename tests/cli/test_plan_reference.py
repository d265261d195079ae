"""plan prices the layout published with a zoo model as its reference and beats or matches it."""

import json


def test_published_layout_is_the_reference(run_cli):
    r = run_cli("plan", "--model", "frontier-175b", "--hardware", "mi250x-frontier", "--gpus", "128",
                "--global-batch", "640", "--recipe", "deepspeed", "--precision", "fp16", "--top", "3", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert "launch_gpt175b" in data["reference_source"]
    ref = data["reference"]
    assert ref["layout"]["tp"] == 4 and ref["layout"]["pp"] == 16
    assert data["best"]["estimate"]["step_time_s"] <= ref["estimate"]["step_time_s"]
