"""Read plans: between reads of the whole status objects a session reads only the leaves
status comes from, and the status it writes is the one a whole read would have given."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import random
import sqlite3
import tracemalloc
from pathlib import Path

import pytest

from acsd import shared_names
from acsd.cwmp import rpc
from acsd.provisioning import status
from acsd.provisioning.profiles import load_profiles
from acsd.provisioning.status import (
    Extraction,
    ReadPlan,
    extract_status_and_identity,
    fetch_names,
    plan_and_extraction,
    read_plan,
)
from acsd.sim.runner import Simulation

# simulator tree -> the profile a session picks for it
VENDORS = {
    "tplink-tr181": "tplink-tr181",
    "tr181-generic": "tr181",
    "tr181-mobile": "tr181",
    "tr098-dsl": "tr098",
    "huawei-hg8245": "huawei",
    "zte-f670l": "zte",
    "zyxel-vmg8825": "zyxel",
    "nokia-g240w": "nokia",
    "tplink-tr098": "tplink-tr098",
}
PROFILES = load_profiles()


def session_values(tree: str) -> dict[str, str]:
    """What a session with a whole read learns of a simulated router: its Inform and the
    profile's partial paths (each asked alone, as acsd does after a 9005)."""
    cpe = Simulation("http://127.0.0.1:9/", [tree], 1).routers[0]
    values = {p.name: p.value for p in cpe.begin_session(["2 PERIODIC"]).parameters}
    for name in fetch_names(PROFILES.get(VENDORS[tree]), already=values):
        answer = cpe.handle(rpc.GetParameterValues(names=[name]))
        if isinstance(answer, rpc.GetParameterValuesResponse):
            values.update({p.name: p.value for p in answer.parameters})
    return values


# What real CPEs put in the values status is read from: empties, other addresses, link-local
# IPv6, enum spellings, junk.
ODD_VALUES = ["", " ", "0.0.0.0", "192.0.2.77", "fe80::1", "2001:db8::5", "Up", "Down",
              "Disabled", "NR", "LTE", "-95", "31", "abc", "198.51.100.1,203.0.113.9"]  # fmt: skip


def worked_out_anew(profile, values: dict[str, str]) -> tuple[ReadPlan, tuple[dict, dict]]:
    """The plan and the status over ``values`` with nothing kept from earlier trees: what
    the kept work (status._Shape, by names) must agree with."""
    plan = read_plan(dataclasses.replace(profile, shapes={}, tree_shapes={}), values, 5.0)
    alone = dataclasses.replace(profile, shapes={}, tree_shapes={})
    return plan, extract_status_and_identity(alone, values)


@pytest.mark.parametrize("tree", sorted(VENDORS))
def test_the_plan_gives_what_the_whole_tree_gives_whatever_the_values(tree: str):
    profile = PROFILES.get(VENDORS[tree])
    whole = session_values(tree)
    plan = read_plan(profile, whole, at=0.0)
    assert 0 < len(plan.paths) < len(whole)
    assert set(plan.paths) <= set(whole)

    rng = random.Random(f"plan:{tree}")
    held = 0
    for _ in range(300):
        mutated = dict(whole)
        for path in rng.sample(plan.paths, k=rng.randint(1, min(6, len(plan.paths)))):
            mutated[path] = rng.choice([*ODD_VALUES, rng.choice(list(whole.values()))])
        leaves = {path: mutated[path] for path in plan.paths}
        if not Extraction(profile, leaves).refs_hold(plan):
            continue  # the driver reads the whole objects again (tested below)
        held += 1
        assert extract_status_and_identity(profile, leaves) == extract_status_and_identity(
            profile, mutated
        )
    assert held > 150, "too few mutations kept the refs: the comparison tested little"


