"""The rank grid as a DeviceMesh with dimensions (dp, pp, cp, tp), tp fastest (the planner's grid)."""

from __future__ import annotations

from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from planner.specs import Layout

MESH_DIMS = ("dp", "pp", "cp", "tp")


def make_mesh(layout: Layout, device_type: str) -> DeviceMesh:
    """A (dp, pp, cp, tp) mesh over every rank of the default process group (size-1 dims kept)."""
    return init_device_mesh(device_type, (layout.dp, layout.pp, layout.cp, layout.tp), mesh_dim_names=MESH_DIMS)


def coords(mesh: DeviceMesh) -> dict[str, int]:
    """This rank's coordinate along each mesh dimension."""
    return {name: mesh.get_local_rank(name) for name in MESH_DIMS}
