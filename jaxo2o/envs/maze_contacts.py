"""Which contacts MJX computes for an agent in a block maze: exact culling of far wall pairs.

MuJoCo C finds colliding geom pairs with a broad phase and keeps only the contacts within the
pair's margin. MJX has fixed array shapes: without a limit it evaluates every agent geom against
every wall block and carries every candidate contact through the constraint solver. For an ant
in D4RL's U-maze (12 capsules + 1 sphere, 18 blocks) that is 475 contacts (1,908 constraint
rows) per physics step, nearly all inactive, and one environment step of 10 ants took 0.56 s on
a 2-core CPU (RK4: 20 collision passes per step).

MJX offers two model-level limits, read from MuJoCo `<numeric>` fields (mjx
`collision_driver.py`, `collision`): `max_geom_pairs` keeps, per collision-function group, the
k pairs whose bounding spheres are closest; `max_contact_points` keeps the k contacts with the
smallest distance. MuJoCo C ignores both fields, so the host model stays the reference.

Why `max_geom_pairs` loses nothing here (`wall_pair_limit`): the blocks sit on a square grid of
spacing `s` (the maze scaling). A pair can be active only if its bounding spheres are within the
pair's margin, i.e. the block's centre is within rho = R_block + r_geom + margin of the geom's
centre; if rho < s, that disc holds at most 4 grid points (5 grid points always include two that
are 2 s apart along an axis, which no disc of radius < s covers). So each agent geom has at most
4 blocks in reach and a group of n geoms at most 4 n active pairs; the k = 4 n closest pairs
hold them all. The limit is checked against the compiled model, not assumed.

MJX reads a numeric field at `numeric_data[id]`, the field's id rather than its address
(`collision_driver._numeric`), which is right only if every numeric before it has size 1.
Gymnasium's ant.xml declares a 15-value `init_qpos` first, so appended limits were read as 0 and
MJX carried no contact at all (the ant fell through the floor). The limits are therefore put
before the model's own numerics, and `compile_with_culling` checks what MJX reads.

`max_contact_points` is a bound, not a proof: it is set above the largest number of active
contacts measured (`results/antmaze-d4rl/README.md`, "Contact culling"); were more ever active,
MJX keeps the deepest ones.
"""

from __future__ import annotations

import mujoco
import numpy as np

BLOCKS_IN_REACH = 4  # grid points within a disc of radius < the spacing
# An ant (12 capsules, a sphere) in a maze: at most 15 active contacts measured in MJX over 1,500
# adversarial states (flipped, thrown into walls), 15 in MuJoCo C over 540,000 substeps.
ANT_CONTACT_POINTS = 32


def wall_pair_limit(model: mujoco.MjModel, spacing: float) -> int:
    """The `max_geom_pairs` that keeps every possibly active agent-block pair (module docstring).

    Blocks are the world's box geoms, agent geoms those of moving bodies that can collide.
    Raises ValueError when the blocks are too large for the grid spacing for the bound to hold.
    """
    world = model.geom_bodyid == 0
    blocks = world & (model.geom_type == mujoco.mjtGeom.mjGEOM_BOX)
    agent = (model.geom_bodyid > 0) & ((model.geom_contype | model.geom_conaffinity) > 0)
    if not blocks.any() or not agent.any():
        raise ValueError("wall_pair_limit: the model has no wall blocks or no colliding agent geom")
    reach = (
        model.geom_rbound[blocks].max()
        + model.geom_rbound[agent].max()
        + model.geom_margin[blocks].max()
        + model.geom_margin[agent].max()
    )
    if reach >= spacing:
        raise ValueError(
            f"wall_pair_limit: block + agent bounding radii + margins = {reach:.3f} must be "
            f"below the grid spacing {spacing:g} for at most {BLOCKS_IN_REACH} blocks in reach"
        )
    per_type = np.unique(model.geom_type[agent], return_counts=True)[1]
    return BLOCKS_IN_REACH * int(per_type.max())


def compile_with_culling(
    spec: mujoco.MjSpec, spacing: float, max_contact_points: int | None = None
) -> mujoco.MjModel:
    """Compile `spec` with MJX's `max_geom_pairs` (from `wall_pair_limit`) and, if given,
    `max_contact_points` as numeric fields placed first (module docstring: MJX's indexing);
    every other value is the spec's own. Raises RuntimeError if MJX would read other values."""
    pairs = wall_pair_limit(spec.compile(), spacing)
    limits = {"max_geom_pairs": pairs}
    if max_contact_points is not None:
        limits["max_contact_points"] = int(max_contact_points)
    own = [(n.name, list(n.data), n.size) for n in spec.numerics]
    for n in list(spec.numerics):
        spec.delete(n)
    for name, value in limits.items():
        field = spec.add_numeric()
        field.name = name
        field.data = [float(value)]
    for name, data, size in own:
        field = spec.add_numeric()
        field.name, field.data, field.size = name, data, size
    model = spec.compile()
    if contact_limits(model) != limits:
        raise RuntimeError(f"MJX would read {contact_limits(model)} instead of {limits}")
    return model


def contact_limits(model: mujoco.MjModel) -> dict[str, int]:
    """The MJX limits a compiled model carries, as MJX reads them (`numeric_data[id]`; absent
    ones omitted)."""
    out = {}
    for name in ("max_geom_pairs", "max_contact_points"):
        i = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_NUMERIC, name)
        if i >= 0:
            out[name] = int(model.numeric_data[i])
    return out
