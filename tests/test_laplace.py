"""The Laplace engine: exact where it must be (Gaussian likelihoods, constraints, islands), and in
agreement with NUTS where it approximates."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import grid_areas, simulated_cells
from scipy import stats

import sae
from sae.fit import design_for
from sae.hyperparameter_integration import PROPOSAL_DF, SplitStudentT
from sae.inputs import load_inputs
from sae.laplace import LaplaceEngine, PrecisionAssembly, draw_latent, kriged
from sae.latent import latent_model
from sae.sparse_cholesky import FactorPlan, Refactorisation, SparseCholesky, independent_leaves
from sae.spec_file import spec_from_dict


def survey_model(spatial: str, island: bool = True):
    """Made-up direct estimates (seed 3) on the 4 × 5 grid (and its island): a Fay–Herriot model."""
    areas = grid_areas(island=island)
    rng = np.random.default_rng(3)
    cells = pd.DataFrame({"area": areas["area"], "p": rng.normal(0.3, 0.1, len(areas)),
                          "se": rng.uniform(0.02, 0.08, len(areas))})  # fmt: skip
    spec = spec_from_dict({"data": {"area_id": "area", "estimate": "p", "se": "se"},
                           "model": {"family": "gaussian", "spatial": spatial}})  # fmt: skip
    inputs = load_inputs(spec, cells=cells, areas=areas)
    design = design_for(spec, inputs)
    return latent_model(spec, design, inputs.graph, spec.family), inputs.graph


def pseudo_inverse_laplacian(graph) -> np.ndarray:
    """L⁺ per component (0 on islands): the covariance of the sum-to-zero ICAR, computed densely."""
    cov = np.zeros((graph.n_areas, graph.n_areas))
    for nodes in graph.component_nodes():
        if len(nodes) > 1:
            cov[np.ix_(nodes, nodes)] = np.linalg.pinv(graph.laplacian(nodes))
    return cov


def exact_log_marginal(model, graph, theta) -> float:
    """log N(y | level + mean, Σ_y), Σ_y = ψ + var(a) + σ²((1 − ρ)I + (ρ/s) L⁺) on components,
    σ² on islands: the Fay–Herriot marginal likelihood, computed densely."""
    sigma = theta[0]
    rho = theta[1] if len(theta) > 1 else 0.0
    structured = ~graph.is_island
    field = np.diag(np.where(structured, 1.0 - rho, 1.0))
    field += rho * pseudo_inverse_laplacian(graph) / graph.scaling_factor[0]
    rows = model.design.rows
    area = model.design.area
    intercept_var = 1.0 / model.precision[0, 0]
    cov = np.diag(rows.variance) + intercept_var + sigma**2 * field[np.ix_(area, area)]
    mean = model.level + model.mean[0]
    return float(stats.multivariate_normal(np.full(len(area), mean), cov).logpdf(rows.response))


@pytest.mark.parametrize("spatial", ["bym2", "none"])
def test_laplace_marginal_is_exact_for_gaussian_likelihoods(spatial):
    # For y ~ N(η, ψ) the Laplace approximation is exact: log p̃(y | θ) must differ from the dense
    # Gaussian marginal likelihood by a constant, across θ; this checks the constrained
    # log-determinant and the islands, which carry no structured part.
    model, graph = survey_model(spatial)
    engine = LaplaceEngine(model)
    thetas = [np.array([0.5, 0.3]), np.array([0.1, 0.8]), np.array([1.5, 0.5])]
    thetas = [t[: len(model.hyperparameters)] for t in thetas]
    laplace = []
    for theta in thetas:
        t = np.array(
            [h.unconstrained(v) for h, v in zip(model.hyperparameters, theta, strict=True)]
        )
        laplace.append(engine.mode(t).log_posterior - model.log_prior(t))
    exact = [exact_log_marginal(model, graph, theta) for theta in thetas]
    assert np.diff(laplace) == pytest.approx(np.diff(exact), abs=1e-3)


def test_draws_satisfy_the_constraints_and_have_the_approximations_covariance():
    model, _ = survey_model("bym2")
    engine = LaplaceEngine(model)
    mode = engine.mode(np.array([np.log(0.5), 0.0]))
    draws = draw_latent(model, mode, 20_000, np.random.default_rng(0))
    assert np.abs(model.constraints @ draws.T).max() < 1e-9
    # the constrained covariance: P⁻¹ − V (C V)⁻¹ Vᵀ, V = P⁻¹ Cᵀ
    inverse = mode.factor.solve(np.eye(model.size))
    constrained = kriged(mode.factor, model.constraints, inverse)
    empirical = np.cov(draws.T)
    scale = np.sqrt(np.outer(np.diag(constrained), np.diag(constrained))) + 1e-12
    assert np.abs((empirical - constrained) / scale).max() < 0.05  # 20,000 draws: MC error ~0.01


def test_sparse_cholesky_log_determinant_solve_and_draws():
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(30, 30))
    matrix = sp.csc_array(dense @ dense.T + 30 * np.eye(30))
    factor = SparseCholesky(matrix)
    assert factor.logdet() == pytest.approx(np.linalg.slogdet(matrix.toarray())[1], rel=1e-12)
    b = rng.normal(size=30)
    assert factor.solve(b) == pytest.approx(np.linalg.solve(matrix.toarray(), b))
    n = 40_000
    draws = factor.sample(rng.normal(size=(30, n)))
    exact = np.linalg.inv(matrix.toarray())
    variances = np.diag(exact)
    standard_error = np.sqrt((np.outer(variances, variances) + exact**2) / n)  # Wishart
    assert np.abs(np.cov(draws) - exact).max() < 5 * standard_error.max()


def test_refactorised_factors_of_one_pattern_stay_valid_side_by_side():
    """A `Refactorisation` reuses one analysis: each factor it returns is its own copy, so the
    first still solves its matrix after the second is made (a Laplace mode keeps its factor for
    the next warm start)."""
    rng = np.random.default_rng(3)
    dense = rng.normal(size=(25, 25)) * (rng.uniform(size=(25, 25)) < 0.2)
    first = sp.csc_matrix(dense @ dense.T + 5 * np.eye(25))
    second = first.copy()
    second.data = second.data * rng.uniform(0.5, 1.5)  # same pattern, other values
    second = second + sp.csc_matrix(np.diag(rng.uniform(1, 3, 25)))
    second = sp.csc_matrix(second)
    factors = Refactorisation()
    a, b = (
        factors.factorise(sp.triu(first, format="csc")),
        factors.factorise(sp.triu(second, format="csc")),
    )
    rhs = rng.normal(size=(25, 3))
    assert a.solve(rhs) == pytest.approx(np.linalg.solve(first.toarray(), rhs), rel=1e-10)
    assert b.solve(rhs) == pytest.approx(np.linalg.solve(second.toarray(), rhs), rel=1e-10)
    assert a.logdet() == pytest.approx(np.linalg.slogdet(first.toarray())[1], rel=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        factors.factorise(sp.triu(first - 20 * sp.eye(25), format="csc"))


def bordered_leafy_matrix(rng) -> sp.csc_matrix:
    """A made-up precision like a race × place model's: 2 dense rows and columns, a chain of 30
    "area" nodes, and 50 "group" nodes that each touch one to three random areas (so eliminating
    them fills in between areas that are not neighbours)."""
    areas, groups, dense = 30, 50, 2
    n = dense + areas + groups
    rows, columns = [], []
    for a in range(areas - 1):
        rows.append(dense + a), columns.append(dense + a + 1)
    for g in range(groups):
        for a in rng.choice(areas, size=rng.integers(1, 4), replace=False):
            rows.append(dense + areas + g), columns.append(dense + a)
    rows += [0] * (n - 1) + [1] * (n - 2)
    columns += list(range(1, n)) + list(range(2, n))
    values = rng.normal(0.0, 0.5, len(rows))
    off = sp.coo_array((values, (rows, columns)), shape=(n, n))
    off = off + off.T
    diagonal = np.abs(off).sum(axis=1) + rng.uniform(0.5, 1.5, n)  # diagonally dominant: SPD
    return sp.csc_matrix(off + sp.diags_array(diagonal))


def test_factor_plan_eliminates_leaves_exactly():
    rng = np.random.default_rng(5)
    matrix = bordered_leafy_matrix(rng)
    plan = FactorPlan(matrix, dense=2)
    inner = matrix[2:, 2:].toarray()
    leaves = plan.leaves
    assert len(leaves) >= 40  # most group nodes (degree 1–3) are eliminated in closed form
    assert np.count_nonzero(inner[np.ix_(leaves, leaves)] - np.diag(np.diag(inner)[leaves])) == 0
    factor = plan.factorise(matrix)
    exact = matrix.toarray()
    assert factor.logdet() == pytest.approx(np.linalg.slogdet(exact)[1], rel=1e-12)
    b = rng.normal(size=(matrix.shape[0], 3))
    assert factor.solve(b) == pytest.approx(np.linalg.solve(exact, b), rel=1e-9, abs=1e-12)
    assert factor.solve(b[:, 0]) == pytest.approx(np.linalg.solve(exact, b[:, 0]), rel=1e-9)
    n = 40_000
    draws = factor.sample(rng.normal(size=(matrix.shape[0], n)))
    covariance = np.linalg.inv(exact)
    variances = np.diag(covariance)
    standard_error = np.sqrt((np.outer(variances, variances) + covariance**2) / n)  # Wishart
    assert np.abs(np.cov(draws) - covariance).max() < 5 * standard_error.max()


def test_factor_gives_the_solve_and_the_gram_matrix_of_its_also_columns():
    # exact reference: dense linear algebra on the same matrix
    rng = np.random.default_rng(6)
    matrix = bordered_leafy_matrix(rng)
    also = rng.normal(size=(matrix.shape[0], 2))
    exact = np.linalg.solve(matrix.toarray(), also)
    gram_only = FactorPlan(matrix, dense=2).factorise(matrix, also)
    assert gram_only.also_gram() == pytest.approx(also.T @ exact, rel=1e-9)  # forward pass alone
    assert gram_only.logdet() == pytest.approx(np.linalg.slogdet(matrix.toarray())[1], rel=1e-12)
    assert gram_only.solved == pytest.approx(exact, rel=1e-9, abs=1e-12)
    b = rng.normal(size=matrix.shape[0])
    assert gram_only.solve(b) == pytest.approx(np.linalg.solve(matrix.toarray(), b), rel=1e-9)


def test_independent_leaves_are_independent_and_low_degree():
    rng = np.random.default_rng(6)
    inner = bordered_leafy_matrix(rng)[2:, 2:].tocoo()
    chosen = independent_leaves(inner.row, inner.col, inner.shape[0])
    adjacency = (inner.toarray() != 0) & ~np.eye(inner.shape[0], dtype=bool)
    assert not adjacency[np.ix_(chosen, chosen)].any()
    unchosen_free = ~chosen & ~adjacency[:, chosen].any(axis=1)
    assert not unchosen_free.any()  # maximal: every node left out touches a chosen one


def test_precision_assembly_equals_the_sparse_product():
    rng = np.random.default_rng(2)
    incidence = sp.random_array((60, 25), density=0.15, random_state=3, format="csr")
    q = sp.random_array((25, 25), density=0.1, random_state=4)
    precision = sp.csc_array(q + q.T + 3 * sp.eye_array(25))
    scales, weight = rng.uniform(0.5, 2.0, 25), rng.uniform(0.0, 3.0, 60)
    A = incidence @ sp.diags_array(scales)
    direct = (precision + A.T @ sp.diags_array(weight) @ A).toarray()
    assembly = PrecisionAssembly(precision, incidence)
    assembly.set_scales(scales)
    assembled = assembly.assemble(weight).toarray()
    assert assembled == pytest.approx(direct, abs=1e-12)


def split_proposal() -> SplitStudentT:
    axes = np.array([[0.8, 0.3], [-0.2, 0.5]])
    return SplitStudentT(np.array([1.0, -2.0]), axes, np.array([2.0, 0.7]), np.array([0.6, 1.5]))


def test_split_student_t_density_integrates_to_one():
    proposal, step = split_proposal(), 0.05
    z = np.arange(-80.0, 80.0, step) + step / 2
    first, second = np.meshgrid(z, z, indexing="ij")
    grid = np.column_stack([first.ravel(), second.ravel()])
    density = np.exp(proposal.logpdf(proposal.centre + grid @ proposal.axes.T))
    mass = density.sum() * step**2 * abs(np.linalg.det(proposal.axes))
    assert mass == pytest.approx(1.0, abs=2e-3)  # t5 tails beyond 80 scales hold < 1e-4


def test_split_student_t_points_follow_its_distribution_function():
    """Each coordinate's distribution function, computed independently of `points`, maps the
    points back to the uniforms they came from; the share below 0 is σ₋ / (σ₊ + σ₋)."""
    proposal = split_proposal()
    uniform = np.random.default_rng(4).uniform(size=(5000, 3))
    z = np.linalg.solve(proposal.axes, (proposal.points(uniform) - proposal.centre).T).T
    upper, lower = proposal.upper, proposal.lower
    below = lower / (upper + lower)
    cdf = np.where(z < 0, 2 * below * stats.t.cdf(z / lower, PROPOSAL_DF),
                   below + 2 * (1 - below) * (stats.t.cdf(z / upper, PROPOSAL_DF) - 0.5))  # fmt: skip
    assert cdf == pytest.approx(uniform[:, :2], abs=1e-9)
    assert (z < 0).mean(axis=0) == pytest.approx(below, abs=0.02)


def synthetic_fit(method: str, family: str = "poisson", group_effects: str = "iid"):
    areas = grid_areas()
    cells = simulated_cells(areas, seed=6)[0]
    data = {"area_id": "area", "group": "group", "count": "cases", "population": "population"}
    if family == "binomial":
        data = {**data, "population": None, "trials": "population"}
    spec = spec_from_dict({
        "data": data, "model": {"family": family, "group_effects": group_effects},
        "sampler": {"method": method, "chains": 4, "draws": 1500, "tune": 1000, "seed": 2},
    })  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sae.fit(spec, cells=cells, areas=areas, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("family", "group_effects", "correction"),
    [("poisson", "iid", "joint"), ("poisson", "iid", "local"), ("binomial", "bym2", "joint")],
)
def test_laplace_agrees_with_nuts_on_cells_and_gaps(family, group_effects, correction, monkeypatch):
    if correction == "local":  # as on large maps, where the joint weights degenerate
        monkeypatch.setattr("sae.laplace_method.CORRECTION_MIN_ESS", 2.0)
    laplace = synthetic_fit("laplace", family, group_effects)
    nuts = synthetic_fit("nuts", family, group_effects)
    assert laplace.diagnostics.correction == correction
    assert laplace.diagnostics.method == "laplace" and nuts.diagnostics.method == "nuts"
    for table in ("estimates", "gaps"):
        ours, reference = getattr(laplace, table)(), getattr(nuts, table)()
        for column in ("mean", "lower", "upper") if table == "estimates" else ("ratio_median",):
            sd = (
                reference["sd"]
                if table == "estimates"
                else reference["ratio_upper"] - reference["ratio_lower"]
            )
            tolerance = np.maximum(0.05 * reference[column].abs(), 0.1 * sd)
            # the criterion, with room for NUTS's own Monte Carlo error in a short run
            assert (np.abs(ours[column] - reference[column]) <= 1.5 * tolerance).mean() >= 0.95
    assert ("pareto_k" in laplace.estimates()) == (correction == "local")


def test_large_models_recompute_the_points_modes_and_draw_the_same_posterior(monkeypatch):
    # above KEPT_MODES_LIMIT the modes (a sparse factor each) are not kept but recomputed when
    # drawn from: the same posterior, up to the Newton tolerance of the recomputed modes (measured:
    # means within 1e-4, interval ends within 1e-3)
    kept = synthetic_fit("laplace").estimates()
    monkeypatch.setattr("sae.hyperparameter_integration.KEPT_MODES_LIMIT", 0)
    recomputed = synthetic_fit("laplace").estimates()
    for column in ("mean", "lower", "upper"):
        assert recomputed[column].to_numpy() == pytest.approx(kept[column], rel=5e-3)