@pytest.mark.parametrize("tree", sorted(VENDORS))
def test_a_first_sessions_plan_and_status_share_their_work_and_change_nothing(tree: str):
    """A first session extracts over its tree to plan its changes, then makes its read plan
    over the tree it ends with (the values it set merged in) and its status from that
    plan's work: the same plan and status as made apart, whatever the values."""
    profile = PROFILES.get(VENDORS[tree])
    whole = session_values(tree)
    rng = random.Random(f"shared:{tree}")
    lan = ("lanIp", "subnetMask")
    for _ in range(60):
        before = Extraction(profile, whole)
        if rng.random() < 0.5:  # what the LAN check of the DHCP settings reads, alone
            full = extract_status_and_identity(profile, whole)[0]
            assert before.status_fields(lan) == {k: full[k] for k in lan if k in full}
        else:
            before.status_and_identity()
        after = dict(whole)  # the same names; some values set or changed meanwhile
        for path in rng.sample(sorted(whole), k=rng.randint(1, 8)):
            after[path] = rng.choice([*ODD_VALUES, rng.choice(list(whole.values()))])
        plan, extraction = plan_and_extraction(profile, after, 5.0, like=before)
        assert (plan, extraction.status_and_identity()) == worked_out_anew(profile, after)
    # names that differ (fewer, other instance numbers) share nothing, and come out right
    fewer = dict(list(whole.items())[: len(whole) // 2])
    renumbered = {k.replace(".1.", ".7.", 1): v for k, v in whole.items()}
    for other in (fewer, renumbered):
        plan, extraction = plan_and_extraction(profile, other, 5.0, like=Extraction(profile, whole))
        assert (plan, extraction.status_and_identity()) == worked_out_anew(profile, other)


@pytest.mark.parametrize("tree", sorted(VENDORS))
def test_trees_of_one_shape_share_the_plans_work_unless_a_ref_points_elsewhere(tree: str):
    """Routers of one model and firmware report the same names (a boot storm's thousands):
    what their read plans read follows from those names and where the refs point, and is
    worked out once for all of them; a tree whose refs point elsewhere gets a plan of its
    own, and every plan and status is the one worked out anew."""
    profile = PROFILES.get(VENDORS[tree])
    whole = session_values(tree)
    first = read_plan(profile, whole, 5.0)
    rng = random.Random(f"one shape:{tree}")
    kept = worked = 0
    for _ in range(150):
        mutated = dict(whole)
        for path in rng.sample(first.paths, k=rng.randint(1, min(6, len(first.paths)))):
            mutated[path] = rng.choice([*ODD_VALUES, rng.choice(list(whole.values()))])
        shape = profile.tree_shapes[tuple(mutated)]  # the same names: the same shape
        known = len(shape.plans)
        plan, extraction = plan_and_extraction(profile, mutated, 5.0)
        worked += len(shape.plans) > known
        kept += len(shape.plans) == known
        assert (plan, extraction.status_and_identity()) == worked_out_anew(profile, mutated)
    # both ways were taken: plans kept for refs seen before, and plans of refs new
    assert kept > 20 and worked > 1
    assert len(shape.plans) <= status.MAX_PLANS_PER_SHAPE


def test_a_shape_keeps_a_bounded_number_of_plans(monkeypatch: pytest.MonkeyPatch):
    """A tree whose refs point at ever other targets (a hostile CPE's) makes a plan per
    combination: a shape keeps a bounded number, and plans past it are right all the same."""
    monkeypatch.setattr(status, "MAX_PLANS_PER_SHAPE", 3)
    profile = dataclasses.replace(PROFILES.get("tr098"), shapes={}, tree_shapes={})
    whole = session_values("tr098-dsl")
    first = read_plan(profile, whole, 5.0)
    rng = random.Random("bounded plans")
    combinations = set()
    for _ in range(150):
        mutated = dict(whole)
        for path in rng.sample(first.paths, k=rng.randint(1, min(6, len(first.paths)))):
            mutated[path] = rng.choice([*ODD_VALUES, rng.choice(list(whole.values()))])
        plan = read_plan(profile, mutated, 5.0)
        combinations.add(tuple(plan.refs.values()))
        assert len(profile.tree_shapes[tuple(mutated)].plans) <= 3
        assert plan == worked_out_anew(profile, mutated)[0]
    assert len(combinations) > 3  # (the bound was reached)


def test_trees_of_their_own_are_kept_apart_and_bounded():
    """Whole trees with rows of their own (hosts, leases: a shape no other router has) keep
    what they worked out in a cache of their own, bounded, and never push the read plans'
    shapes (those of every periodic session) out."""
    profile = dataclasses.replace(PROFILES.get("tplink-tr181"), shapes={}, tree_shapes={})
    whole = session_values("tplink-tr181")
    leaves = {path: whole[path] for path in read_plan(profile, whole, 5.0).paths}
    Extraction(profile, leaves, shared=True).status_and_identity()
    plans_shape = dict(profile.shapes)
    for n in range(300):
        tree = {**whole, **{f"Device.Hosts.Host.{n}{i}.IPAddress": "" for i in range(50)}}
        assert read_plan(profile, tree, 5.0) == worked_out_anew(profile, tree)[0]
        held = sum(len(shape.names) for shape in profile.tree_shapes.values())
        assert len(profile.tree_shapes) <= status.MAX_TREE_SHAPES
        assert held <= status.MAX_TREE_SHAPE_NAMES
    assert profile.shapes == plans_shape


def test_a_plan_survives_the_database_and_refuses_foreign_shapes():
    profile = PROFILES.get("tplink-tr181")
    plan = read_plan(profile, session_values("tplink-tr181"), at=1234.5)
    assert ReadPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert plan.profile == "tplink-tr181" and plan.reads == profile.reads
    for broken in (None, [], {}, {"profile": "x"}, {**plan.to_json(), "refs": []}):
        assert ReadPlan.from_json(broken) is None


def test_plans_of_routers_with_thousands_of_rows_do_not_pile_up(monkeypatch: pytest.MonkeyPatch):
    """A plan names a leaf per table row the profile reads, so a router that reports
    thousands of rows (its own instance numbers, new ones each time) has a plan of
    thousands of paths: what the process keeps of the plans it loaded is bounded by their
    paths, not by their number."""
    monkeypatch.setattr(status, "PLAN_PATHS_KEPT", 10_000)
    monkeypatch.setattr(shared_names, "MAX_NAMES", 1_000)
    status._PATHS_SEEN.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(40):  # as loaded from the store at each router's session
            paths = [f"Device.IP.Interface.{n}{i:05d}.IPv4Address.1.IPAddress" for i in range(2000)]
            plan = ReadPlan.from_json(
                {"profile": "tr181", "reads": "1", "paths": paths, "refs": {}, "at": 0.0}
            )
            assert plan is not None and len(plan.paths) == 2000
        del plan, paths
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        status._PATHS_SEEN.clear()
    # 80,000 paths of ~45 characters: over 6 MB had every plan stayed
    assert kept < 2_000_000


def test_a_changed_reading_rule_changes_the_profiles_version(tmp_path: Path):
    base = PROFILES.get("tr181")
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "mine.toml").write_text(
        'name = "mine"\nextends = "tr181"\n[match]\nproductClass = "Mine*"\n'
    )
    same = load_profiles(folder).get("mine")
    (folder / "mine.toml").write_text(
        'name = "mine"\nextends = "tr181"\n[match]\nproductClass = "Mine*"\n'
        '[[status.fields.lanIp]]\npaths = ["Device.IP.Interface.3.IPv4Address.1.IPAddress"]\n'
    )
    changed = load_profiles(folder).get("mine")
    assert same.reads == base.reads  # matching other routers reads the same way
    assert changed.reads != base.reads


# --- end to end: the daemon and simulated routers --------------------------------------------


@pytest.fixture(scope="module")
def daemon(module_daemon):
    """One daemon for the end-to-end tests (but the one that configures its own): each
    has routers of its own serial prefix and reads only their records."""
    return module_daemon


def gpv_names(router, session: int) -> list[str]:
    return [name for names in router.stats.session_gpvs(session) for name in names]


def stored(daemon, serial: str) -> tuple[dict, dict | None]:
    with sqlite3.connect(daemon.db) as db:
        params, plan = db.execute(
            "SELECT params, read_plan FROM devices WHERE serial_key = ?", (serial.lower(),)
        ).fetchone()
    return json.loads(params), json.loads(plan) if plan else None


def test_periodic_sessions_read_only_the_leaves_and_keep_the_rest(daemon):
    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="PLAN")
        router = sim.routers[0]
        assert (await sim.run_once()).ok == 1  # 0 BOOTSTRAP: the whole objects
        first = gpv_names(router, 0)
        assert any(name.endswith(".") for name in first)
        params, plan = stored(daemon, router.serial)
        assert plan is not None and plan["profile"] == "tplink-tr181"

        router.set_local("Device.IP.Interface.2.IPv4Address.1.IPAddress", "203.0.113.50")
        assert (await sim.run_once()).ok == 1  # 2 PERIODIC: the plan's leaves
        second = gpv_names(router, 1)
        assert second and not any(name.endswith(".") for name in second)
        # the plan's leaves, and the settings acsd holds on every CPE (drift check)
        extra = set(second) - set(plan["paths"])
        assert extra and all(n.startswith("Device.ManagementServer.") for n in extra), extra
        assert daemon.device_json(router.serial)["status"]["wanIp"] == "203.0.113.50"

        after, plan_after = stored(daemon, router.serial)
        assert plan_after == plan  # kept until the next whole read
        # What the plan does not read is still in the stored tree, and what it read is new.
        assert set(params) <= set(after)
        assert after["Device.IP.Interface.2.IPv4Address.1.IPAddress"][0] == "203.0.113.50"

    asyncio.run(run())


