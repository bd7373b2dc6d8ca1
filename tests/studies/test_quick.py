"""Quick runs of every study (≈ 20–30 s in total) and checks that the claims can fail."""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pytest

from studies import (
    STUDIES,
    approximation,
    descent,
    klw_robustness,
    midpoint_order,
    reproduce,
    schrodinger_adaptive,
)
from studies._common import Store, load_results
from studies._runner import runs_of

FIGURES = {
    "klw_robustness": ["klw_error_vs_h", "klw_robustness"],
    "schrodinger_adaptive": ["schrodinger_adaptive"],
    "midpoint_order": ["midpoint_order"],
    "approximation": ["approximation"],
    "descent": ["descent"],
    "timing": ["timing"],
}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``lowrank-ode reproduce --quick``: every study, its own assertions inside ``run``.

    The command line runs them; the Python call then reloads the saved results (each study
    resumes from its JSON) and checks the claims again on what was written to disk.
    """
    from lowrank_ode.cli import main

    out = tmp_path_factory.mktemp("studies")
    assert main(["reproduce", "--quick", "--out", str(out)]) == 0
    res = reproduce(quick=True, out=out, progress=False, verbose=False)
    return out, res


MNIST = {"mnist_dlrt": ["mnist_dlrt"], "mnist_robustness": ["mnist_robustness"]}


def test_registry_lists_all_studies():
    assert set(STUDIES) == set(FIGURES) | set(MNIST)
    for mod in STUDIES.values():
        for fn in ("run", "plot", "table"):
            assert callable(getattr(mod, fn))


@pytest.mark.parametrize("name", list(FIGURES))
def test_quick_outputs(quick, name):
    out, res = quick
    r = res[name]
    assert r["complete"] and r["meta"]
    saved = load_results(out / f"{name}.json")
    assert saved["configs"].keys() == r["configs"].keys()
    assert (out / f"{name}.json").stat().st_size < 300_000
    json.loads((out / f"{name}.json").read_text())  # strict JSON (no bare NaN/Infinity)
    for fig in FIGURES[name]:
        for ext in ("png", "pdf"):
            f = out / f"{fig}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f
    text = STUDIES[name].table(r)
    assert "|" in text and "ublished" in text
    assert (out / f"{name}_table.md").exists()


def test_timing_check_can_fail():
    from studies import timing

    slow = {
        "configs": {
            "dense": {"train_s": 1.0, "predict_s": 1.0},
            "5": {"train_s": 2.0, "predict_s": 0.5},
        }
    }
    with pytest.raises(AssertionError):
        timing.check(slow)


def test_order_assertion_fails_for_first_order_method(tmp_path):
    """The midpoint study asserts second order: BUG (first order) must fail it."""
    with pytest.raises(AssertionError, match="expected second order"):
        midpoint_order.run(quick=True, out=tmp_path, progress=False, method="bug")


def test_klw_check_fails_on_wrong_order(quick):
    r = copy.deepcopy(quick[1]["klw_robustness"])
    e = r["configs"]["h/linear/r16/bug"]["errors"]
    r["configs"]["h/linear/r16/bug"]["errors"] = [e[0] * (h / 0.1) ** 2 for h in r["meta"]["hs"]]
    with pytest.raises(AssertionError, match="empirical order"):
        klw_robustness.check(r)


def test_klw_check_fails_when_direct_is_robust(quick):
    r = copy.deepcopy(quick[1]["klw_robustness"])
    for key in [k for k in r["configs"] if k.startswith("robust/") and k.endswith("/direct")]:
        r["configs"][key]["errors"] = r["configs"][key.replace("direct", "ksl")]["errors"]
    with pytest.raises(AssertionError, match="break down"):
        klw_robustness.check(r)


def test_klw_records_breakdown_as_inf(quick):
    r = quick[1]["klw_robustness"]
    direct = r["configs"]["h/linear/r16/direct"]["errors"]
    assert any(math.isinf(v) for v in direct)  # σ₁₆ = 2⁻¹⁶ ≪ h = 0.1: factor ODEs blow up


def test_schrodinger_check_fails_on_norm_drift(quick):
    r = copy.deepcopy(quick[1]["schrodinger_adaptive"])
    r["configs"]["rabug/fro"]["series"]["norm_drift"][-1] = 1e-2
    with pytest.raises(AssertionError, match="norm_drift"):
        schrodinger_adaptive.check(r)


def test_approximation_check_fails_on_wrong_eps_scaling(quick):
    r = copy.deepcopy(quick[1]["approximation"])
    for k, v in r["configs"].items():
        if k.startswith("eps/") and v["cap"] is not None:
            v["error"] = v["eps"] ** 2
    with pytest.raises(AssertionError, match="ε"):
        approximation.check(r)


def test_descent_check_fails_on_violated_bound(quick):
    r = copy.deepcopy(quick[1]["descent"])
    key = next(k for k, v in r["configs"].items() if v["method"] == "rabug")
    r["configs"][key]["max_violation"] = 1e-3
    with pytest.raises(AssertionError, match="bound"):
        descent.check(r)


def test_store_resumes_only_with_same_meta(tmp_path):
    s = Store(tmp_path, "x", {"a": 1})
    s.put("k", {"v": [1.0, float("inf"), float("nan")]})
    s2 = Store(tmp_path, "x", {"a": 1})
    assert s2.resumed == 1 and "k" in s2
    v = s2.get("k")["v"]
    assert v[0] == 1.0 and math.isinf(v[1]) and np.isnan(v[2])
    assert Store(tmp_path, "x", {"a": 2}).resumed == 0


def test_reproduce_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown studies"):
        reproduce(["nope"], quick=True, out=tmp_path)


@pytest.mark.parametrize("name", list(MNIST))
def test_mnist_quick_outputs(quick, name):
    """The MNIST studies (bundled subset): one JSON per run, figure, table beside the paper."""
    out, res = quick
    runs = runs_of(res[name])
    assert res[name]["_grid"]["state"] == "complete"
    assert runs and all("test_accuracy" in r and "history" in r for r in runs.values())
    # every run names the commit that produced it (7 hex digits, maybe "+dirty", or a version)
    assert all(
        re.fullmatch(r"([0-9a-f]{7}(\+dirty)?|lowrank_ode .+)", r["code"]) for r in runs.values()
    )
    for fig in MNIST[name]:
        for ext in ("png", "pdf"):
            assert (out / f"{fig}.{ext}").stat().st_size > 1000
    assert "paper" in STUDIES[name].table(res[name])


def test_mnist_robustness_claim_can_fail():
    """The quick check rejects results where U Vᵀ keeps up with DLRT at decay 10."""
    from studies import mnist_robustness

    fake = {
        f"decay{d}_{m}_seed0": {"test_accuracy": 0.8}
        for d in (1, 2, 10)
        for m in ("dlrt", "vanilla")
    }
    with pytest.raises(AssertionError, match="DLRT not ahead of U Vᵀ at decay 10"):
        mnist_robustness.check_quick(fake)
