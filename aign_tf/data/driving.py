"""A procedural driving world for structure from motion (paper sec. 2.2).

No real video with ground-truth depth and camera motion ships offline, so this module makes one: a
camera on a car driving along a straight street, with RGB frames, EXACT depth and EXACT camera
poses, all determined by a seed.

World (x right, y DOWN, z forward along the street, metres; the drive starts near the origin):

- the ground plane y = CAMERA_HEIGHT: an asphalt road |x| < ROAD_HALF_WIDTH with a dashed centre
  line and edge lines, paved sidewalks beyond;
- buildings: boxes along both sides (facades at |x| in 6-12 m, 6-25 m tall, 5-20 m long, small
  gaps), each with its own colour and a grid of dark windows;
- cars: boxes parked along both road edges and a few in the lanes beyond the end of the drive
  (the world is static, so the frames differ only by the camera motion);
- one large box seen from inside, whose walls and ceiling are sky, so that every ray hits
  something at a finite depth (its floor is the ground plane).

Every texture is a function of the 3D hit point (value noise in world coordinates), never of the
pixel, so a surface point has the same colour in every frame. Shading is a constant factor per
face orientation. Frames are ray cast with NumPy, `supersample` x `supersample` colour samples per
pixel; the depth is that of the pixel-centre ray, measured along the optical axis.

The car drives at 0.8-1.4 m per frame (slowly varying), its heading follows a mean-reverting
random walk (yaw rate std ~0.01 rad per frame) that keeps it on the road (|x| <= MAX_LATERAL), and
the camera pitches, rolls (std CAMERA_WOBBLE rad) and bounces (std CAMERA_BOUNCE m) slightly.

Towns (`TOWNS`, the domains of the sfm card's domain shift): each street is in one town, which sets
its look (facade colours, sky, clouds, the sun's direction as the brightness of each face orientation,
asphalt, exposure, haze) and its cars' cruising speeds; street geometry and the camera are the same in
every town. Town 0, "midday", is the world above, unchanged since before towns existed (the default:
every model trained before keeps its data); towns 1-3 vary the look; town 4, "dusk", is a hazy
evening whose cars drive 1.2-1.9 m per frame instead of 0.8-1.4.

Real camera paths: given the poses of a real drive (`real_drive`, camera-to-world matrices such as a
KITTI odometry pose file's, `aign_tf.data.kitti.read_odometry_poses`), each street's camera follows a
window of consecutive poses of that drive instead, one pose per frame (KITTI odometry's 10 frames a
second, about 1 m per frame at 36 km/h: the pace of the random process), chosen by the street's seed:
the real speed, turns, pitch, roll and bounce, taken relative to the window's first pose. The street
stays straight: the window is rotated as a whole so that the line from its first to its last camera
position runs level along the street (+z), then shifted sideways at random within the lanes. Only
windows that then fit the street are used (`street_windows`): every camera within |x| <= MAX_LATERAL
and within MAX_HEADING of the street's axis, and at least MIN_ADVANCE metres driven, so that turns at
intersections, which the street does not have, are left out (3,040 of the 4,502 windows of 40 frames
of KITTI odometry sequence 00 fit). A rigid motion of the whole window leaves every pair's relative
motion exactly the real one; the ground stays a plane, so the camera's height above it follows the
real drive's climbs and dips away from the level line (within 0.4 m on those 3,040 windows).

`load_pairs` caches the frame pairs (see `aign_tf.data.frames`) on disk through the TFDS builder
`DrivingWorld`. Each call builds one config holding only the requested split: the config name
encodes the frame size, frames per sequence, seed and the number of sequences of each split (0 for
the splits not requested), e.g. "64x192_f40_s0_t16_m0_e0" for 16 training streets, in towns other
than town 0 alone "_w" and the towns (street i is in towns[i % len(towns)]), e.g. "_w0-1-2-3", and
with a trajectory "_p" and the first 12 hex digits of the SHA-256 of its poses (float64). Streets are
numbered within a split, so the first n streets of a split are the same whatever the count.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import math
import os
import time
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from absl import logging as absl_logging

from aign_tf import files
from aign_tf.data import frames, kitti
from aign_tf.data.images import cache_dir, tfds_damage
from aign_tf.errors import UserError, check_choice

DEFAULT_FRAMES = 40
SPLITS = ("train", "memory", "test")
# A split's streets use seeds SEED_STRIDE * (split index + 1) + seed * MAX_SEQUENCES + i.
MAX_SEQUENCES = 1_000_000
SEED_STRIDE = 10**15
REBUILD_HINT = "delete that directory; the next run renders it again"

HORIZONTAL_FOV = math.radians(80.0)
CAMERA_HEIGHT = 1.6      # metres above the ground plane, which is y = CAMERA_HEIGHT
ROAD_HALF_WIDTH = 4.5
MAX_LATERAL = 2.5        # the camera keeps |x| <= MAX_LATERAL
MAX_HEADING = 0.3        # radians: a real drive's camera keeps within this of the street's axis
MIN_ADVANCE = 1.0        # metres: a window of a real drive must get at least this far
CAMERA_WOBBLE = 0.002    # std of pitch and roll, radians
CAMERA_BOUNCE = 0.01     # std of the height change, metres

STREET_BEHIND = 40.0     # buildings start this far behind the start of the drive
STREET_AHEAD = 100.0     # and end this far past its end
SKY_BOX_X = 80.0
SKY_BOX_TOP = -60.0
SKY_BOX_MARGIN = 10.0    # between the last buildings and the sky box's end walls
TILE = (16, 32)          # pixels (rows, columns) ray cast against the boxes in their view only

BUILDING, CAR = 0, 1
CAR_PAINTS = np.array([[0.75, 0.10, 0.10], [0.12, 0.22, 0.60], [0.88, 0.88, 0.86], [0.10, 0.10, 0.11],
                       [0.62, 0.64, 0.66], [0.15, 0.45, 0.20], [0.85, 0.65, 0.15]], np.float32)


def _colours(*rgb: tuple[float, float, float]) -> np.ndarray:
    return np.array(rgb, np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Town:
    """What differs between the towns of the driving world (the domains of `--train_towns` and
    `--test_towns`): how it looks and how its cars drive. Street geometry and the camera (height,
    field of view) are the same in every town, so depth maps of one town are plausible in another.

    building_paints [7, 3]: facade colours (each building one of them, jittered); sky [2, 3]: colour at
    the horizon and at the zenith; cloud_threshold: value noise above it is cloud (lower: more cloud);
    face_light [3, 2]: brightness of a face by the axis of its normal and the normal's sign (-, +), the
    sun's direction (y points down, so the ground and the car roofs face -y); asphalt: the road's grey
    level; ground_tint [3]: the colour of road and pavement greys; exposure [3]: a factor on every
    colour (white balance, dusk); haze [3] and visibility (metres, inf for clear air): a surface
    `distance` metres away is mixed with the haze colour by 1 - exp(-distance / visibility); cruise
    (metres per frame): the range of a drive's cruising speed, and speed_limits the range of its speed.
    """
    name: str
    building_paints: np.ndarray
    sky: np.ndarray
    cloud_threshold: float
    face_light: np.ndarray
    asphalt: float
    ground_tint: np.ndarray
    exposure: np.ndarray
    haze: np.ndarray
    visibility: float
    cruise: tuple[float, float]
    speed_limits: tuple[float, float]


_CLEAR = dict(exposure=_colours(1.0, 1.0, 1.0), haze=_colours(1.0, 1.0, 1.0), visibility=math.inf,
              cruise=(0.9, 1.3), speed_limits=(0.8, 1.4))
# Town 0 is the driving world of every model trained before towns existed (the default); towns 1-3
# vary its look; town 4, the shifted test town of the sfm card, is a hazy dusk whose cars drive faster.
TOWNS = (
    Town("midday", _colours((0.80, 0.72, 0.58), (0.62, 0.32, 0.24), (0.70, 0.70, 0.68), (0.85, 0.80, 0.70),
                            (0.55, 0.50, 0.45), (0.72, 0.56, 0.42), (0.60, 0.66, 0.72)),
         _colours((0.78, 0.86, 0.96), (0.30, 0.50, 0.88)), 0.45, _colours((0.92, 0.74), (1.0, 0.55), (0.86, 0.66)),
         0.30, _colours(1.0, 1.0, 1.03), **_CLEAR),
    Town("brick", _colours((0.58, 0.24, 0.18), (0.66, 0.36, 0.26), (0.48, 0.20, 0.16), (0.74, 0.52, 0.40),
                           (0.40, 0.30, 0.26), (0.70, 0.62, 0.52), (0.52, 0.28, 0.30)),
         _colours((0.84, 0.88, 0.94), (0.36, 0.56, 0.86)), 0.55, _colours((1.0, 0.62), (1.0, 0.50), (0.80, 0.74)),
         0.34, _colours(1.02, 1.0, 0.98), **_CLEAR),
    Town("overcast", _colours((0.62, 0.62, 0.60), (0.55, 0.52, 0.50), (0.70, 0.68, 0.64), (0.48, 0.50, 0.52),
                              (0.66, 0.60, 0.54), (0.58, 0.60, 0.62), (0.75, 0.74, 0.70)),
         _colours((0.74, 0.75, 0.77), (0.58, 0.60, 0.64)), 0.25, _colours((0.84, 0.80), (0.94, 0.70), (0.82, 0.80)),
         0.36, _colours(1.0, 1.0, 1.0), **{**_CLEAR, "exposure": _colours(0.92, 0.92, 0.94)}),
    Town("whitewash", _colours((0.92, 0.90, 0.84), (0.86, 0.84, 0.80), (0.90, 0.82, 0.70), (0.80, 0.86, 0.90),
                               (0.94, 0.92, 0.90), (0.84, 0.78, 0.66), (0.76, 0.82, 0.78)),
         _colours((0.70, 0.82, 0.98), (0.20, 0.42, 0.86)), 0.60, _colours((0.62, 1.0), (1.0, 0.45), (0.95, 0.52)),
         0.24, _colours(1.0, 0.98, 0.96), **{**_CLEAR, "exposure": _colours(1.04, 1.0, 0.94)}),
    Town("dusk", _colours((0.30, 0.62, 0.58), (0.22, 0.36, 0.66), (0.62, 0.78, 0.40), (0.80, 0.46, 0.62),
                          (0.26, 0.50, 0.36), (0.70, 0.70, 0.86), (0.88, 0.74, 0.30)),
         _colours((0.98, 0.62, 0.36), (0.16, 0.20, 0.42)), 0.40, _colours((0.70, 0.95), (0.82, 0.40), (0.60, 0.90)),
         0.26, _colours(0.95, 0.92, 1.05), exposure=_colours(0.80, 0.66, 0.60), haze=_colours(0.62, 0.46, 0.42),
         visibility=45.0, cruise=(1.3, 1.8), speed_limits=(1.2, 1.9)),
)


def check_towns(towns: tuple[int, ...], what: str) -> tuple[int, ...]:
    """`towns` if every entry numbers a town of TOWNS (and there is one); else one line that starts with
    `what` (the setting and its value)."""
    if not towns or any(isinstance(t, bool) or not 0 <= t < len(TOWNS) for t in towns):
        raise UserError(f"{what} must be town numbers 0-{len(TOWNS) - 1}, comma-separated "
                        f"({', '.join(f'{i} {town.name}' for i, town in enumerate(TOWNS))})")
    return tuple(towns)


@dataclasses.dataclass(frozen=True)
class _World:
    """The static scene: boxes [B, 2, 3] (min and max corners), their kind [B] (BUILDING or CAR),
    colour [B, 3], the enclosing sky box [2, 3], a texture seed and its town's look."""
    boxes: np.ndarray
    kinds: np.ndarray
    colours: np.ndarray
    sky_box: np.ndarray
    texture_seed: int
    town: Town