def test_a_moved_ref_or_a_vanished_leaf_reads_the_whole_objects_at_once(daemon):
    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 2, serial_prefix="MOVE")
        moved, gone = sim.routers
        assert (await sim.run_once()).ok == 2
        _, plan = stored(daemon, moved.serial)
        assert plan["refs"]["wan"] == ["Device.IP.Interface.2"]

        # The default route now leaves through interface 1: its status comes from there.
        route = "Device.Routing.Router.1.IPv4Forwarding.1.Interface"
        assert route in plan["paths"]
        moved.set_local(route, "Device.IP.Interface.1")
        # The firmware no longer has a leaf the plan reads.
        server = "Device.DNS.Client.Server.2."
        dropped = next(p for p in stored(daemon, gone.serial)[1]["paths"] if server in p)
        gone.tree.delete_object(server, "")
        assert (await sim.run_once()).ok == 2

        for router in (moved, gone):
            names = router.stats.session_gpvs(1)
            assert not any(n.endswith(".") for n in names[0]), router.serial  # the plan first
            assert any(n.endswith(".") for n in names[-1]), router.serial  # then the whole
        _, new_plan = stored(daemon, moved.serial)
        assert new_plan["refs"]["wan"] == ["Device.IP.Interface.1"]
        assert dropped not in stored(daemon, gone.serial)[1]["paths"]
        assert router.stats.ok == 2

    asyncio.run(run())


