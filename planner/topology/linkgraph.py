"""An undirected graph with node and edge attributes: the part of ``networkx.Graph`` the topology
code uses (importing networkx costs ~0.1 CPU-s, a fifth of ``paraplan estimate``'s start-up).

Same semantics as networkx for this subset: ``g.add_node(n, **attrs)``, ``g.add_edge(u, v, **attrs)``,
``n in g``, ``g.has_edge(u, v)``, ``g[u]`` (neighbour -> shared edge-attribute dict, so
``g[u][v] is g[v][u]``), ``g.nodes[n]``, ``g.nodes(data="key")``, ``g.edges(data=True)`` (each edge
once), ``g.neighbors(n)``, ``len(g)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class _NodeView:
    def __init__(self, nodes: dict[Any, dict[str, Any]]):
        self._nodes = nodes

    def __getitem__(self, n) -> dict[str, Any]:
        return self._nodes[n]

    def __iter__(self):
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __call__(self, data: str | bool = False):
        if data is True:
            return list(self._nodes.items())
        if data:
            return [(n, attrs.get(data)) for n, attrs in self._nodes.items()]
        return list(self._nodes)


class LinkGraph:
    """Undirected graph; see the module docstring for the supported networkx subset."""

    def __init__(self) -> None:
        self._nodes: dict[Any, dict[str, Any]] = {}
        self._adj: dict[Any, dict[Any, dict[str, Any]]] = {}

    @property
    def nodes(self) -> _NodeView:
        return _NodeView(self._nodes)

    def add_node(self, n, **attrs) -> None:
        self._nodes.setdefault(n, {}).update(attrs)
        self._adj.setdefault(n, {})

    def add_edge(self, u, v, **attrs) -> None:
        for n in (u, v):
            if n not in self._nodes:
                self.add_node(n)
        data = self._adj[u].get(v, {})
        data.update(attrs)
        self._adj[u][v] = self._adj[v][u] = data

    def has_edge(self, u, v) -> bool:
        return u in self._adj and v in self._adj[u]

    def neighbors(self, n) -> Iterator:
        return iter(self._adj[n])

    def edges(self, data: bool = False):
        seen: set = set()
        out = []
        for u, nbrs in self._adj.items():
            for v, attrs in nbrs.items():
                if v in seen:
                    continue
                out.append((u, v, attrs) if data else (u, v))
            seen.add(u)
        return out

    def __getitem__(self, n) -> dict[Any, dict[str, Any]]:
        return self._adj[n]

    def __contains__(self, n) -> bool:
        return n in self._nodes

    def __iter__(self):
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)
