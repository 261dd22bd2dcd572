"""An exact sampler of the theory's own Gibbs measure at finite N (docs/theory.md eq. 9 and §3b): the check of a
replica solution that does not share its assumptions.

The measure over the variational means m ∈ [−1, 1]^N of one teacher–student instance (inputs X, labels y) is

    P(m) ∝ exp{β A(m)},   A(m) = Σ_μ ln Φ_N(y^μ m·x^μ / √Σ_i(1 − m_i²)) + c Σ_i S(m_i) − γ KL(m‖m′),

with c = κ₁/β (0 in the main text, 1 for the uniform prior) and, for a second task, γ KL to a reference m′ (an
equilibrium sample of task 1, κ₂ = βγ).  It is sampled in u = artanh m, where the flat measure on the cube becomes
Π_i sech² u_i du (log density β A + Σ ln sech² u), by Hamiltonian Monte Carlo (leapfrog, Metropolis test: detailed
balance holds exactly for any step size) combined with parallel tempering over a geometric β ladder (swaps of adjacent
temperatures accepted with min(1, e^{(β_k − β_{k+1})(A_{k+1} − A_k)})).  Everything is batched: disorder samples ×
replicas × temperatures are one tensor.  Half of the replicas start at random (u ~ N(0, 1)), half near the teacher
(m = 0.9 w); that the two groups reach the same state (R̂) is the equilibration test.  Step sizes are tuned per
temperature during the warm-up only, then frozen.  Optionally (`Restraint`) each rung also carries an umbrella window
in q⋆ (all rungs at one β: a Hamiltonian replica exchange between windows; used by gibbs_valleys.py).

Observables at the target β, per recorded sweep: ε_g of the clipped student sgn m, r = m·w/N, q⋆ = m·m/N, the
overlap q_ab = m^a·m^b/N of every pair of replicas on the same instance (its histogram P(q): two peaks are the mark
of replica-symmetry breaking), and A.  Diagnostics: HMC and swap acceptance, the integrated autocorrelation time
τ_int and effective sample size of A and r, R̂ between random and teacher-near starts, the overlap of the A
histograms of adjacent temperatures, and the round trips of the configurations through each ladder with the flow
fraction per rung (`Walkers`).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from field_space import sign
from harness.devices import torch_generator
from teacher_student import sample_trials

DTYPE = torch.float64
TARGET_ACCEPTANCE = 0.7  # of the HMC proposals, per temperature, aimed at during the warm-up
R_HAT_LIMIT = 1.05  # largest R̂ (random vs teacher-near starts) of an equilibrated run
MIN_ESS = 50.0  # smallest effective sample size (per instance) of an equilibrated run


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long and how the chains run."""

    sweeps: int = 2000  # recorded HMC sweeps (each followed by a round of tempering swaps)
    warmup: int = 1000  # sweeps before recording (step sizes tuned here, then frozen)
    leapfrog: int = 10  # leapfrog steps per HMC proposal
    temperatures: int = 8  # rungs of the β ladder (1: no tempering)
    beta_min: float = 2.0  # hottest rung (the ladder is geometric from beta_min to the target β)
    replicas: int = 4  # per instance: half start at random, half near the teacher
    thin: int = 2  # record every `thin`-th sweep

    def __post_init__(self):
        if min(self.sweeps, self.leapfrog, self.temperatures, self.thin) < 1 or self.warmup < 0:
            raise ValueError("sweeps, leapfrog, temperatures and thin must be >= 1, warmup >= 0")
        if self.replicas < 2 or self.replicas % 2:
            raise ValueError(f"replicas must be even and >= 2 (random and teacher-near starts), got {self.replicas}")
        if not self.beta_min > 0:
            raise ValueError(f"beta_min must be > 0, got {self.beta_min}")


