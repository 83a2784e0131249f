"""Performance gap recovered (Burns et al. 2023), by hand."""

import pytest

from autoalign.evaluate.weak_to_strong import accuracy, pgr, pgr_interval


def test_pgr_on_hand_numbers():
    assert pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)  # (0.7 - 0.6) / (0.8 - 0.6)
    assert pgr(0.6, 0.8, 0.8) == pytest.approx(1.0)  # the ceiling reached
    assert pgr(0.6, 0.5, 0.8) == pytest.approx(-0.5)  # worse than its supervisor
    assert pgr(0.6, 0.9, 0.8) == pytest.approx(1.5)  # beyond the ceiling


def test_pgr_is_undefined_when_the_ceiling_equals_the_weak():
    assert pgr(0.7, 0.9, 0.7) is None
    same = [True, False, True, False]
    out = pgr_interval(same, [True, True, True, False], same, resamples=200)
    assert out["value"] is None and out["lo"] is None and out["undefined_resamples"] == 200


def test_pgr_interval_is_paired_and_contains_the_value():
    weak = [True, False, False, False] * 10      # 0.25
    w2s = [True, True, False, False] * 10        # 0.50
    ceiling = [True, True, True, False] * 10     # 0.75
    out = pgr_interval(weak, w2s, ceiling, resamples=500, seed=3)
    assert out["value"] == pytest.approx(0.5) and out["n"] == 40
    assert out["lo"] <= 0.5 <= out["hi"] and out["hi"] - out["lo"] < 1.0
    with pytest.raises(ValueError):
        pgr_interval(weak, w2s[:-1], ceiling)


def test_accuracy_has_a_wilson_interval():
    a = accuracy([True, True, False, True])
    assert a["value"] == 0.75 and a["n"] == 4 and a["lo"] < 0.75 < a["hi"]