def test_a_boot_or_an_old_plan_reads_the_whole_objects(daemon_factory):
    daemon = daemon_factory(cwmp={"full_read_interval": 0})

    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="OLD")
        router = sim.routers[0]
        for _ in range(2):
            assert (await sim.run_once()).ok == 1
        # full_read_interval = 0: every session reads the whole objects
        assert any(n.endswith(".") for n in gpv_names(router, 1))

    asyncio.run(run())


def test_a_reboot_reads_the_whole_objects(daemon):
    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="BOOT")
        router = sim.routers[0]
        assert (await sim.run_once()).ok == 1
        router.reboot()
        assert (await sim.run_once()).ok == 1
        assert "1 BOOT" in router.stats.events[1]
        assert any(n.endswith(".") for n in gpv_names(router, 1))

    asyncio.run(run())


def test_a_cpe_that_silently_leaves_out_a_leaf_gets_the_whole_objects_read(daemon):
    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="OMIT")
        router = sim.routers[0]
        assert (await sim.run_once()).ok == 1
        before = daemon.device_json(router.serial)["status"]
        wan = "Device.IP.Interface.2.IPv4Address.1.IPAddress"
        answer = router.handle

        def leaves_out_the_wan_ip(request):
            # Firmware that drops a name it will not answer instead of faulting 9005.
            response = answer(request)
            if isinstance(request, rpc.GetParameterValues) and wan in request.names:
                response.parameters = [p for p in response.parameters if p.name != wan]
            return response

        router.handle = leaves_out_the_wan_ip
        assert (await sim.run_once()).ok == 1
        names = router.stats.session_gpvs(1)
        assert wan in names[0] and any(n.endswith(".") for n in names[-1])
        # The whole read got the address (under its object): status keeps it.
        assert daemon.device_json(router.serial)["status"]["wanIp"] == before["wanIp"]

    asyncio.run(run())


