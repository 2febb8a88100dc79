"""The diagnosis engine: metrics.jsonl records in, one at a time; states entered and left, with evidence, out.

The same engine runs live inside the trainer (a warning line when a state is entered, `train.doctor.stop_on`)
and afterwards over a finished run's log (`ganforge doctor RUN`), so both say the same thing. Each detector
turns one record into an observation (alarm or not, and why); a state is entered when its alarm has held on
consecutive observations for `persist` of the run (and `min_obs` observations), and left when it has not held
for as long. Pure Python on the logged numbers: nothing here touches a network.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .rules import HEALTHY, SEVERITY, STATES, THRESHOLDS, Thresholds

GRAD_KEYS = ("grad_norm_g", "grad_norm_d", "grad_norm_d_input")
# The precursor watches G's gradient and D's input gradient: D's own parameter gradient leaps 100x and back in
# runs that never reach a NaN (bench doctor: healthy-demo, dwins-big-d).
GROWTH_KEYS = ("grad_norm_g", "grad_norm_d_input")
# A G that does not move keeps its first output (low diversity) and lets D win; a G collapsed onto one output
# has stopped moving. Each explains the other's symptoms only when it began first.
EXPLAINS = {"no_learning": ("collapse", "d_wins"), "collapse": ("no_learning",)}
RECENT = 4  # observations in the "recent" window of the gradient-growth detector


@dataclass
class Observation:
    """One detector's reading of one record."""

    alarm: bool
    evidence: str


@dataclass
class Period:
    """A state held from step `start` to `end` (None: still held at the last record), with its evidence."""

    state: str
    start: int
    end: int | None = None
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "title": STATES[self.state],
            "start": self.start,
            "end": self.end,
            "evidence": self.evidence,
        }


@dataclass
class _Track:
    """Run-length bookkeeping of one state's alarms."""

    on: list[tuple[int, str]] = field(default_factory=list)  # the current run of alarms: (step, evidence)
    off: list[int] = field(default_factory=list)  # the current run of non-alarms while the state is held
    period: Period | None = None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def _num(rec: dict[str, Any], key: str) -> float | None:
    v = rec.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


