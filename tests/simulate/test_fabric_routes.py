"""The NIC fabric's exclusive routes (a transfer's NICs that no other route uses, kept as one) give
the same finish times and NIC bookings as the all-flows reference fabric, including a route that
loses its exclusivity while its flows are running."""

from __future__ import annotations

import pytest
import simpy
from test_pinned_results import AllFlowsFabric

from simulate.fabric import NicFabric

GBPS = {(0, "a", "out"): 100.0, (0, "b", "out"): 100.0, (1, "a", "in"): 50.0, (1, "b", "in"): 100.0,
        (2, "a", "in"): 100.0}
SEND = (((0, "a", "out"), 2), ((0, "b", "out"), 2), ((1, "a", "in"), 2), ((1, "b", "in"), 2))
OTHER = (((0, "b", "out"), 1), ((2, "a", "in"), 3))  # shares one NIC with SEND
SOLO = (((2, "a", "in"), 1),)
# (start s, off-node s, route, priced share Gbit/s): SEND alone, then overlapping itself, then
# OTHER arrives on one of its NICs while two SEND flows run, then more of each
FLOWS = [(0.0, 1.0, SEND, 25.0), (2.0, 1.0, SEND, 25.0), (2.5, 0.7, SEND, 25.0), (2.9, 2.0, OTHER, 50.0),
         (3.0, 0.4, SEND, 25.0), (6.0, 1.0, SEND, 25.0), (6.2, 0.5, OTHER, 50.0), (9.0, 1.0, SOLO, 100.0)]


def _replay(fabric_cls):
    env = simpy.Environment()
    fabric = fabric_cls(env, GBPS)
    finished = {}

    def start(i, off, nics, share):
        fabric.flow(off, nics, share, lambda: finished.__setitem__(i, env.now))

    for i, (t, off, nics, share) in enumerate(FLOWS):
        env.timeout(t).callbacks.append(lambda _e, i=i, off=off, nics=nics, share=share: start(i, off, nics, share))
    env.run()
    return finished, dict(fabric.busy), dict(fabric.device_seconds)


def test_routes_match_all_flows_reference():
    fast, ref = _replay(NicFabric), _replay(AllFlowsFabric)
    assert fast[0].keys() == ref[0].keys() == set(range(len(FLOWS)))
    for i, t in ref[0].items():
        assert fast[0][i] == pytest.approx(t, rel=1e-12), i
    for fast_d, ref_d in ((fast[1], ref[1]), (fast[2], ref[2])):
        assert {k for k, v in fast_d.items() if v} == {k for k, v in ref_d.items() if v}
        for key, value in ref_d.items():
            assert fast_d[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


def test_route_hands_over_when_shared():
    env = simpy.Environment()
    fabric = NicFabric(env, GBPS)
    fabric.flow(1.0, SEND, 25.0)
    send = fabric._route(SEND)
    assert send.exclusive and fabric._route(SOLO).exclusive
    env.run(until=0.5)
    fabric.flow(1.0, OTHER, 50.0)  # shares (0, b, out) with SEND, (2, a, in) with SOLO
    assert not send.exclusive and not fabric._route(OTHER).exclusive and not fabric._route(SOLO).exclusive
    env.run()
    assert fabric.busy[(1, "a", "in")] == pytest.approx(1.0)  # SEND alone at full priced speed
