"""The area graph: who neighbours whom, connected components, islands, BYM2 scaling.

An `AreaGraph` is a list of area ids and an undirected edge list (index pairs i < j). Everything the
models need from it costs O(edges), except the per-component scaling factor, a one-off dense
computation on each component's Laplacian (a few seconds for the 3,105-county US mainland).

References
----------
Riebler, Sørbye, Simpson & Rue (2016). An intuitive Bayesian spatial model for disease mapping
that accounts for scaling. Statistical Methods in Medical Research 25(4):1145-1165.
Freni-Sterrantino, Ventrucci & Rue (2018). A note on intrinsic conditional autoregressive models
for disconnected graphs. Spatial and Spatio-temporal Epidemiology 26:25-34.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from sae.errors import SaeInputError, listing


@dataclass(frozen=True, eq=False)
class AreaGraph:
    """Areas and their neighbour pairs.

    Attributes
    ----------
    ids : area ids (strings), in model order.
    edges : int array (n_edges, 2), each undirected edge once, i < j.
    added_edges : edges added by ``islands = "connect"``, as id pairs, so outputs can report them.
    """

    ids: tuple[str, ...]
    edges: np.ndarray
    added_edges: tuple[tuple[str, str], ...] = field(default=())

    @property
    def n_areas(self) -> int:
        return len(self.ids)

    @cached_property
    def index(self) -> dict[str, int]:
        return {area: i for i, area in enumerate(self.ids)}

    @cached_property
    def adjacency(self) -> sp.csr_array:
        i, j = self.edges.T
        n = self.n_areas
        ones = np.ones(len(i))
        return sp.csr_array((np.r_[ones, ones], (np.r_[i, j], np.r_[j, i])), shape=(n, n))

    @cached_property
    def component(self) -> np.ndarray:
        """Component label of each area, 0..n_components-1."""
        return connected_components(self.adjacency, directed=False)[1]

    @property
    def n_components(self) -> int:
        return int(self.component.max()) + 1 if self.n_areas else 0

    @cached_property
    def is_island(self) -> np.ndarray:
        """True for areas with no neighbour at all (singleton components)."""
        return np.bincount(self.component)[self.component] == 1

    @property
    def islands(self) -> tuple[str, ...]:
        return tuple(np.asarray(self.ids)[self.is_island])

    @cached_property
    def scaling_factor(self) -> np.ndarray:
        """BYM2 scaling factor s of each area's component (1.0 for islands).

        s = exp(mean(log diag L⁺)) for the component's Laplacian L = D − W, the geometric mean of
        the marginal variances of the ICAR field under a sum-to-zero constraint (Riebler et al.
        2016, sec. 3; per component as in Freni-Sterrantino et al. 2018). diag L⁺ comes from a
        sparse factor (`sae.selected_inverse`): no dense matrix, whatever the size.
        """
        factors = np.ones(self.n_areas)
        for nodes, variances in self.marginal_variances:
            factors[nodes] = float(np.exp(np.mean(np.log(variances))))
        return factors

    @cached_property
    def marginal_variances(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(nodes, diag L⁺) of each component of more than one area: the marginal variances of
        its unscaled ICAR field under the sum-to-zero constraint."""
        from sae.selected_inverse import pseudo_inverse_diagonal

        return [(nodes, pseudo_inverse_diagonal(self.sparse_laplacian(nodes)))
                for nodes in self.component_nodes() if len(nodes) > 1]  # fmt: skip

    def component_nodes(self) -> list[np.ndarray]:
        """Area indices of each connected component."""
        order = np.argsort(self.component, kind="stable")
        return np.split(order, np.cumsum(np.bincount(self.component))[:-1])

    def laplacian(self, nodes: np.ndarray) -> np.ndarray:
        """Dense graph Laplacian D − W of the subgraph on `nodes` (small components only)."""
        return self.sparse_laplacian(nodes).toarray()

    def sparse_laplacian(self, nodes: np.ndarray) -> sp.csr_array:
        """Graph Laplacian D − W of the subgraph on `nodes`."""
        sub = sp.csr_array(self.adjacency[np.ix_(nodes, nodes)])
        return sp.csr_array(sp.diags_array(np.asarray(sub.sum(axis=1)).ravel()) - sub)

    def summary(self) -> dict:
        """What an analyst should know about the graph, for reports and saved results."""
        sizes = np.bincount(self.component)
        return {
            "n_areas": self.n_areas,
            "n_edges": int(len(self.edges)),
            "n_components": self.n_components,
            "component_sizes": sorted(sizes.tolist(), reverse=True),
            "islands": list(self.islands),
            "added_edges": [list(pair) for pair in self.added_edges],
        }


def graph_from_pairs(ids: list[str], pairs: list[tuple[str, str]], where: str) -> AreaGraph:
    """Build a graph from id pairs (either direction, repeats allowed); self-loops are errors."""
    index = {area: i for i, area in enumerate(ids)}
    unknown = sorted({a for pair in pairs for a in pair if a not in index})
    if unknown:
        raise SaeInputError(
            f"{where}: neighbour pairs name areas that are not among the areas: {listing(unknown)}. "
            "Fix the ids so they match the area id column."
        )
    loops = sorted({a for a, b in pairs if a == b})
    if loops:
        raise SaeInputError(
            f"{where}: areas listed as their own neighbour: {listing(loops)}. Remove those rows."
        )
    edges = np.array([sorted((index[a], index[b])) for a, b in pairs], dtype=np.int64)
    edges = np.unique(edges.reshape(-1, 2), axis=0)
    return AreaGraph(ids=tuple(ids), edges=edges)


def graph_from_polygons(areas, id_column: str, contiguity: str, where: str) -> AreaGraph:
    """Queen or rook contiguity from polygons (a GeoDataFrame), via libpysal."""
    from libpysal import weights

    builder = {"queen": weights.Queen, "rook": weights.Rook}[contiguity]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal warns about islands; sae reports them itself
        w = builder.from_dataframe(areas, ids=areas[id_column].tolist(), use_index=False)
    pairs = [(a, b) for a, nbrs in w.neighbors.items() for b in nbrs]
    return graph_from_pairs(areas[id_column].tolist(), pairs, where)


def connect_islands(graph: AreaGraph, centroids: np.ndarray) -> AreaGraph:
    """Link every component other than the largest (single islands, and island chains such as
    an archipelago of two or three areas) to the nearest area outside it, until the graph is
    connected. `centroids` is an (n_areas, 2) array of planar coordinates, in graph order."""
    from scipy.spatial import cKDTree

    added: list[tuple[int, int]] = []
    current = graph
    while current.n_components > 1:
        labels = current.component
        largest = np.bincount(labels).argmax()
        for component in np.unique(labels):
            if component == largest:
                continue
            inside = np.flatnonzero(labels == component)
            outside = np.flatnonzero(labels != component)
            distance, nearest = cKDTree(centroids[outside]).query(centroids[inside])
            best = int(np.argmin(distance))
            added.append(tuple(sorted((int(inside[best]), int(outside[nearest[best]])))))
        edges = np.unique(np.vstack([graph.edges, np.array(added)]), axis=0)
        current = AreaGraph(ids=graph.ids, edges=edges)
    names = tuple((graph.ids[i], graph.ids[j]) for i, j in dict.fromkeys(added))
    return AreaGraph(ids=graph.ids, edges=current.edges, added_edges=names)
