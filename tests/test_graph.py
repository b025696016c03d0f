import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, grid_areas

from sae.errors import SaeInputError
from sae.graph import (
    AreaGraph,
    connect_islands,
    graph_from_pairs,
    graph_from_polygons,
)

SCOTLAND = ROOT / "benchmarks" / "scotland_lip"


def scotland_graph(name: str) -> AreaGraph:
    pairs = pd.read_csv(SCOTLAND / f"{name}.csv", dtype=str)
    return graph_from_pairs(
        [str(i) for i in range(1, 57)], list(zip(pairs.i, pairs.j, strict=True)), name
    )


def test_scaling_factor_connected_scotland_matches_published():
    # 0.4853: Freni-Sterrantino et al. (2018) via stan-dev/example-models scotland_connected.data.json
    graph = scotland_graph("adjacency_geobugs")
    assert graph.n_components == 1
    assert graph.scaling_factor == pytest.approx(np.full(56, 0.4853), abs=5e-5)


def test_scaling_factor_scotland_islands_mainland_matches_published():
    # 0.4504 for the 53-district mainland: stan-dev/example-models scotland_islands.data.json
    graph = scotland_graph("adjacency_stan_islands")
    assert set(graph.islands) == {"6", "8", "11"}
    mainland = ~graph.is_island
    assert graph.scaling_factor[mainland] == pytest.approx(np.full(53, 0.4504), abs=5e-5)


def test_scaling_factor_per_component_three_components():
    # [0.4504, 0.25] for the mainland and the pair {6, 8}: scotland_3_comp.data.json
    graph = scotland_graph("adjacency_stan_3comp")
    assert graph.n_components == 3 and graph.islands == ("11",)
    assert graph.scaling_factor[graph.index["6"]] == pytest.approx(0.25, abs=1e-12)
    assert graph.scaling_factor[graph.index["1"]] == pytest.approx(0.4504, abs=5e-5)


def test_scaling_factor_equals_pseudoinverse_definition():
    # computed here: exp(mean(log(diag(pinv(L))))) on a random connected graph
    rng = np.random.default_rng(3)
    n = 30
    edges = [(i, i + 1) for i in range(n - 1)] + [
        tuple(rng.choice(n, 2, replace=False)) for _ in range(20)
    ]
    graph = graph_from_pairs([str(i) for i in range(n)], [(str(a), str(b)) for a, b in edges], "t")
    laplacian = graph.laplacian(np.arange(n))
    expected = np.exp(np.mean(np.log(np.diag(np.linalg.pinv(laplacian)))))
    assert graph.scaling_factor[0] == pytest.approx(expected, rel=1e-10)


def test_sparse_pseudo_inverse_diagonal_matches_the_dense_one_on_a_large_planar_graph():
    # Delaunay triangulation of 2,500 random points (seed 7): the selected inverse (Takahashi)
    # against numpy's dense pseudo-inverse, computed here
    from scipy.spatial import Delaunay

    from sae.selected_inverse import pseudo_inverse_diagonal

    points = np.random.default_rng(7).uniform(size=(2500, 2))
    triangles = Delaunay(points).simplices
    pairs = {
        tuple(sorted((int(a), int(b))))
        for t in triangles
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))
    }
    graph = graph_from_pairs(
        [str(i) for i in range(2500)], [(str(a), str(b)) for a, b in pairs], "t"
    )
    dense = np.diag(np.linalg.pinv(graph.laplacian(np.arange(2500))))
    assert pseudo_inverse_diagonal(graph.sparse_laplacian(np.arange(2500))) == pytest.approx(
        dense, rel=1e-8
    )


def test_polygon_contiguity_finds_grid_neighbours_and_the_island():
    areas = grid_areas(nrow=2, ncol=3)
    queen = graph_from_polygons(areas, "area", "queen", "grid")
    rook = graph_from_polygons(areas, "area", "rook", "grid")
    # 2 × 3 grid: 7 rook edges, plus 4 diagonals for queen
    assert len(rook.edges) == 7 and len(queen.edges) == 11
    assert queen.islands == ("island",) and queen.n_components == 2


def test_connect_islands_links_each_island_to_nearest_area():
    areas = grid_areas(nrow=2, ncol=3)
    graph = graph_from_polygons(areas, "area", "queen", "grid")
    centroids = np.column_stack([areas.centroid.x, areas.centroid.y])
    linked = connect_islands(graph, centroids)
    assert linked.islands == () and linked.n_components == 1
    assert linked.added_edges == (("a02", "island"),)  # a02 is the east-most square of row 0


def test_pairs_with_unknown_area_or_self_loop_are_errors():
    with pytest.raises(SaeInputError, match="not among the areas: z"):
        graph_from_pairs(["a", "b"], [("a", "z")], "edges.csv")
    with pytest.raises(SaeInputError, match="own neighbour: a"):
        graph_from_pairs(["a", "b"], [("a", "a")], "edges.csv")


def test_connect_links_island_chains_too():
    # issue #10: an archipelago of two areas (a separate component, not singletons) is linked
    ids = ["a", "b", "c", "d", "e"]
    graph = graph_from_pairs(ids, [("a", "b"), ("b", "c"), ("d", "e")], "edges.csv")
    centroids = np.array([[0, 0], [1, 0], [2, 0], [5, 0], [6, 0]], dtype=float)
    linked = connect_islands(graph, centroids)
    assert graph.islands == () and graph.n_components == 2  # no singleton at all
    assert linked.n_components == 1 and linked.added_edges == (("c", "d"),)