class Doctor:
    """Feeds on metrics.jsonl records of a run of `total_steps` steps; `periods` is the diagnosed timeline so far."""

    def __init__(self, total_steps: int, thresholds: Thresholds = THRESHOLDS, lr_g0: float | None = None) -> None:
        self.total = max(1, int(total_steps))
        self.th = thresholds
        self.lr_g0 = lr_g0
        # (detector, state it signals, observations in a row needed, the share of the run they must span)
        th, n = thresholds, thresholds.min_obs
        self._detectors: list[tuple[str, str, Callable[[dict[str, Any], int], Observation | None], int, float]] = [
            ("nonfinite", "unstable", self._nonfinite, 1, 0.0),
            ("grad_growth", "unstable", self._grad_growth, n, 0.0),  # urgent: the next steps may be NaN
            # fd_rises evaluations are persistence enough; a jump must hold on the next evaluation too
            ("fd_rise", "divergence", self._fd_rise, 1, 0.0),
            ("fd_jump", "divergence", self._fd_jump, n, 0.0),
            ("late_change", "divergence", self._late_change, n, th.persist),
            ("collapse", "collapse", self._collapse, n, th.persist),
            ("collapse_eval", "collapse", self._collapse_eval, n, th.persist),
            ("collapse_low", "collapse", self._collapse_low, n, th.collapse_persist),
            ("d_wins", "d_wins", self._d_wins, n, th.d_wins_persist),
            ("no_learning", "no_learning", self._no_learning, n, th.persist),
        ]
        self.tracks = {d[0]: _Track() for d in self._detectors}
        self.periods: list[Period] = []
        self.grads: dict[str, list[float]] = {k: [] for k in GRAD_KEYS}
        self.fds: list[tuple[int, float]] = []
        self.last_step = 0
        self.seen: set[str] = set()  # detectors that had something to read (what the diagnosis could rest on)
        self._g_recent: list[float] = []  # G's gradient norms, for the vanishing-gradient evidence of d_wins
        self._g_peak = 0.0
        self._fine: dict[str, bool] = {}  # collapse signals that have been within bounds at least once
        self._best: dict[str, float] = {}  # and the best value each has had
        self._change: float | None = None  # the latest fixed-noise movement, over the real data's diversity
        self.last_lr_g: float | None = None
        self._fd_best: tuple[int, float] | None = None  # the best FD before the latest evaluation
        self.g_vanished = False  # D won while G's gradient had vanished: D winning is the cause

    # ------------------------------------------------------------------ detectors

    def _warm(self, step: int) -> bool:
        return step >= self.th.warmup * self.total

    def _fell(self, key: str, value: float, low: bool, higher_is_better: bool = True) -> bool:
        """`low` now, after having been fine once or after a fall to under `collapse_drop` of its best so far: a
        collapse is a fall. A G that has never been varied yet is still learning (bench doctor, healthy-big-d:
        grey blobs at step 400, varied digits by 2,000); one whose diversity dropped 0.19 -> 0.004 has collapsed
        (collapse-began: every sample the same black image)."""
        was_fine = self._fine.get(key, False)
        if not low:
            self._fine[key] = True
        best = self._best.get(key)
        sign = 1.0 if higher_is_better else -1.0
        if best is None or sign * value > sign * best:
            self._best[key] = value
        dropped = higher_is_better and best is not None and value < self.th.collapse_drop * best
        return low and (was_fine or dropped)

    def _collapse(self, rec: dict[str, Any], step: int) -> Observation | None:
        why: list[str] = []
        seen = False
        r = _ratio(_num(rec, "signals/sample_diversity"), _num(rec, "signals/real_diversity"))
        if r is not None:
            seen = True
            if self._fell("diversity", r, r < self.th.diversity_ratio):
                why.append(f"fixed-noise diversity {r:.2f} of the real data's (< {self.th.diversity_ratio})")
        for what, key in (("class", "class_coverage"), ("mode", "mode_coverage")):
            c = _ratio(_num(rec, f"signals/{key}"), _num(rec, f"signals/real_{key}"))
            if c is not None:
                seen = True
                if self._fell(key, c, c < self.th.coverage_ratio):
                    why.append(f"{what} coverage {c:.2f} of the real samples' (< {self.th.coverage_ratio})")
        kl = _num(rec, "signals/class_kl")
        if kl is not None and self._fell("class_kl", kl, kl > self.th.class_kl, higher_is_better=False):
            why.append(f"class histogram KL to uniform {kl:.2f} (> ln 3: under a third of the classes' entropy)")
        if not seen or not self._warm(step):
            return None
        return Observation(bool(why), "; ".join(why))

    def _collapse_low(self, rec: dict[str, Any], step: int) -> Observation | None:
        # Low diversity held for long is collapse even if the samples were never varied: a G that gathers on one
        # mode from the start and hops between modes (bench doctor, collapse-gan-ring-fast-g). It must hold for a
        # quarter of the run: a slow G's first uniform blobs pass sooner (healthy-big-d: 5% of its run).
        r = _ratio(_num(rec, "signals/sample_diversity"), _num(rec, "signals/real_diversity"))
        if r is None or not self._warm(step):
            return None
        # Only while G moves: a G frozen at its first, uniform output is not learning at all (no_learning).
        moving = self._change is not None and self._change >= self.th.still
        return Observation(
            r < self.th.diversity_ratio and moving,
            f"fixed-noise diversity {r:.2f} of the real data's "
            f"(< {self.th.diversity_ratio}), held for at least {self.th.collapse_persist:.0%} of the run",
        )

    def _collapse_eval(self, rec: dict[str, Any], step: int) -> Observation | None:
        # In-training evaluation: the class histogram of many samples (its own run of observations: evaluations
        # and grids come at different cadences).
        why, seen = [], False
        for k, v in rec.items():
            if k.startswith("eval/kl_uniform") and _num(rec, k) is not None:
                seen = True
                if self._fell(k, v, v > self.th.class_kl, higher_is_better=False):
                    why.append(f"{k} {v:.2f} (> ln 3)")
        if not seen or not self._warm(step):
            return None
        return Observation(bool(why), "; ".join(why))

    def _d_wins(self, rec: dict[str, Any], step: int) -> Observation | None:
        a_r, a_f = _num(rec, "d_acc_real"), _num(rec, "d_acc_fake")
        if a_r is None or a_f is None or not self._warm(step):
            return None
        alarm = min(a_r, a_f) >= self.th.d_acc
        g = _num(rec, "grad_norm_g")
        vanished = ""
        share = self._g_share() if g is not None else None
        if share is not None and share < self.th.g_vanish:
            vanished = f" ({share:.1e} of its peak: vanished)"
            if alarm:
                self.g_vanished = True
        return Observation(
            alarm,
            f"D right on {a_r:.1%} of real and {a_f:.1%} of fake samples (>= {self.th.d_acc:.0%})"
            + (f", G's gradient norm {g:.3g}{vanished}" if g is not None else ""),
        )

    def _g_share(self) -> float | None:
        """G's gradient norm now (median of the last RECENT log lines) as a share of its peak such median."""
        if len(self._g_recent) < RECENT or self._g_peak <= 0:
            return None
        return statistics.median(self._g_recent[-RECENT:]) / self._g_peak

    def _track_g(self, rec: dict[str, Any]) -> None:
        g = _num(rec, "grad_norm_g")
        if g is not None:
            self._g_recent.append(g)
            if len(self._g_recent) >= RECENT:
                self._g_peak = max(self._g_peak, statistics.median(self._g_recent[-RECENT:]))

    def _fd_rise(self, rec: dict[str, Any], step: int) -> Observation | None:
        fd = next((_num(rec, k) for k in rec if k.startswith("eval/fd_") and _num(rec, k) is not None), None)
        if fd is None or fd <= 0:
            return None
        best = min(self.fds, key=lambda x: x[1]) if self.fds else None
        self.fds.append((step, fd))
        n = self.th.fd_rises
        last = self.fds[-(n + 1) :]
        rising = len(last) == n + 1 and all(b[1] >= a[1] * self.th.fd_rise for a, b in itertools.pairwise(last))
        self._fd_best = best
        return Observation(
            rising,
            f"FD rose {n} evaluations in a row, {last[0][1]:.1f} at step {last[0][0]} to {fd:.1f}"
            if rising
            else f"FD {fd:.1f}",
        )

    def _fd_jump(self, rec: dict[str, Any], step: int) -> Observation | None:
        # Runs after _fd_rise, which recorded this evaluation's FD and the best before it.
        if not self.fds or self.fds[-1][0] != step or not any(k.startswith("eval/fd_") for k in rec):
            return None
        fd, best = self.fds[-1][1], self._fd_best
        if best is None:
            return Observation(False, f"FD {fd:.1f}")
        return Observation(
            fd >= self.th.fd_jump * best[1],
            f"FD {fd:.1f}, {fd / best[1]:.1f}x its best ({best[1]:.1f} at step {best[0]})",
        )

    def _late_change(self, rec: dict[str, Any], step: int) -> Observation | None:
        ch = _ratio(_num(rec, "signals/sample_change"), _num(rec, "signals/real_diversity"))
        if ch is not None and step >= 0.5 * self.total:
            return Observation(
                ch > self.th.late_change,
                f"fixed-noise samples still moving {ch:.2f} of the real "
                f"data's diversity between grids after half the run (> {self.th.late_change})",
            )
        return None

    def _nonfinite(self, rec: dict[str, Any], step: int) -> Observation | None:
        bad = [k for k in (*GRAD_KEYS, "d_loss", "g_loss") if k in rec and rec[k] is None]
        bad += [k for k, v in rec.items() if isinstance(v, float) and not math.isfinite(v)]
        if not bad and not any(k in rec for k in (*GRAD_KEYS, "d_loss")):
            return None
        return Observation(bool(bad), f"non-finite {', '.join(sorted(set(bad)))}")

    def _grad_growth(self, rec: dict[str, Any], step: int) -> Observation | None:
        why, seen = [], False
        for k in GROWTH_KEYS:
            v = _num(rec, k)
            if v is None:
                continue
            seen = True
            # From warm-up on only, baseline included: D's gradients leap by 20-30x in a healthy run's first
            # hundred steps, and a toy G's grow 27x from its near-silent start (bench doctor, healthy-gan-ring).
            if not self._warm(step):
                continue
            hist = self.grads[k]
            hist.append(v)
            if len(hist) >= 2 * RECENT:
                before = statistics.median(hist[:-RECENT])
                now = statistics.median(hist[-RECENT:])
                if before > 0 and now >= self.th.grad_spike * before:
                    why.append(
                        f"{k} grew {now / before:.0f}x ({before:.3g} -> {now:.3g}, median of the last "
                        f"{RECENT} log lines against all since warm-up)"
                    )
        return Observation(bool(why), "; ".join(why)) if seen else None

    def _no_learning(self, rec: dict[str, Any], step: int) -> Observation | None:
        ch = _ratio(_num(rec, "signals/sample_change"), _num(rec, "signals/real_diversity"))
        if ch is None or not self._warm(step):
            return None
        lr = _num(rec, "lr_g")
        if lr is None:
            lr = self.last_lr_g
        if lr is not None and self.lr_g0 and lr < self.th.lr_live * self.lr_g0:
            return None  # a decayed schedule is meant to stop G moving
        vanished = ""
        share = self._g_share()
        if share is not None and share < self.th.g_vanish:  # say so now: the live line comes before D's verdict
            vanished = f"; G's gradient has vanished ({share:.1e} of its peak): D may be winning"
        return Observation(
            ch < self.th.still,
            f"fixed-noise samples moved {ch:.4f} of the real data's diversity "
            f"between grids (< {self.th.still}){vanished}",
        )

    # ------------------------------------------------------------------ feeding

    def _held(self, steps: list[int], need: int, persist: float) -> bool:
        """Whether consecutive observations at `steps` are enough to enter (or leave) a state: `need` of them,
        spanning `persist` of the run."""
        return len(steps) >= need and steps[-1] - steps[0] >= persist * self.total

    def feed(self, rec: dict[str, Any]) -> list[Period]:
        """Read one metrics.jsonl record; the periods it opened (for a live warning)."""
        step = int(rec.get("step", self.last_step))
        self.last_step = max(self.last_step, step)
        if (lr := _num(rec, "lr_g")) is not None:
            if self.lr_g0 is None:
                self.lr_g0 = lr
            self.last_lr_g = lr
        self._track_g(rec)
        ch = _ratio(_num(rec, "signals/sample_change"), _num(rec, "signals/real_diversity"))
        if ch is not None:
            self._change = ch
        opened: list[Period] = []
        for name, state, det, need, persist in self._detectors:
            obs = det(rec, step)
            if obs is None:
                continue
            self.seen.add(name)
            tr = self.tracks[name]
            if obs.alarm:
                tr.on.append((step, obs.evidence))
                tr.off = []
                if tr.period is None and self._held([s for s, _ in tr.on], need, persist):
                    already = any(p.state == state and p.end is None for p in self.periods)
                    tr.period = Period(state, tr.on[0][0], None, [f"step {s}: {e}" for s, e in tr.on[-3:]])
                    self.periods.append(tr.period)
                    if not already:  # another detector of the same state holds it: one warning per state
                        opened.append(tr.period)
                elif tr.period is not None:  # the first readings that opened it, and the latest three
                    ev = tr.period.evidence
                    ev.append(f"step {step}: {obs.evidence}")
                    if len(ev) > 6:
                        del ev[3]
            else:
                tr.on = []
                if tr.period is not None:
                    tr.off.append(step)
                    if self._held(tr.off, max(need, self.th.min_obs), persist):
                        tr.period.end = tr.off[0]
                        tr.period = None
                        tr.off = []
        return opened

    def finish(self, status: str | None = None, error: str | None = None) -> list[Period]:
        """Close the run: a run that stopped on a non-finite value is `unstable` at its end, whatever came before."""
        opened: list[Period] = []
        if status == "failed" and error and "non-finite" in error:
            stopped = f"the run stopped: {error.split(';')[0]}"
            grew = []
            for k in GROWTH_KEYS:  # the precursor, below its line or not, is the evidence of what came before
                h = self.grads[k]
                if len(h) >= 2 * RECENT and statistics.median(h[:-RECENT]) > 0:
                    grew.append(
                        f"{k} {statistics.median(h[-RECENT:]) / statistics.median(h[:-RECENT]):.0f}x its "
                        "level since warm-up in the last 4 log lines"
                    )
            if grew:
                stopped += "; before it, " + ", ".join(grew)
            held = [p for p in (self.tracks[n].period for n in ("nonfinite", "grad_growth")) if p is not None]
            if held:  # the precursor was seen: the NaN ends its period
                held[0].evidence.append(stopped)
            else:
                tr = self.tracks["nonfinite"]
                start = tr.on[0][0] if tr.on else self.last_step
                tr.period = Period("unstable", start, None, [f"step {s}: {e}" for s, e in tr.on[-3:]] + [stopped])
                self.periods.append(tr.period)
                opened.append(tr.period)
        return opened

    # ------------------------------------------------------------------ verdict

    def merged(self) -> list[Period]:
        """The timeline: periods of one state that overlap (several detectors of it) merged, by start step."""
        out: list[Period] = []
        for p in sorted(self.periods, key=lambda p: (p.state, p.start)):
            last = next((q for q in reversed(out) if q.state == p.state), None)
            if last is not None and (last.end is None or p.start <= last.end):
                last.end = None if last.end is None or p.end is None else max(last.end, p.end)
                last.evidence = last.evidence + [e for e in p.evidence if e not in last.evidence][:3]
            else:
                out.append(Period(p.state, p.start, p.end, list(p.evidence)))
        return sorted(out, key=lambda p: p.start)

    def current(self) -> list[str]:
        """States held at the last record, most severe first."""
        held = {state for name, state, *_ in self._detectors if self.tracks[name].period is not None}
        return [s for s in SEVERITY if s in held]

    def verdict(self) -> str:
        """The run's state: the one held longest (most severe on a tie), or healthy when none was entered."""
        if not self.periods:
            return HEALTHY
        span: dict[str, int] = {}
        for p in self.merged():
            end = self.last_step if p.end is None else p.end
            span[p.state] = span.get(p.state, 0) + max(end - p.start, 1)
        if any(p.state == "unstable" and p.end is None for p in self.periods):
            return "unstable"  # a run that ends in (or on the edge of) a NaN is named by it
        # A cause is named before its symptoms: a G that does not move keeps its first, uniform output (low
        # diversity) and lets D win; unless G's gradient vanished under that winning D, which then is the cause.
        for s in self.symptoms():
            span.pop(s, None)
        return max(span, key=lambda s: (span[s], -SEVERITY.index(s)))

    def symptoms(self) -> set[str]:
        """States entered that another entered state, begun no later, explains (their remedies would treat the
        symptom)."""
        start: dict[str, int] = {}
        for p in self.merged():
            start[p.state] = min(start.get(p.state, p.start), p.start)
        explains = dict(EXPLAINS)
        if self.g_vanished:  # G is still because its gradient vanished under a winning D (Goodfellow et al. 2014)
            explains = {"d_wins": ("no_learning", "collapse")}
        out: set[str] = set()
        for cause, sym in explains.items():  # in order: on a tie, the first cause listed is the cause
            if cause in start and cause not in out:
                out |= {s for s in sym if s in start and start[cause] <= start[s]}
        return out