def camera(height: int, width: int) -> frames.Intrinsics:
    """The driving camera for height x width frames: HORIZONTAL_FOV wide, square pixels, principal
    point at the image centre."""
    frames.check_frame_size(height, width)
    focal = (width / 2) / math.tan(HORIZONTAL_FOV / 2)
    return frames.Intrinsics(height, width, (focal, focal), ((width - 1) / 2, (height - 1) / 2))


# ---------------------------------------------------------------- trajectory and world


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation Ry(yaw) @ Rx(pitch) @ Rz(roll) ([3, 3], conventions of
    `aign_tf.render.camera`; positive yaw turns the camera towards +x)."""
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def _trajectory(rng: np.random.Generator, num_frames: int, town: Town) -> np.ndarray:
    """World-to-camera matrices [F, 4, 4] (float64) of the drive, at the town's speeds."""
    cruise = rng.uniform(*town.cruise)
    speed_noise, yaw_noise = rng.normal(size=(2, num_frames))
    pitch, roll = rng.normal(0.0, CAMERA_WOBBLE, size=(2, num_frames))
    bounce = rng.normal(0.0, CAMERA_BOUNCE, size=num_frames)
    x, z, heading, speed_offset = rng.uniform(-1.0, 1.0), 0.0, rng.normal(0.0, 0.02), 0.0
    world_to_camera = np.zeros((num_frames, 4, 4))
    for k in range(num_frames):
        rotation = _rotation(heading, pitch[k], roll[k])
        position = np.array([x, bounce[k], z])
        world_to_camera[k, :3, :3] = rotation.T
        world_to_camera[k, :3, 3] = -rotation.T @ position
        world_to_camera[k, 3, 3] = 1.0
        # Slowly varying speed; the heading turns back towards the street's axis and centre.
        speed_offset = 0.9 * speed_offset + 0.04 * speed_noise[k]
        speed = float(np.clip(cruise + speed_offset, *town.speed_limits))
        turn = 0.01 * yaw_noise[k] - 0.08 * heading - 0.004 * x
        # Drive along the mean heading over the frame (an arc, not a sideways slide).
        middle = heading + turn / 2
        heading += turn
        x = float(np.clip(x + speed * math.sin(middle), -MAX_LATERAL, MAX_LATERAL))
        z += speed * math.cos(middle)
    return world_to_camera


