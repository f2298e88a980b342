"""The reproduction plan: equal budgets per system, each run's schedule ending at its budget stop."""

from __future__ import annotations

import dataclasses
from itertools import islice
from pathlib import Path

import pytest

from lst_lightning.lit.optim import lr_multiplier
from lst_lightning.reproduce import plan as P

ROOT = Path(__file__).resolve().parents[2]
TINY = P.Settings(seeds=(0, 1), ref_steps=6, batch_size=2, max_patches=32, max_tokens=96)


def test_budget_step_is_the_first_step_reaching_the_budget() -> None:
    assert P.budget_step([3, 3, 3, 3], 9) == (3, 9.0)
    assert P.budget_step([3, 3, 3, 3], 9.5) == (4, 12.0)
    assert P.budget_step([10], 1) == (1, 10.0)
    with pytest.raises(ValueError, match="before the budget"):
        P.budget_step([1, 1], 5)


def test_run_config_seeds_sizes_and_scales() -> None:
    scale = P.SPEECH_HEAVY
    lst = P.run_config(
        P.load_experiment(ROOT, "tiny_lst_static"), "tiny_lst_static", scale, TINY, 7, 40, "/d"
    )
    base = P.run_config(
        P.load_experiment(ROOT, "tiny_baseline"), "tiny_baseline", scale, TINY, 7, 55, "/d"
    )
    assert lst["seed_everything"] == lst["data"]["seed"] == 7  # model and data seed
    assert lst["trainer"]["max_steps"] == 40 and base["trainer"]["max_steps"] == 55
    assert lst["model"]["optim"]["warmup_steps"] == 4
    args = lst["model"]["network"]["init_args"]
    assert args["encoder"]["d_model"] == 64 and args["decoder"]["n_layers"] == 1
    assert args["encoder"]["n_heads"] == 4  # untouched fields stay
    assert "encoder" not in base["model"]["network"]["init_args"]
    assert lst["data"]["mixture"] == base["data"]["mixture"] == scale.mixture
    # a baseline row holds as many tokens as an LST row has global positions
    assert base["data"]["packing"] == {"mode": "tokens", "max_tokens": 32}
    assert lst["data"]["packing"]["max_patches"] == 32
    assert lst["trainer"]["limit_val_batches"] == 0
    assert lst["checkpoint"]["save_top_k"] == 0


@pytest.mark.parametrize("quick", [True, False])
def test_plans_cover_the_issue(quick: bool) -> None:
    scales = P.scales(quick)
    assert len(scales) >= (1 if quick else 2)
    if not quick:
        main = scales[0]
        assert set(main.systems) == set(P.SYSTEMS)  # all six at the main scale
        assert all("tiny_lst_curriculum" in s.systems for s in scales)  # curriculum at every scale
        assert len(P.settings(quick).seeds) >= 3


def test_plan_has_equal_budgets_and_binding_steps(small_generated: Path) -> None:
    scale = dataclasses.replace(
        P.MAIN,
        systems=("tiny_baseline", "tiny_lst_static", "tiny_lst_curriculum"),
        token_systems=("tiny_baseline", "tiny_lst_static"),
    )
    runs, budgets = P.build_plan(ROOT, str(small_generated), True, lambda _: None, TINY, [scale])
    assert {(r.system, r.kind) for r in runs} == {
        ("tiny_baseline", "flops"), ("tiny_baseline", "tokens"), ("tiny_lst_static", "flops"),
        ("tiny_lst_static", "tokens"), ("tiny_lst_curriculum", "flops"),
    }  # fmt: skip
    for r in runs:
        assert r.budget == budgets["main"][r.kind]  # one budget per scale and kind
        config = P.run_config(
            P.load_experiment(ROOT, r.system), r.system, scale, TINY, r.seed, r.max_steps,
            str(small_generated),
        )  # fmt: skip
        # replaying the run's own stream (with its own T for the curriculum) binds at max_steps
        index = 0 if r.kind == "flops" else 1
        counts = [c[index] for c in islice(P.stream_counts(config, r.max_steps), r.max_steps + 5)]
        assert P.budget_step(counts, r.budget)[0] == r.max_steps
        assert sum(counts[: r.max_steps - 1]) < r.budget <= sum(counts[: r.max_steps])
        # so the cosine reaches its floor exactly at the budget stop
        assert lr_multiplier(r.max_steps, 1, r.max_steps, 0.01) == pytest.approx(0.01)
        assert lr_multiplier(r.max_steps - 1, 1, r.max_steps, 0.01) > 0.01
    static0 = [r for r in runs if r.system == "tiny_lst_static" and r.seed == 0]
    assert {r.max_steps for r in static0} == {TINY.ref_steps}
    assert [r.same_as for r in static0] == [None, "main/tiny_lst_static/flops-seed0"]
    baseline = [r for r in runs if r.system == "tiny_baseline" and r.kind == "flops"]
    assert all(r.max_steps > TINY.ref_steps for r in baseline)  # cheaper steps, more of them


def test_run_order_puts_headline_groups_first_seed_by_seed() -> None:
    def spec(system: str, scale: str, seed: int, kind: str = "flops") -> P.RunSpec:
        return P.RunSpec(system, scale, seed, kind, 1.0, 10, 1.0, 1)

    runs = [
        spec("tiny_bpe_baseline", "main", 0),
        spec("tiny_baseline", "main", 1, "tokens"),
        spec("tiny_lst_static", "speech64", 0),
        spec("tiny_baseline", "main", 1),
        spec("tiny_lst_static", "main", 0),
        spec("tiny_baseline", "main", 0),
    ]
    order = [r.name for r in P.run_order(runs)]
    assert order == [
        "main/tiny_lst_static/flops-seed0", "main/tiny_baseline/flops-seed0",
        "main/tiny_baseline/flops-seed1", "speech64/tiny_lst_static/flops-seed0",
        "main/tiny_baseline/tokens-seed1", "main/tiny_bpe_baseline/flops-seed0",
    ]  # fmt: skip