@pytest.mark.parametrize("first", [False, True], ids=["factory-reset", "first-session"])
def test_a_read_the_cpe_never_answered_plans_nothing_and_wipes_nothing(
    daemon_factory, monkeypatch, first
):
    # The router reboots (or drops the connection) before it answers the session's first
    # GetParameterValues. The plan used to be made of the Inform's few values: later
    # sessions read only those, and status stayed without its LAN and WAN addresses for
    # up to full_read_interval; a factory reset's session cut so also wiped them.
    from conftest import drop_first, wait_for

    daemon = daemon_factory(cwmp={"session_timeout": 1.0})

    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="CUT")
        router = sim.routers[0]
        serial = router.serial
        if not first:
            assert (await sim.run_once()).ok == 1
            before = daemon.device_json(serial)["status"]
            assert before["wanIp"] and before["lanIp"], before
            router.factory_reset()
        cut = drop_first(monkeypatch, rpc.GetParameterValuesResponse)
        await sim.run_once()
        assert cut
        wait_for(lambda: len(daemon.events("session.end")) >= (1 if first else 2), timeout=15)
        status_now = daemon.device_json(serial)["status"]
        if not first:
            # what the cut session could not read is still what was known
            for field in ("wanIp", "lanIp", "gateway", "dns"):
                assert status_now.get(field) == before.get(field), (field, status_now)
        _params, plan = stored(daemon, serial)
        assert plan is None or "Device.IP.Interface.2.IPv4Address.1.IPAddress" in str(plan)
        router.stats.rpcs.clear()
        router.stats.gpv.clear()
        assert (await sim.run_once()).ok == 1
        # the next session reads the whole objects (after a reset, the plan from before
        # it, which finds out at once if the tree moved), and status has the addresses
        if first:
            assert any(n.endswith(".") for n in gpv_names(router, 0)), gpv_names(router, 0)
        status_now = daemon.device_json(serial)["status"]
        assert status_now["wanIp"] and status_now["lanIp"], status_now

    asyncio.run(run())


def test_a_passphrase_read_back_in_clear_is_not_stored(daemon):
    # TR-069 has a CPE read secrets back as "", and some firmware sends them in clear:
    # acsd compares what it applied by hash, and the stored tree kept the router's
    # passphrase (the one before acsd's, or the customer's own) in the database.
    from api_world import seed_body

    async def run() -> None:
        sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="CLEAR")
        router = sim.routers[0]
        secret = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
        answer = router.handle

        def in_clear(request, fault=None):
            response = answer(request, fault)
            if isinstance(response, rpc.GetParameterValuesResponse):
                for p in response.parameters:
                    if p.name == secret:
                        p.value = "the-routers-own-key"
            return response

        router.handle = in_clear
        daemon.apply(seed_body(router.serial, "192.168.1"))
        for _ in range(3):  # the first read (whole objects and settings), then the plan's
            assert (await sim.run_once()).ok == 1
        assert any(secret in names for names in router.stats.gpv), router.stats.gpv
        params, _plan = stored(daemon, router.serial)
        assert "the-routers-own-key" not in json.dumps(params)
        assert params.get(secret, [""])[0] == ""
        assert daemon.device_json(router.serial)["state"] == "ACTIVE"

    asyncio.run(run())