def street_windows(camera_to_world: np.ndarray, num_frames: int, name: str = "the trajectory") -> np.ndarray:
    """Camera-to-world matrices [K, num_frames, 4, 4] of every window of num_frames consecutive poses of a
    real drive (camera-to-world [N, 4, 4]) that fits the street, in street coordinates (see the module
    docstring), the first camera at the origin; UserError naming `name` if none fits."""
    windows = np.zeros((max(len(camera_to_world) - num_frames + 1, 0), num_frames, 4, 4))
    for start in range(len(windows)):
        windows[start] = camera_to_world[start:start + num_frames]
    windows = np.linalg.inv(windows[:, :1]) @ windows  # relative to the first pose
    chord = windows[:, -1, :3, 3]
    length = np.linalg.norm(chord, axis=-1, keepdims=True)
    forward = chord / np.maximum(length, 1e-9)
    right = np.cross([0.0, 1.0, 0.0], forward)  # the first camera's y is down
    level = np.linalg.norm(right, axis=-1)  # cosine of the chord's climb; near 0 the alignment is undefined
    right /= np.maximum(level[:, np.newaxis], 1e-9)
    align = np.eye(4) * np.ones((len(windows), 1, 1))
    align[:, :3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    windows = align[:, np.newaxis] @ windows
    lateral = windows[:, :, 0, 3]
    heading = np.arctan2(windows[:, :, 0, 2], windows[:, :, 2, 2])  # of each optical axis
    fits = ((length[:, 0] >= MIN_ADVANCE) & (level > 0.5) & (lateral.max(1) - lateral.min(1) <= 2 * MAX_LATERAL)
            & (np.abs(heading).max(1) <= MAX_HEADING))
    if not fits.any():
        raise UserError(f"{name} ({len(camera_to_world)} poses) has no window of {num_frames} consecutive poses that "
                        f"fits the driving world's straight street (at least {MIN_ADVANCE:g} m driven, within "
                        f"{2 * MAX_LATERAL:g} m sideways and {MAX_HEADING:g} rad of its axis): use a longer drive "
                        "or fewer frames per street")
    return windows[fits]


def _real_trajectory(rng: np.random.Generator, real_drive: np.ndarray, num_frames: int) -> np.ndarray:
    """World-to-camera matrices [F, 4, 4] (float64) of a drive along a random fitting window of a real
    drive (camera-to-world [N, 4, 4]), shifted sideways at random within the lanes."""
    windows = street_windows(real_drive, num_frames)
    window = windows[rng.integers(len(windows))]
    lateral = window[:, 0, 3]
    window[:, 0, 3] += rng.uniform(-MAX_LATERAL - lateral.min(), MAX_LATERAL - lateral.max())
    return np.linalg.inv(window)


def _box(x0: float, x1: float, height: float, z0: float, z1: float) -> np.ndarray:
    """[2, 3] corners of a box standing on the ground, x0 <= x <= x1, z0 <= z <= z1."""
    return np.array([[x0, CAMERA_HEIGHT - height, z0], [x1, CAMERA_HEIGHT, z1]])


def _world(rng: np.random.Generator, drive_end: float, town: Town) -> _World:
    """Buildings along both sides of the street from STREET_BEHIND metres behind the start to
    STREET_AHEAD past `drive_end` (z), cars parked along the road edges and a few in the lanes
    past the end of the drive, and the sky box around it all."""
    street_start, street_end = -STREET_BEHIND, drive_end + STREET_AHEAD
    boxes, kinds, colours = [], [], []

    def add(box: np.ndarray, kind: int, paints: np.ndarray) -> None:
        boxes.append(box)
        kinds.append(kind)
        colours.append(np.clip(paints[rng.integers(len(paints))] + rng.normal(0.0, 0.04, 3), 0.0, 1.0))

    for side in (-1.0, 1.0):
        z = street_start - rng.uniform(0.0, 10.0)
        while z < street_end:
            length, facade, depth = rng.uniform(5.0, 20.0), rng.uniform(6.0, 12.0), rng.uniform(8.0, 16.0)
            x0, x1 = sorted((side * facade, side * (facade + depth)))
            add(_box(x0, x1, rng.uniform(6.0, 25.0), z, z + length), BUILDING, town.building_paints)
            z += length + rng.uniform(0.3, 3.0)
        z = street_start + rng.uniform(0.0, 20.0)
        while z < drive_end + STREET_AHEAD / 2:
            centre, length = side * rng.uniform(3.6, 3.8), rng.uniform(3.8, 4.6)
            add(_box(centre - 0.9, centre + 0.9, rng.uniform(1.4, 1.6), z, z + length), CAR, CAR_PAINTS)
            z += length + rng.uniform(6.0, 30.0)
    for lane in (-1.0, 1.0):
        centre, z = lane * rng.uniform(1.2, 2.2), drive_end + rng.uniform(12.0, 60.0)
        add(_box(centre - 0.9, centre + 0.9, rng.uniform(1.4, 1.6), z, z + rng.uniform(3.8, 4.6)), CAR, CAR_PAINTS)

    sky_box = np.array([[-SKY_BOX_X, SKY_BOX_TOP, street_start - SKY_BOX_MARGIN],
                        [SKY_BOX_X, CAMERA_HEIGHT, street_end + SKY_BOX_MARGIN]])
    return _World(np.array(boxes, np.float32), np.array(kinds), np.array(colours, np.float32),
                  sky_box.astype(np.float32), int(rng.integers(2**31)), town)


# ---------------------------------------------------------------- textures


def _hash(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """A pseudo-random float32 in [0, 1) per integer lattice point (i, j) (int64 arrays)."""
    mask = 0xFFFFFFFF
    h = (i * 0x27D4EB2D + j * 0x165667B1 + salt * 0x9E3779B9) & mask
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & mask
    h ^= h >> 12
    h = (h * 0x297A2D39) & mask
    h ^= h >> 15
    return (h & 0xFFFFFF).astype(np.float32) / np.float32(2**24)


def _noise(u: np.ndarray, v: np.ndarray, scales: tuple[float, ...], salt: int) -> np.ndarray:
    """Smooth value noise in [0, 1] over the surface coordinates u, v [N] (metres): the average of
    one octave per scale (feature size, metres)."""
    total = np.zeros(u.shape, np.float32)
    for octave, scale in enumerate(scales):
        su, sv = u / np.float32(scale), v / np.float32(scale)
        fu, fv = np.floor(su), np.floor(sv)
        iu, iv = fu.astype(np.int64), fv.astype(np.int64)
        wu, wv = su - fu, sv - fv
        wu, wv = wu * wu * (3 - 2 * wu), wv * wv * (3 - 2 * wv)
        salt_k = salt + 7919 * octave
        top = _hash(iu, iv, salt_k) * (1 - wu) + _hash(iu + 1, iv, salt_k) * wu
        bottom = _hash(iu, iv + 1, salt_k) * (1 - wu) + _hash(iu + 1, iv + 1, salt_k) * wu
        total += top * (1 - wv) + bottom * wv
    return total / len(scales)


def _band(coordinate: np.ndarray, start: float, stop: float, soft: float) -> np.ndarray:
    """1 inside [start, stop] and 0 outside, with linear ramps `soft` wide across the edges (soft
    edges keep the texture from aliasing)."""
    return np.clip(np.minimum(coordinate - start, stop - coordinate) / soft + 0.5, 0.0, 1.0)


def _ground(points: np.ndarray, salt: int, town: Town) -> np.ndarray:
    """Colours [N, 3] of ground points [N, 3]: road markings on noisy asphalt, paving slabs."""
    x, z = points[:, 0], points[:, 2]
    side = np.abs(x)
    asphalt = town.asphalt + 0.16 * (_noise(x, z, (0.5, 1.5, 5.0), salt) - 0.5)
    dashes = _band(x, -0.08, 0.08, 0.06) * _band(np.mod(z + 1.5, 6.0) - 1.5, 0.0, 3.0, 0.2)
    edges = _band(side, ROAD_HALF_WIDTH - 0.38, ROAD_HALF_WIDTH - 0.22, 0.06)
    asphalt += (0.85 - asphalt) * np.maximum(dashes, edges)
    slab_x, slab_z = np.floor(x / 1.2), np.floor(z / 1.2)
    paving = 0.55 + 0.06 * _hash(slab_x.astype(np.int64), slab_z.astype(np.int64), salt + 1)
    paving += 0.1 * (_noise(x, z, (0.7, 2.5), salt + 2) - 0.5)
    from_grout = 1.2 * np.minimum(np.minimum(x / 1.2 - slab_x, slab_x + 1 - x / 1.2),
                                  np.minimum(z / 1.2 - slab_z, slab_z + 1 - z / 1.2))
    paving *= 1.0 - 0.3 * _band(from_grout, -1.0, 0.03, 0.04)
    sidewalk = _band(side, ROAD_HALF_WIDTH, np.inf, 0.05)
    grey = asphalt * (1 - sidewalk) + paving * sidewalk
    return grey[:, None] * town.ground_tint


def _sky(points: np.ndarray, axis: np.ndarray, salt: int, town: Town) -> np.ndarray:
    """Colours [N, 3] of points [N, 3] on the sky box (face normal along `axis` [N]): the town's sky
    gradient with soft clouds."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    up = np.clip((CAMERA_HEIGHT - y) / (CAMERA_HEIGHT - SKY_BOX_TOP), 0.0, 1.0)[:, None]
    colour = town.sky[0] * (1 - up) + town.sky[1] * up
    u = np.where(axis == 0, z, x)
    v = np.where(axis == 1, z, y)
    cloud = np.clip((_noise(u, v, (6.0, 15.0, 40.0), salt + 3) - town.cloud_threshold) * 4.0, 0.0, 1.0)[:, None]
    return colour * (1 - 0.7 * cloud) + 0.95 * 0.7 * cloud


def _boxes(points: np.ndarray, axis: np.ndarray, box: np.ndarray, world: _World) -> np.ndarray:
    """Colours [N, 3] of points [N, 3] on the faces (normal along `axis` [N]) of boxes `box` [N]:
    buildings with a grid of dark windows (one per 2.5 m x 3.2 m cell, none on the ground floor
    or the roof), cars with a dark lower band and dark windows."""
    y = points[:, 1]
    above = CAMERA_HEIGHT - y
    along = np.where(axis == 0, points[:, 2], points[:, 0])  # horizontal coordinate on the face
    wall = world.colours[box] * (0.85 + 0.3 * _noise(along, above, (0.6, 2.0), world.texture_seed + 4))[:, None]
    top = CAMERA_HEIGHT - world.boxes[box, 0, 1]
    side = axis != 1
    column, row = np.floor(along / 2.5), np.floor(above / 3.2)
    windows = (_band(along - 2.5 * column, 0.6, 2.3, 0.15) * _band(above - 3.2 * row, 1.0, 2.5, 0.15)
               * (side & (row >= 1) & (3.2 * (row + 1) <= top)))
    is_car = world.kinds[box] == CAR
    car_windows = side * _band(above, top - 0.55, np.inf, 0.06)
    glass = 0.10 + 0.12 * _hash(column.astype(np.int64), row.astype(np.int64), world.texture_seed + 5)
    glass = np.where(is_car, 0.12, glass)[:, None] * np.array([0.9, 1.0, 1.2], np.float32)
    dark = np.where(is_car, car_windows, windows)[:, None]
    colour = wall * (1 - dark) + glass * dark
    lower_band = (is_car * _band(above, -np.inf, 0.45, 0.06))[:, None]
    return colour * (1 - lower_band) + 0.08 * lower_band


# ---------------------------------------------------------------- ray casting


def _visible(corners: np.ndarray, left: float, right: float, top: float, bottom: float) -> np.ndarray:
    """Indices of the boxes that rays with camera-frame slopes X/Z in [left, right] and Y/Z in
    [top, bottom] may hit: those not wholly behind the camera or outside one of the four planes
    through it. corners: [B, 8, 3] box corners in camera coordinates."""
    x, y, z = np.moveaxis(corners, -1, 0)
    outside = ((z <= 0).all(1) | (x < left * z).all(1) | (x > right * z).all(1)
               | (y < top * z).all(1) | (y > bottom * z).all(1))
    return np.flatnonzero(~outside)


def _slab_test(boxes: np.ndarray, origin: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest box each ray enters, from outside all boxes: boxes [B, 2, 3], origin [3],
    inverse [N, 3] (1 / direction). Returns t [N] (inf where no box is hit), box [N] and the axis
    [N] of the entry face's normal."""
    entries, entry, exit_ = [], np.float32(-np.inf), np.float32(np.inf)
    for a in range(3):
        plane0 = inverse[:, a, None] * (boxes[:, 0, a] - origin[a])
        plane1 = inverse[:, a, None] * (boxes[:, 1, a] - origin[a])
        entries.append(np.minimum(plane0, plane1))
        entry = np.maximum(entry, entries[-1])
        exit_ = np.minimum(exit_, np.maximum(plane0, plane1))
    entry[(entry > exit_) | (entry <= 0)] = np.inf
    box = entry.argmin(axis=1)
    rays = np.arange(len(inverse))
    axis = np.stack([e[rays, box] for e in entries], axis=1).argmax(axis=1)
    return entry[rays, box], box, axis


def _cast(world: _World, visible: np.ndarray, origin: np.ndarray,
          directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest hit of each ray origin + t * direction, t > 0.

    visible: indices of the boxes to test; origin [3] and directions [N, 3] float32, world
    coordinates.

    Returns:
      t [N] (the ray parameter of the hit), box [N] int (the box hit, -1 for the sky box) and
      axis [N] int (the axis of the hit face's normal).
    """
    inverse = np.float32(1.0) / np.where(directions == 0, np.float32(1e-20), directions)
    # Inside the sky box every ray leaves it through the nearest of the three far planes.
    exits = np.maximum((world.sky_box[0] - origin) * inverse, (world.sky_box[1] - origin) * inverse)
    axis = exits.argmin(axis=1)
    t = np.take_along_axis(exits, axis[:, None], axis=1)[:, 0]
    box = np.full(len(directions), -1)
    if len(visible):
        t_box, nearest, box_axis = _slab_test(world.boxes[visible], origin, inverse)
        closer = t_box < t
        t = np.where(closer, t_box, t)
        box = np.where(closer, visible[nearest], box)
        axis = np.where(closer, box_axis, axis)
    return t, box, axis


def _shade(world: _World, origin: np.ndarray, directions: np.ndarray, t: np.ndarray, box: np.ndarray,
           axis: np.ndarray) -> np.ndarray:
    """Colours [N, 3] float32 in [0, 1] of the hits origin [3] + t [N] * directions [N, 3] (box and
    axis [N] as returned by `_cast`)."""
    points = origin + t[:, None] * directions
    # The face's normal points against the ray: along +axis where the ray runs along -axis.
    positive = np.take_along_axis(directions, axis[:, None], axis=1)[:, 0] < 0
    colour = np.empty_like(points)
    on_box = box >= 0
    ground = ~on_box & (axis == 1) & ~positive
    sky = ~on_box & ~ground
    town = world.town
    colour[ground] = _ground(points[ground], world.texture_seed, town)
    colour[sky] = _sky(points[sky], axis[sky], world.texture_seed, town)
    colour[on_box] = _boxes(points[on_box], axis[on_box], box[on_box], world)
    light = np.where(sky, np.float32(1.0), town.face_light[axis, positive.astype(np.int64)])
    colour = colour * light[:, None] * town.exposure
    if math.isfinite(town.visibility):
        distance = t * np.linalg.norm(directions, axis=-1)
        fog = 1.0 - np.exp(-distance / np.float32(town.visibility))[:, None]
        colour = colour * (1.0 - fog) + town.haze * fog
    return np.clip(colour, 0.0, 1.0)


def _render_frame(world: _World, world_to_camera: np.ndarray, intrinsics: frames.Intrinsics,
                  supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame: colour float32 [H, W, 3] in [0, 1] (the mean of supersample x supersample
    samples per pixel, offsets symmetric about the pixel centre) and depth float32 [H, W] (of
    the pixel-centre ray), from the world-to-camera matrix [4, 4]."""
    (fx, fy), (cx, cy) = intrinsics.focal, intrinsics.principal_point
    height, width, s = intrinsics.height, intrinsics.width, supersample
    camera_to_world = np.linalg.inv(world_to_camera)
    origin = camera_to_world[:3, 3].astype(np.float32)

    def directions(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """World-frame directions [rows, columns, 3] of the rays through those pixel coordinates,
        scaled to Z = 1 in the camera frame, so that the ray parameter t is the depth."""
        rows, columns = np.broadcast_arrays(rows[:, None], columns[None, :])
        camera_frame = np.stack([(columns - cx) / fx, (rows - cy) / fy, np.ones(rows.shape)], axis=-1)
        return (camera_frame @ camera_to_world[:3, :3].T).astype(np.float32)

    offsets = (np.arange(s) + 0.5) / s - 0.5
    centres = directions(np.arange(height), np.arange(width))
    samples = directions((np.arange(height)[:, None] + offsets).ravel(), (np.arange(width)[:, None] + offsets).ravel())
    corner = np.array([[i // 4, i // 2 % 2, i % 2] for i in range(8)])  # min or max per axis
    corners = world.boxes[:, corner, np.arange(3)] @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]

    depth = np.empty((height, width), np.float32)
    t = np.empty((height * s, width * s), np.float32)
    box, axis = np.empty((2, height * s, width * s), np.int64)
    # Tiles of pixels, each tested only against the boxes in its view (1 pixel of margin).
    for r0 in range(0, height, TILE[0]):
        for c0 in range(0, width, TILE[1]):
            r1, c1 = r0 + TILE[0], c0 + TILE[1]
            visible = _visible(corners, (c0 - 1.5 - cx) / fx, (c1 + 0.5 - cx) / fx,
                               (r0 - 1.5 - cy) / fy, (r1 + 0.5 - cy) / fy)
            tile = depth[r0:r1, c0:c1]
            tile[:] = _cast(world, visible, origin, centres[r0:r1, c0:c1].reshape(-1, 3))[0].reshape(tile.shape)
            hits = _cast(world, visible, origin, samples[r0 * s:r1 * s, c0 * s:c1 * s].reshape(-1, 3))
            for grid, values in zip((t, box, axis), hits):
                tile = grid[r0 * s:r1 * s, c0 * s:c1 * s]
                tile[:] = values.reshape(tile.shape)
    colour = _shade(world, origin, samples.reshape(-1, 3), t.ravel(), box.ravel(), axis.ravel())
    return colour.reshape(height, s, width, s, 3).mean(axis=(1, 3)), depth


def render_sequence(seed: int, num_frames: int, height: int, width: int, supersample: int = 2,
                    real_drive: np.ndarray | None = None, town: int = 0) -> dict:
    """Renders the drive down the street of `seed` in town `town` (of TOWNS), along a window of
    `real_drive` (camera-to-world [N, 4, 4]) if given, else along the random process at the town's speeds.

    Returns:
      {"images": uint8 [F, H, W, 3], "depths": float32 [F, H, W] (Z along the optical axis,
      metres), "world_to_camera": float64 [F, 4, 4] (X_camera = E @ X_world)}; the same arguments
      give bit-identical arrays.
    """
    intrinsics = camera(height, width)
    if num_frames < 1 or supersample < 1:
        raise UserError(f"need num_frames >= 1 and supersample >= 1, got {num_frames} and {supersample}")
    look = TOWNS[check_towns((town,), f"town={town}")[0]]
    rng = np.random.default_rng(seed)
    if real_drive is None:
        world_to_camera = _trajectory(rng, num_frames, look)
    else:
        world_to_camera = _real_trajectory(rng, real_drive, num_frames)
    world = _world(rng, drive_end=np.linalg.inv(world_to_camera[-1])[2, 3], town=look)
    images = np.zeros((num_frames, height, width, 3), np.uint8)
    depths = np.zeros((num_frames, height, width), np.float32)
    for k in range(num_frames):
        colour, depths[k] = _render_frame(world, world_to_camera[k], intrinsics, supersample)
        images[k] = np.round(colour * 255).astype(np.uint8)
    return {"images": images, "depths": depths, "world_to_camera": world_to_camera}


# ---------------------------------------------------------------- splits and the TFDS cache


def sequence_seeds(split: str, count: int, seed: int = 0) -> list[int]:
    """The seeds of the first `count` streets of `split` ("train", "memory" or "test"); the three
    splits never share a street, and neither do two values of `seed`."""
    check_choice("split", split, SPLITS)
    if not 0 <= count <= MAX_SEQUENCES or not 0 <= seed < SEED_STRIDE // MAX_SEQUENCES:
        raise UserError(f"need 0 <= count <= {MAX_SEQUENCES} and 0 <= seed < {SEED_STRIDE // MAX_SEQUENCES}, "
                        f"got count {count} and seed {seed}")
    start = SEED_STRIDE * (SPLITS.index(split) + 1) + seed * MAX_SEQUENCES
    return [start + i for i in range(count)]


@dataclasses.dataclass(eq=False)
class DrivingWorldConfig(tfds.core.BuilderConfig):
    """One build of the driving world: frame size, frames per street, seed, the number of streets of
    each split, the towns they are in (street i in towns[i % len(towns)]) and the real drive they
    follow (camera-to-world [N, 4, 4], None for the random process). Make it with
    `DrivingWorldConfig.create`, which names it."""
    height: int = 64
    width: int = 192
    num_frames: int = DEFAULT_FRAMES
    seed: int = 0
    train: int = 0
    memory: int = 0
    test: int = 0
    towns: tuple[int, ...] = (0,)
    real_drive: np.ndarray | None = None

    @classmethod
    def create(cls, height: int, width: int, num_frames: int = DEFAULT_FRAMES, seed: int = 0,
               train: int = 0, memory: int = 0, test: int = 0, towns: tuple[int, ...] = (0,),
               real_drive: np.ndarray | None = None) -> "DrivingWorldConfig":
        """The config named after its contents, e.g. "64x192_f40_s0_t16_m8_e4"; in towns other than
        town 0 "..._w0-1-2" (the towns), with a real drive "..._p0123456789ab"."""
        frames.check_frame_size(height, width)
        if num_frames < 2:
            raise UserError(f"a street needs at least 2 frames to make a pair, got num_frames={num_frames}")
        for split, count in zip(SPLITS, (train, memory, test)):
            sequence_seeds(split, count, seed)  # checks the count and the seed
        towns = check_towns(tuple(towns), f"towns={list(towns)}")
        name = f"{height}x{width}_f{num_frames}_s{seed}_t{train}_m{memory}_e{test}"
        if towns != (0,):
            name += "_w" + "-".join(map(str, towns))
        if real_drive is not None:
            name += "_p" + hashlib.sha256(np.ascontiguousarray(real_drive, np.float64).tobytes()).hexdigest()[:12]
        return cls(name=name, description=f"driving world {name}", height=height, width=width,
                   num_frames=num_frames, seed=seed, train=train, memory=memory, test=test, towns=towns,
                   real_drive=real_drive)


class DrivingWorld(tfds.core.GeneratorBasedBuilder):
    """The consecutive frame pairs (`aign_tf.data.frames`) of the driving world's streets, in
    order: splits "train", "memory" and "test" (those with at least one street), each street
    rendered by `render_sequence` from the split's `sequence_seeds`. Nothing is downloaded."""
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> tfds.core.Path:
        """This file. (TFDS's own lookup of it needs the optional importlib_resources package.)"""
        return tfds.core.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        config = self.builder_config
        frame = (config.height, config.width)
        features = tfds.features.FeaturesDict({
            "image1": tfds.features.Image(shape=frame + (3,)),
            "image2": tfds.features.Image(shape=frame + (3,)),
            "depth1": tfds.features.Tensor(shape=frame + (1,), dtype=np.float32, encoding="zlib"),
            "rotation": tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
            "translation": tfds.features.Tensor(shape=(3,), dtype=np.float32),
            "sequence": tfds.features.Tensor(shape=(), dtype=np.int32),
        })
        # Unshuffled, so that the pairs come back in street and frame order.
        return tfds.core.DatasetInfo(builder=self, features=features, disable_shuffling=True,
                                     description="Frame pairs of a procedural street with exact depth and "
                                                 "camera motion (aign_tf.data.driving).")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        del dl_manager  # everything is rendered
        return {split: self._generate_examples(split) for split in SPLITS
                if getattr(self.builder_config, split) > 0}

    def _generate_examples(self, split: str) -> Iterator[tuple[str, dict]]:
        """Yields (key, pair) for every pair of every street of `split`; `sequence` numbers the
        streets within the split."""
        config = self.builder_config
        for index, seed in enumerate(sequence_seeds(split, getattr(config, split), config.seed)):
            street = render_sequence(seed, config.num_frames, config.height, config.width,
                                     real_drive=config.real_drive, town=config.towns[index % len(config.towns)])
            pairs = frames.sequence_pairs(street["images"], street["depths"], street["world_to_camera"], index)
            for k in range(config.num_frames - 1):
                yield f"{index}_{k}", {key: pairs[key][k] for key in frames.PAIR_KEYS}


def load_pairs(split: str, *, height: int, width: int, sequences: int, num_frames: int = DEFAULT_FRAMES,
               seed: int = 0, data_dir: str | None = None, verbose: bool = True,
               trajectory: str | None = None, towns: tuple[int, ...] = (0,)) -> dict:
    """All pairs of the first `sequences` streets of `split`, as the `aign_tf.data.frames` dict:
    sequences * (num_frames - 1) pairs of height x width frames in street and frame order, with
    `sequence` numbering the streets 0 .. sequences - 1, street i in town towns[i % len(towns)]. With
    `trajectory` (a KITTI odometry pose file) the streets follow windows of that real drive.

    They are read from the TFDS cache in `data_dir` (default: <cache_dir()>/tfds). The first call
    for a combination of arguments renders the streets into a `DrivingWorld` config holding only
    this split (e.g. "64x192_f40_s0_t16_m0_e0"), printing one line with the time taken when
    `verbose`; later calls only read it. TFDS writes a build into a temporary directory and renames
    it when complete, so an interrupted build is never read: the next call builds again. A second
    process asking for the same streets while the first builds them waits and then reads that build.
    """
    check_choice("split", split, SPLITS)
    if sequences < 1:
        raise UserError(f"need at least one street, got sequences={sequences}")
    real_drive = None
    if trajectory is not None:
        real_drive = kitti.read_odometry_poses(trajectory)
        street_windows(real_drive, num_frames, f"trajectory file {trajectory}")  # fails here, not mid-build
    config = DrivingWorldConfig.create(height, width, num_frames, seed, towns=towns, real_drive=real_drive,
                                       **{split: sequences})
    data_dir = data_dir or os.path.join(cache_dir(), "tfds")
    cache = os.path.join(data_dir, DrivingWorld.name, config.name)
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS logs every file it touches
    try:
        with tfds_damage("the driving world cache", cache, REBUILD_HINT):
            builder = DrivingWorld(config=config, data_dir=data_dir)
        if not builder.data_path.exists():  # download_and_prepare's own test for a finished build
            with files.locked(cache):  # another process building these streets: wait for it
                with tfds_damage("the driving world cache", cache, REBUILD_HINT):
                    builder = DrivingWorld(config=config, data_dir=data_dir)  # sees a build finished meanwhile
                if not builder.data_path.exists():
                    start = time.time()
                    # TFDS prints its own messages and progress bars; one line of ours says it all.
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        builder.download_and_prepare()
                    if verbose:
                        print(f"driving world: rendered {sequences * num_frames} {height}x{width} {split} frames "
                              f"in {time.time() - start:.1f} s into {builder.data_dir}")
        with tfds_damage("the driving world cache", cache, REBUILD_HINT):
            pairs = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    finally:
        absl_logging.set_verbosity(verbosity)
    return {key: pairs[key] for key in frames.PAIR_KEYS}
