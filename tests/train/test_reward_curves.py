"""The reward-curves report section (autoalign.report.reward_curves): each RL phase's reward per step and per scorer
beside the oracle's figures per round, from the run's metrics and its train manifests."""

import json

from autoalign.report.reward_curves import reward_curves_section, reward_series, rl_phases, with_train_metrics

LOG = [{"step": 1, "reward": 0.25, "rewards/execution/mean": 0.25, "rewards/judge/mean": 0.5},
       {"step": 2, "reward": 0.75, "rewards/execution/mean": 0.75}]


def _lab(v):
    return {"suite": "lab", "metrics": {a: {"value": v, "lo": v - 0.1, "hi": v + 0.1}
                                        for a in ("helpful", "harmless", "honest", "composite")}}


ROUNDS = [{"round": 0, "results": [_lab(0.4)]},
          {"round": 1, "results": [_lab(0.5)],
           "train": {"phases": [{"name": "sft", "status": "trained"}, {"name": "grpo", "status": "trained"}],
                     "sft": {"steps": 3}, "grpo": {"reward_log": LOG}}}]


def test_series_per_scorer_and_phases_with_a_log():
    assert reward_series(LOG) == {"reward": [0.25, 0.75], "execution": [0.25, 0.75], "judge": [0.5, None]}
    assert [n for n, _ in rl_phases(ROUNDS[1])] == ["grpo"] and rl_phases(ROUNDS[0]) == []


def test_the_section_plots_rewards_and_the_oracle():
    html = reward_curves_section(ROUNDS)
    assert html.count("<svg") == 2 and "round 1: grpo reward per step" in html and "oracle" in html
    assert "step 2: 0.750" in html and "round 1 helpful: 0.500 [0.400, 0.600]" in html
    assert reward_curves_section(ROUNDS[:1]) == ""  # no RL phase, no section


def test_train_metrics_are_read_from_the_run(tmp_path):
    (tmp_path / "round-1" / "train").mkdir(parents=True)
    (tmp_path / "round-1" / "train" / "manifest.json").write_text(json.dumps({"metrics": ROUNDS[1]["train"]}))
    rounds = with_train_metrics(tmp_path, [{k: v for k, v in r.items() if k != "train"} for r in ROUNDS])
    assert rounds[0]["train"] == {} and rounds[1]["train"]["grpo"]["reward_log"] == LOG


def test_the_run_report_shows_the_reward_curves_of_its_rl_rounds(tmp_path):
    """write_run_report reads the train manifests beside metrics.json (whose results load as SuiteResults)."""
    from autoalign.report.html import write_run_report

    def full(v):
        lab = _lab(v)
        return {**lab, "model": "m", "metrics": {a: {**m, "n": 40, "axis": a, "scorer": "x"} for a, m in lab["metrics"].items()}}

    (tmp_path / "round-1" / "train").mkdir(parents=True)
    (tmp_path / "round-1" / "train" / "manifest.json").write_text(json.dumps({"metrics": ROUNDS[1]["train"]}))
    rounds = [{"round": 0, "model": "m0", "results": [full(0.4)]}, {"round": 1, "model": "m1", "results": [full(0.5)]}]
    (tmp_path / "metrics.json").write_text(json.dumps({"run": "t", "rounds": rounds,
                                                       "final": {"round": 1, "model": "m1"}}))
    html = write_run_report(tmp_path).read_text()
    assert "<h2>Reward curves</h2>" in html and "round 1: grpo reward per step" in html