@dataclasses.dataclass(frozen=True)
class Restraint:
    """Umbrella windows in the self-overlap q⋆ = m·m/N: rung k adds −(κN/2)(q⋆ − c_k)² to the log density (all rungs
    at one β: the ladder becomes a Hamiltonian replica exchange between windows).  Exchanging the configurations of
    windows k and k+1 changes the log weight by −κN (q⋆_{k+1} − q⋆_k)(c_{k+1} − c_k)."""

    stiffness: float  # κ: the window's q⋆ spread is ≈ 1/√(κN)
    centers: tuple[float, ...]  # c_k per rung

    def log_weight(self, m: torch.Tensor) -> torch.Tensor:
        centers = torch.tensor(self.centers, dtype=m.dtype)
        return -0.5 * self.stiffness * m.shape[-1] * ((m * m).mean(-1) - centers) ** 2

    def gradient(self, m: torch.Tensor, sech_sq: torch.Tensor) -> torch.Tensor:
        """∂/∂u of log_weight: −2κ(q⋆ − c_k) m sech² u."""
        centers = torch.tensor(self.centers, dtype=m.dtype).unsqueeze(-1)
        return -2.0 * self.stiffness * ((m * m).mean(-1, keepdim=True) - centers) * m * sech_sq

    def exchange(self, u: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        q_star = torch.tanh(u).pow(2).mean(-1)
        centers = torch.tensor(self.centers, dtype=u.dtype)
        return -self.stiffness * u.shape[-1] * (q_star[..., low + 1] - q_star[..., low]) * (
            centers[low + 1] - centers[low])


class Measure:
    """β A(m) + Σ ln sech² u of eq. 9 for every chain of a (D instances, R replicas, K temperatures, N) tensor u."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, entropy_weight: float = 0.0,
                 reference: torch.Tensor | None = None, gamma: float = 0.0, restraint: Restraint | None = None,
                 gradient_dtype: torch.dtype = torch.float32):
        self.restraint = restraint  # umbrella windows in q⋆ (one per rung), or None
        self.signed = (inputs * labels.unsqueeze(-1)).to(DTYPE)  # (D, P, N): y^μ x^μ
        # ±1 exactly in float32 or bfloat16: the dtype of the leapfrog gradient's two products over the data
        self.signed_single = self.signed.to(gradient_dtype)
        self.entropy_weight, self.gamma = float(entropy_weight), float(gamma)
        self.reference = None if reference is None else reference.to(DTYPE)  # (D, R, N) or (D, 1, N): m′
        self.reference_u = None if reference is None else torch.atanh(  # u′ = artanh m′ per rung, for the gradient
            self.reference.clamp(-1 + 1e-15, 1 - 1e-15)).unsqueeze(2).float()

    def restrained(self, restraint: Restraint) -> "Measure":
        """The same measure with umbrella windows in q⋆ (one per rung)."""
        copy = object.__new__(Measure)
        copy.__dict__.update(self.__dict__, restraint=restraint)
        return copy

    def action(self, u: torch.Tensor) -> torch.Tensor:
        """A(m(u)) per chain, shape u.shape[:-1]."""
        return self._action(u, *_tanh_and_sech_sq(u))

    def _action(self, u: torch.Tensor, m: torch.Tensor, sech_sq: torch.Tensor) -> torch.Tensor:
        fields = torch.einsum("drkn,dpn->drkp", m, self.signed) / torch.sqrt(sech_sq.sum(-1, keepdim=True))
        value = torch.special.log_ndtr(fields).sum(-1)
        if self.entropy_weight:
            value = value + self.entropy_weight * _ising_entropy(u, m).sum(-1)
        if self.gamma:
            value = value - self.gamma * _ising_kl(u, m, self.reference.unsqueeze(2)).sum(-1)
        return value

    def log_density(self, u: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(β_k A + Σ ln sech² u (+ the restraint of rung k), A) per chain; betas has shape (K,)."""
        m, sech_sq = _tanh_and_sech_sq(u)
        action = self._action(u, m, sech_sq)
        return self.log_density_given_action(u, action, betas), action

    def log_density_given_action(self, u: torch.Tensor, action: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """β_k A + Σ ln sech² u (+ the restraint of rung k) from A(u) (a property of the configuration alone, so a
        configuration that changes rung keeps it)."""
        m, sech_sq = _tanh_and_sech_sq(u)
        log_density = betas * action + torch.log(sech_sq).sum(-1)
        return log_density if self.restraint is None else log_density + self.restraint.log_weight(m)

    def drift(self, u: torch.Tensor) -> torch.Tensor:
        """∂A/∂u per chain, written out (no autograd) in float32, its two products over the data in the measure's
        gradient dtype (the ±1 data are exact in float32 and bfloat16; m and φ/Φ_N are rounded to it).

        With t_μ = y^μ x^μ·m/√S, S = Σ_i sech² u_i, and h = φ/Φ_N: ∂A/∂m_i = Σ_μ h(t_μ)[y^μ x^μ_i/√S
        + m_i y^μ x^μ·m/S^{3/2}], dm/du = sech² u, dS(m)/du = −u sech² u and d KL/du = (u − u′) sech² u."""
        position = u.float()
        m, sech_sq = _tanh_and_sech_sq(position)
        norm = sech_sq.sum(-1, keepdim=True)
        scale = torch.rsqrt(norm)
        products = self.signed_single.dtype
        raw = torch.einsum("drkn,dpn->drkp", m.to(products), self.signed_single).float()  # y x·m
        mills = mills_ratio_single(raw * scale)
        back = torch.einsum("drkp,dpn->drkn", mills.to(products), self.signed_single).float()
        d_action = (back * scale + m * ((mills * raw).sum(-1, keepdim=True) * scale**3)) * sech_sq
        if self.entropy_weight:
            d_action = d_action - self.entropy_weight * position * sech_sq
        if self.gamma:
            d_action = d_action - self.gamma * (position - self.reference_u) * sech_sq
        return d_action

    def gradient_given_drift(self, u: torch.Tensor, drift: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """∂/∂u of the log density from the drift ∂A/∂u: β_k ∂A/∂u − 2m (d ln sech² u/du) + the restraint's."""
        m, sech_sq = _tanh_and_sech_sq(u.float())
        gradient = betas.float().unsqueeze(-1) * drift - 2.0 * m
        if self.restraint is not None:
            gradient = gradient + self.restraint.gradient(m, sech_sq)
        return gradient.double()

    def leapfrog_gradient(self, u: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """∂/∂u of the log density as the leapfrog steps use it (`drift`, then `gradient_given_drift`).  The leapfrog
        integrator stays volume preserving and reversible for any deterministic gradient, and the Metropolis test
        uses the float64 density: the chain is exact whatever the gradient's dtype."""
        return self.gradient_given_drift(u, self.drift(u), betas)


def mills_ratio_single(t: torch.Tensor) -> torch.Tensor:
    """φ(t)/Φ_N(t) of a float32 tensor in vectorised float32 operations (≈ 10⁻⁶ relative for all t): the direct
    ratio of φ(t) to Φ_N(t) = erfc(−t/√2)/2 for t ≥ −6, below Laplace's continued fraction
    s + 1/(s + 2/(s + … + 6/s)) with s = −t (truncation error < 2·10⁻⁸ for s ≥ 6)."""
    direct_t = t.clamp(min=-6.0)
    direct = math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * direct_t * direct_t) / torch.erfc(direct_t * -math.sqrt(0.5))
    s = (-t).clamp(min=6.0)
    tail = s + 6.0 / s
    for level in (5.0, 4.0, 3.0, 2.0, 1.0):
        tail = s + level / tail
    return torch.where(t < -6.0, tail, direct)


def _tanh_and_sech_sq(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tanh u, 1 − tanh² u) from one exponential, without cancellation: with d = e^{−2|u|},
    tanh u = sgn u (1 − d)/(1 + d) and sech² u = 4d/(1 + d)²."""
    decay = torch.exp(-2.0 * u.abs())
    inverse = 1.0 / (1.0 + decay)
    return torch.copysign((1.0 - decay) * inverse, u), 4.0 * decay * inverse * inverse


def _ising_entropy(u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """S(m) = ln 2cosh u − u m of the Ising distribution with mean m = tanh u."""
    return torch.logaddexp(u, -u) - u * m


def _ising_kl(u: torch.Tensor, m: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """KL(m‖m′) = u m − ln 2cosh u − u′ m + ln 2cosh u′ of two Ising distributions (u′ = artanh m′)."""
    reference_u = torch.atanh(reference.clamp(-1 + 1e-15, 1 - 1e-15))
    return (u - reference_u) * m - torch.logaddexp(u, -u) + torch.logaddexp(reference_u, -reference_u)


def _chain_state(measure: Measure, u: torch.Tensor, betas: torch.Tensor):
    """(log density, A) in float64 and the drift ∂A/∂u at u: what a sweep reuses of the last one."""
    log_density, action = measure.log_density(u, betas)
    return log_density, action, measure.drift(u)


def hmc_sweep(measure: Measure, u, betas, step, leapfrog: int, generator, state=None):
    """One HMC proposal for every chain (step: per chain, broadcast to u.shape[:-1]); returns (u, log density,
    A, drift, accepted) — the three in between reused by the next sweep (`rungs_exchanged` carries them across
    tempering swaps).  The density is evaluated once per proposal, at its end (the Metropolis test); the leapfrog
    steps need only the gradient."""
    log_density, action, drift = state if state is not None else _chain_state(measure, u, betas)
    momentum = torch.randn(u.shape, generator=generator, dtype=DTYPE)
    step_n = step.unsqueeze(-1)
    position, moving = u, momentum + 0.5 * step_n * measure.gradient_given_drift(u, drift, betas)
    for index in range(leapfrog):
        position = position + step_n * moving
        new_drift = measure.drift(position)
        new_grad = measure.gradient_given_drift(position, new_drift, betas)
        moving = moving + (step_n if index < leapfrog - 1 else 0.5 * step_n) * new_grad
    new_log, new_action = measure.log_density(position, betas)
    log_ratio = (new_log - 0.5 * (moving**2).sum(-1)) - (log_density - 0.5 * (momentum**2).sum(-1))
    accepted = torch.log(torch.rand(log_ratio.shape, generator=generator, dtype=DTYPE)) < torch.nan_to_num(
        log_ratio, nan=-math.inf)
    keep = accepted.unsqueeze(-1)
    return (torch.where(keep, position, u), torch.where(accepted, new_log, log_density),
            torch.where(accepted, new_action, action), torch.where(keep, new_drift, drift), accepted)


def rungs_exchanged(measure: Measure, u: torch.Tensor, state, order: torch.Tensor, betas: torch.Tensor):
    """The reused state of a sweep after a tempering swap round moved configuration order[d, r, k] to rung k (u:
    the moved configurations): A and the drift move with their configuration, the log density is rebuilt for the
    new rung from A — no product over the data."""
    _, action, drift = state
    action = torch.gather(action, 2, order)
    drift = torch.gather(drift, 2, order.unsqueeze(-1).expand(drift.shape))
    return measure.log_density_given_action(u, action, betas), action, drift


def swap_round(u, action, betas, parity: int, generator, restraint: Restraint | None = None):
    """Replica-exchange proposals between rungs (k, k+1) with k ≡ parity (mod 2), for every instance and replica;
    returns (u, accepted per pair (D, R, pairs), pair indices, order): order[d, r, k] is the rung whose
    configuration now sits at rung k."""
    low = torch.arange(parity, max(betas.shape[0] - 1, parity), 2)
    if low.numel() == 0:  # a single rung, or no pair of this parity
        return u, None, low, None
    log_ratio = (betas[low] - betas[low + 1]) * (action[..., low + 1] - action[..., low])
    if restraint is not None:
        log_ratio = log_ratio + restraint.exchange(u, low)
    accepted = torch.log(torch.rand(log_ratio.shape, generator=generator, dtype=DTYPE)) < log_ratio
    order = torch.arange(betas.shape[0]).expand(*u.shape[:2], -1).clone()
    order[..., low] = torch.where(accepted, low + 1, low)
    order[..., low + 1] = torch.where(accepted, low, low + 1)
    return torch.gather(u, 2, order.unsqueeze(-1).expand(u.shape)), accepted, low, order


class Walkers:
    """The round trips of the configurations through each ladder (Katzgraber, Trebst, Huse & Troyer 2006): every
    configuration carries the end it visited last (hottest or coldest rung); a trip is counted when it reaches the
    other end.  The fraction f_k of the configurations at rung k that come from the hot end falls from 1 to 0 along a
    working ladder; a step in f marks the bottleneck, and no trips mean the tempering does not act."""

    def __init__(self, shape):  # shape (D, R, K)
        self.at_rung = torch.arange(shape[2]).expand(shape).clone()  # which configuration sits at each rung
        self.last_end = torch.zeros(shape, dtype=torch.long)  # per configuration: +1 hot end, −1 cold end, 0 neither
        self.half_trips = torch.zeros(shape[:2])
        self.from_hot = torch.zeros(shape[2])
        self.labelled = torch.zeros(shape[2])

    def move(self, order):
        self.at_rung = torch.gather(self.at_rung, 2, order)

    def record(self):
        if self.at_rung.shape[2] < 2:  # no ladder, no trips
            return
        for rung, end in ((0, 1), (self.at_rung.shape[2] - 1, -1)):
            walker = self.at_rung[..., rung : rung + 1]
            previous = torch.gather(self.last_end, 2, walker)
            self.half_trips += (previous == -end).squeeze(-1).float()
            self.last_end.scatter_(2, walker, torch.full_like(walker, end))
        ends = torch.gather(self.last_end, 2, self.at_rung)
        self.from_hot += (ends == 1).float().mean(dim=(0, 1))
        self.labelled += (ends != 0).float().mean(dim=(0, 1))

    def summary(self) -> dict:
        """Round trips per ladder ((D, R) list, their mean and fewest) and f_k per rung."""
        trips = self.half_trips / 2
        return {"round_trips_mean": float(trips.mean()), "round_trips_min": float(trips.min()),
                "round_trips": trips.tolist(), "flow_fraction": (self.from_hot / self.labelled.clamp(min=1)).tolist()}


def rung_count(beta: float, beta_min: float, rungs_per_unit: float, n: int) -> int:
    """Tempering rungs ∝ ln(β/β_min)·√N (the spread of A grows like √N, so must the rung density): 1 + ⌈c·ln·√N⌉."""
    span = math.log(max(beta / beta_min, 1.0))
    return 1 + math.ceil(rungs_per_unit * span * math.sqrt(n)) if span > 0 and rungs_per_unit else 1


def ladder(beta: float, schedule: Schedule) -> torch.Tensor:
    if schedule.temperatures == 1:
        return torch.tensor([beta], dtype=DTYPE)
    return torch.tensor(np.geomspace(min(schedule.beta_min, beta), beta, schedule.temperatures), dtype=DTYPE)


def initial_state(teacher: torch.Tensor, schedule: Schedule, generator) -> torch.Tensor:
    """u of every chain: the first half of the replicas u ~ N(0, 1), the second half at m = 0.9 w (+ small noise)."""
    instances, n = teacher.shape
    half = schedule.replicas // 2
    shape = (instances, half, schedule.temperatures, n)
    random = torch.randn(shape, generator=generator, dtype=DTYPE)
    near = math.atanh(0.9) * teacher.to(DTYPE)[:, None, None, :] + 0.1 * torch.randn(shape, generator=generator,
                                                                                        dtype=DTYPE)
    return torch.cat([random, near], dim=1)


@dataclasses.dataclass
class Run:
    """Recorded series at the target β (shape (samples, D, R) unless said) and the diagnostics of one run."""

    eps_g: np.ndarray
    r: np.ndarray
    q_star: np.ndarray
    action: np.ndarray
    overlaps: np.ndarray  # (samples, D, pairs): q_ab of every replica pair a < b of an instance
    pairs: list  # (a, b) of each overlap column
    hmc_acceptance: np.ndarray  # per rung, recorded sweeps
    swap_acceptance: np.ndarray  # per adjacent pair of rungs
    betas: np.ndarray
    steps: np.ndarray  # frozen HMC step per rung
    action_by_rung: np.ndarray  # (samples, D, R, K): A of every rung, for the histogram overlaps
    q_star_by_rung: np.ndarray  # (samples, D, R, K): q⋆ of every rung (the windows of a restrained run)
    r_by_rung: np.ndarray  # (samples, D, R, K)
    last: torch.Tensor  # final u of every chain (D, R, K, N)
    eps_g_other: np.ndarray | None = None  # ε_g of sgn m against `other_teacher` (a second task: the first teacher)
    tempering: dict = dataclasses.field(default_factory=dict)  # Walkers.summary() of the recorded sweeps


def sample(measure: Measure, teacher: torch.Tensor, beta: float, schedule: Schedule, seed: int,
           start: torch.Tensor | None = None, other_teacher: torch.Tensor | None = None) -> Run:
    """Run the tempered HMC chains of one measure (module docstring); `start` overrides the initial u; with
    `other_teacher` (D, N) the ε_g of sgn m against it is recorded too (a second task's students on the first)."""
    generator = torch_generator(seed)
    betas = ladder(beta, schedule)
    u = initial_state(teacher, schedule, generator) if start is None else start.clone().to(DTYPE)
    n = u.shape[-1]
    step = torch.full((schedule.temperatures,), 0.5 * n ** -0.25, dtype=DTYPE)  # HMC steps shrink like N^(-1/4)
    chain_step = lambda: step.expand(u.shape[:-1])  # noqa: E731 — the current step of every chain
    state, accepted_window = None, []
    for sweep in range(schedule.warmup):
        u, *state, accepted = hmc_sweep(measure, u, betas, chain_step(), schedule.leapfrog, generator, state)
        accepted_window.append(accepted.to(DTYPE).mean(dim=(0, 1)))
        if (sweep + 1) % 10 == 0:  # tune each rung's step towards the target acceptance, warm-up only
            rate = torch.stack(accepted_window).mean(0)
            step = step * torch.exp(1.5 * (rate - TARGET_ACCEPTANCE))
            accepted_window = []
        u, _, _, order = swap_round(u, state[1], betas, sweep % 2, generator, measure.restraint)
        if order is not None:
            state = rungs_exchanged(measure, u, state, order, betas)
    records = {name: [] for name in ("eps_g", "r", "q_star", "action", "overlaps", "action_by_rung",
                                          "q_star_by_rung", "r_by_rung")}
    if other_teacher is not None:
        records["eps_g_other"] = []
    hmc_accepted, swaps, swap_counts = torch.zeros(schedule.temperatures, dtype=DTYPE), \
        torch.zeros(max(schedule.temperatures - 1, 1), dtype=DTYPE), torch.zeros(max(schedule.temperatures - 1, 1))
    walkers = Walkers(u.shape[:-1])
    upper = torch.triu_indices(schedule.replicas, schedule.replicas, offset=1)
    pairs = upper.T.tolist()
    for sweep in range(schedule.sweeps):
        u, *state, accepted = hmc_sweep(measure, u, betas, chain_step(), schedule.leapfrog, generator, state)
        hmc_accepted += accepted.to(DTYPE).mean(dim=(0, 1))
        u, swapped, low, order = swap_round(u, state[1], betas, sweep % 2, generator, measure.restraint)
        if swapped is not None:
            walkers.move(order)
            swaps[low] += swapped.to(DTYPE).mean(dim=(0, 1))
            swap_counts[low] += 1
            state = rungs_exchanged(measure, u, state, order, betas)
        walkers.record()
        if sweep % schedule.thin == 0:
            action = state[1]
            m = torch.tanh(u[:, :, -1])  # target rung (D, R, N)
            w = teacher.to(DTYPE).unsqueeze(1)
            records["eps_g"].append(torch.arccos((sign(m) * w).mean(-1).clamp(-1, 1)) / math.pi)
            if other_teacher is not None:
                other = other_teacher.to(DTYPE).unsqueeze(1)
                records["eps_g_other"].append(torch.arccos((sign(m) * other).mean(-1).clamp(-1, 1)) / math.pi)
            records["r"].append((m * w).mean(-1))
            records["q_star"].append((m * m).mean(-1))
            records["action"].append(action[..., -1])
            records["action_by_rung"].append(action)
            every = torch.tanh(u)
            records["q_star_by_rung"].append((every * every).mean(-1))
            records["r_by_rung"].append((every * w.unsqueeze(2)).mean(-1))
            gram = torch.einsum("dan,dbn->dab", m, m) / n
            records["overlaps"].append(gram[:, upper[0], upper[1]])
    stacked = {name: torch.stack(values).numpy() for name, values in records.items()}
    return Run(**stacked, pairs=pairs, hmc_acceptance=(hmc_accepted / schedule.sweeps).numpy(),
               swap_acceptance=(swaps / swap_counts.clamp(min=1)).numpy(), betas=betas.numpy(), steps=step.numpy(),
               last=u, tempering=walkers.summary())


# ----------------------------------------------------------------------------- population annealing
@dataclasses.dataclass(frozen=True)
class Annealing:
    """Population annealing (Hukushima & Iba 2003; Machta 2010): a population equilibrated at beta_min is taken to β
    in geometric steps; at each step every configuration gets the weight e^{(β_{i+1} − β_i) A}, the population is
    resampled (multinomially, fixed size) by these weights and then moved by HMC sweeps at the new β.  The mean weight
    estimates Z(β_{i+1})/Z(β_i), so the run also gives ln Z(β)/Z(beta_min).  Unlike the tempered chains, nothing
    starts near the teacher: a valley of the target measure is found if the annealing reaches it and kept in
    proportion to its Boltzmann weight if the population is large enough (the effective number of families, the
    distinct ancestors at beta_min, says how far to trust that)."""

    population: int = 1000  # configurations per instance
    steps: int = 100  # β steps from beta_min to β
    sweeps: int = 5  # HMC sweeps after each resampling
    equilibration: int = 200  # HMC sweeps at beta_min before the first step (step size tuned here)
    leapfrog: int = 10  # leapfrog steps per HMC proposal
    beta_min: float = 5.0  # the start (RS-stable: one state, fast mixing)

    def __post_init__(self):
        if min(self.population, self.steps, self.sweeps, self.leapfrog) < 1 or self.equilibration < 0:
            raise ValueError("population, steps, sweeps and leapfrog must be >= 1, equilibration >= 0")
        if not self.beta_min > 0:
            raise ValueError(f"beta_min must be > 0, got {self.beta_min}")


@dataclasses.dataclass
class Population:
    """The annealed population at the target β: per instance and configuration (D, population) arrays."""

    m: np.ndarray  # (D, population, N): the configurations
    action: np.ndarray
    q_star: np.ndarray
    r: np.ndarray
    eps_g: np.ndarray
    log_partition: np.ndarray  # (D,): ln Z(β) − ln Z(beta_min) of each instance
    families: np.ndarray  # (D,): effective number of families 1/Σ_f p_f² (p_f: share of ancestor f)
    acceptance: float  # HMC acceptance over the annealing


def anneal(measure: Measure, teacher: torch.Tensor, beta: float, schedule: Annealing, seed: int) -> Population:
    """Population annealing of every instance of `measure` from schedule.beta_min to β (class Annealing)."""
    generator = torch_generator(seed)
    instances, n = teacher.shape
    u = torch.randn((instances, schedule.population, 1, n), generator=generator, dtype=DTYPE)
    family = torch.arange(schedule.population).expand(instances, -1).clone()
    step = torch.tensor(0.5 * n ** -0.25, dtype=DTYPE)
    log_partition = torch.zeros(instances, dtype=DTYPE)
    accepted = []

    def move(u, beta_now, sweeps, step):
        betas, state, rates = torch.tensor([beta_now], dtype=DTYPE), None, []
        for _ in range(sweeps):
            u, *state, ok = hmc_sweep(measure, u, betas, step.expand(u.shape[:-1]), schedule.leapfrog, generator,
                                      state)
            rates.append(ok.to(DTYPE).mean())
        rate = torch.stack(rates).mean()
        return u, step * torch.exp(1.5 * (rate - TARGET_ACCEPTANCE)), rate  # the next step's size, tuned

    path = np.geomspace(min(schedule.beta_min, beta), beta, schedule.steps + 1)
    for _ in range(0, schedule.equilibration, 10):
        u, step, _ = move(u, path[0], 10, step)
    for low, high in zip(path[:-1], path[1:]):
        log_weight = (high - low) * measure.action(u)[..., 0]  # (D, population)
        log_partition += torch.logsumexp(log_weight, dim=1) - math.log(schedule.population)
        chosen = torch.multinomial(torch.softmax(log_weight, dim=1), schedule.population, replacement=True,
                                   generator=generator)
        u = torch.gather(u, 1, chosen[:, :, None, None].expand(u.shape))
        family = torch.gather(family, 1, chosen)
        u, step, rate = move(u, high, schedule.sweeps, step)
        accepted.append(float(rate))
    m, w = torch.tanh(u[:, :, 0]), teacher.to(DTYPE).unsqueeze(1)
    shares = torch.stack([torch.bincount(row, minlength=schedule.population) for row in family]).to(DTYPE)
    shares = shares / schedule.population
    return Population(m=m.numpy(), action=measure.action(u)[..., 0].numpy(), q_star=(m * m).mean(-1).numpy(),
                      r=(m * w).mean(-1).numpy(),
                      eps_g=(torch.arccos((sign(m) * w).mean(-1).clamp(-1, 1)) / math.pi).numpy(),
                      log_partition=log_partition.numpy(), families=(1.0 / (shares**2).sum(-1)).numpy(),
                      acceptance=float(np.mean(accepted)))


# ----------------------------------------------------------------------------- diagnostics
def integrated_time(series: np.ndarray, window_factor: float = 5.0) -> float:
    """τ_int of a 1-d series (Sokal's automatic window: the smallest W with W ≥ c·τ(W)); 1 for white noise."""
    x = np.asarray(series, dtype=float) - np.mean(series)
    if len(x) < 4 or not np.any(x):
        return 1.0
    spectrum = np.fft.rfft(x, n=2 * len(x))
    autocorrelation = np.fft.irfft(spectrum * np.conj(spectrum))[: len(x)]
    autocorrelation /= autocorrelation[0]
    tau = 2.0 * np.cumsum(autocorrelation) - 1.0
    window = np.arange(len(x))
    inside = window < window_factor * tau
    cut = int(np.argmin(inside)) if not inside.all() else len(x) - 1
    return float(max(tau[cut], 1.0))


def r_hat(chains: np.ndarray) -> float:
    """Gelman–Rubin potential scale reduction of (samples, chains) (split in halves): ≈ 1 when the chains agree."""
    samples = chains.shape[0] // 2
    split = np.concatenate([chains[:samples], chains[samples:2 * samples]], axis=1)
    within = split.var(axis=0, ddof=1).mean()
    between = samples * split.mean(axis=0).var(ddof=1)
    if within == 0:
        return 1.0 if between == 0 else math.inf
    return float(math.sqrt(((samples - 1) / samples * within + between / samples) / within))


def histogram_overlap(first: np.ndarray, second: np.ndarray, bins: int = 40) -> float:
    """Σ min(p, q) of two normalised histograms on common bins: 0 disjoint, 1 identical."""
    edges = np.histogram_bin_edges(np.concatenate([first, second]), bins=bins)
    p, _ = np.histogram(first, bins=edges)
    q, _ = np.histogram(second, bins=edges)
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())


def diagnostics(run: Run) -> dict:
    """Acceptance, τ_int and ESS (per instance, of A and r), R̂ between random and teacher-near starts (max over
    instances of eps_g, r, q⋆, A), the A-histogram overlap of adjacent rungs, and the verdict `equilibrated`."""
    samples, instances, replicas = run.r.shape
    tau = {name: float(np.mean([integrated_time(getattr(run, name)[:, d, a]) for d in range(instances)
                                for a in range(replicas)])) for name in ("action", "r")}
    ess = {name: samples * replicas / tau[name] for name in tau}
    worst = {name: max(r_hat(getattr(run, name)[:, d, :]) for d in range(instances))
             for name in ("eps_g", "r", "q_star", "action")}
    overlaps = [histogram_overlap(run.action_by_rung[..., k].ravel(), run.action_by_rung[..., k + 1].ravel())
                for k in range(len(run.betas) - 1)]
    reasons = [f"R_hat({name}) = {value:.3f} > {R_HAT_LIMIT}" for name, value in worst.items() if value > R_HAT_LIMIT]
    reasons += [f"ESS({name}) = {value:.0f} < {MIN_ESS:.0f}" for name, value in ess.items() if value < MIN_ESS]
    return {"hmc_acceptance": run.hmc_acceptance.tolist(), "swap_acceptance": run.swap_acceptance.tolist(),
            "betas": run.betas.tolist(), "steps": run.steps.tolist(), "tau_int": tau, "ess_per_instance": ess,
            "r_hat_max": worst, "energy_histogram_overlap": overlaps, **run.tempering, "equilibrated": not reasons,
            "reason": "; ".join(reasons)}


def summary(run: Run) -> dict:
    """Means over instances (and replicas, samples) of ε_g, r, q⋆ and q (and ε_g against the other teacher when
    recorded), with the standard error over instances; and the means of ε_g, r, q⋆ over the chains of each start
    (`*_random_start`, `*_teacher_start`): equal within their spread once the chains have met."""
    result = {}
    half = run.r.shape[2] // 2  # replicas [0, half) started at random, [half, R) near the teacher
    for name in ("eps_g", "r", "q_star") + (("eps_g_other",) if run.eps_g_other is not None else ()):
        per_instance = getattr(run, name).mean(axis=(0, 2))
        result[name] = float(per_instance.mean())
        result[f"{name}_se"] = float(per_instance.std(ddof=1) / math.sqrt(len(per_instance))) if len(
            per_instance) > 1 else math.nan
    for name in ("eps_g", "r", "q_star"):
        result[f"{name}_random_start"] = float(getattr(run, name)[:, :, :half].mean())
        result[f"{name}_teacher_start"] = float(getattr(run, name)[:, :, half:].mean())
    per_instance = run.overlaps.mean(axis=(0, 2))
    result["q"] = float(per_instance.mean())
    result["q_se"] = float(per_instance.std(ddof=1) / math.sqrt(len(per_instance))) if len(per_instance) > 1 else \
        math.nan
    return result


def inverse_size_fit(ns, values, errors) -> dict:
    """The weighted least-squares fit a + b/N of `values` (± `errors`, 1 s.e.; floored at 1e-6) measured at the sizes
    `ns` (≥ 2 of them): a (the N → ∞ value), b, their s.e. from the fit, and χ² per degree of freedom (nan for two
    sizes), which says whether the form a + b/N describes the points within their errors; `a_se_scaled` is a_se
    times √(χ²/dof) where that exceeds 1 (the Birge ratio: errors that the scatter of the points shows too small)."""
    x = np.array([[1.0, 1.0 / n] for n in ns])
    y, weights = np.asarray(values, float), 1.0 / np.maximum(np.asarray(errors, float), 1e-6) ** 2
    covariance = np.linalg.inv(x.T @ (weights[:, None] * x))
    coefficients = covariance @ x.T @ (weights * y)
    chi2 = float(np.sum(weights * (y - x @ coefficients) ** 2))
    per_dof = chi2 / (len(ns) - 2) if len(ns) > 2 else math.nan
    return {"a": float(coefficients[0]), "a_se": math.sqrt(covariance[0, 0]), "b": float(coefficients[1]),
            "b_se": math.sqrt(covariance[1, 1]), "chi2_per_dof": per_dof,
            "a_se_scaled": math.sqrt(covariance[0, 0]) * max(1.0, math.sqrt(per_dof) if per_dof == per_dof else 1.0)}


def overlap_histogram(run: Run, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """P(q) of the replica overlaps on [−1, 1] (density), pooled over instances, pairs and samples."""
    density, edges = np.histogram(run.overlaps.ravel(), bins=bins, range=(-1.0, 1.0), density=True)
    return density, edges


def task1_instances(n: int, alpha: float, instances: int, seed: int,
                    gradient_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, Measure]:
    """Teachers (D, N) and the task-1 measure of `instances` teacher–student instances (teacher_student.sample_trials:
    the data of SGD trial k is instance k)."""
    _, (task,) = sample_trials(instances, n, [alpha], seed=seed, dtype=DTYPE)
    return task.teacher, Measure(task.inputs, task.labels, gradient_dtype=gradient_dtype)
