"""The Human3.6M reader on small files written in VideoPose3D's format, and 2D keypoint files."""
import json
import re

import numpy as np
import pytest

from aign_tf.data import h36m
from aign_tf.errors import UserError
from tests.testing import H36M_METADATA as METADATA, make_h36m_2d as make_2d, make_h36m_3d as make_3d
from tests.testing import h36m_camera_frame, h36m_project, write_h36m_dir
from tests.testing import save_npz as save

@pytest.fixture
def files(tmp_path):
    return (
        save(tmp_path / "data_3d_h36m.npz", positions_3d=make_3d()),
        save(tmp_path / "data_2d_h36m_gt.npz", positions_2d=make_2d(), metadata=METADATA),
    )


def test_constants_follow_videopose3d():
    assert h36m.TRAIN_SUBJECTS == ("S1", "S5", "S6", "S7", "S8")
    assert h36m.TEST_SUBJECTS == ("S9", "S11")
    removed = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]  # VideoPose3D's static joints
    assert h36m.H36M17_FROM_32 == tuple(i for i in range(32) if i not in removed)
    assert len(h36m.H36M17_NAMES) == len(h36m.H36M17_PARENTS) == 17


def test_every_third_frame_and_17_of_32_joints(files):
    data = h36m.load_h36m(files[0], subjects=["S5"])
    # Actions in sorted order: "Directions 1" (7 frames -> 0, 3, 6), then "Walking" (10 -> 0, 3, 6, 9).
    assert list(data.action) == ["Directions 1"] * 3 + ["Walking"] * 4
    assert list(data.frame) == [0, 3, 6, 0, 3, 6, 9]
    assert set(data.subject) == {"S5"}
    assert data.poses_3d.shape == (7, 17, 3) and data.poses_3d.dtype == np.float32
    assert data.poses_2d is None and len(data) == 7 and data.num_joints == 17
    # Walking frame 6, kept joint 7 ("spine") = marker 12, axis y.
    assert data.poses_3d[5, 7, 1] == pytest.approx(1 + 0.6 + 0.012 + 0.0001, abs=1e-6)
    # Kept joint 11 ("left_shoulder") = marker 17; kept joint 14 ("right_shoulder") = marker 25.
    assert data.poses_3d[6, 11, 0] == pytest.approx(1 + 0.9 + 0.017, abs=1e-6)
    assert data.poses_3d[0, 14, 2] == pytest.approx(1 + 0.025 + 0.0002, abs=1e-6)
    full = h36m.load_h36m(files[0], subjects=["S5"], joints=32, every=1)
    assert full.poses_3d.shape == (17, 32, 3)
    np.testing.assert_array_equal(full.poses_3d[:, list(h36m.H36M17_FROM_32)][[0, 3, 6, 7, 10, 13, 16]], data.poses_3d)


def test_2d_views_match_their_3d_frames(files):
    data = h36m.load_h36m(files[0], files[1], subjects=["S9"], every=3)
    assert data.poses_2d.shape == (7, 4, 17, 2) and data.poses_2d.dtype == np.float32
    # Row 4 = Walking frame 3; camera 2, joint 16, axis x.
    assert data.action[4] == "Walking" and data.frame[4] == 3
    assert data.poses_2d[4, 2, 16, 0] == pytest.approx(200 + 3 + 0.16, abs=1e-4)
    assert data.poses_3d[4, 0, 0] == pytest.approx(5 + 0.3, abs=1e-6)  # S9 is subject index 5


def test_subject_split(files):
    train = h36m.load_h36m(files[0], files[1])  # default: the training subjects
    test = h36m.load_h36m(files[0], files[1], subjects="test")
    assert list(dict.fromkeys(train.subject)) == ["S1", "S5", "S6", "S7", "S8"]
    assert list(dict.fromkeys(test.subject)) == ["S9", "S11"]
    assert len(train) == 5 * 7 and len(test) == 2 * 7
    assert len(h36m.load_h36m(files[0], subjects="all")) == 7 * 7


def test_already_reduced_3d_file(tmp_path):
    path = save(tmp_path / "d3.npz", positions_3d=make_3d(joints=17))
    assert h36m.load_h36m(path, subjects=["S1"]).poses_3d.shape == (7, 17, 3)
    with pytest.raises(UserError, match=re.escape(path)):
        h36m.load_h36m(path, subjects=["S1"], joints=32)


def check(path, fn, *args, **kwargs):
    with pytest.raises(UserError, match=re.escape(str(path))) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_bad_3d_files(tmp_path):
    missing = tmp_path / "nowhere.npz"
    check(missing, h36m.load_h36m, str(missing))
    text = tmp_path / "text.npz"
    text.write_text("not an npz")
    check(text, h36m.load_h36m, str(text))
    wrong_key = save(tmp_path / "key.npz", poses=np.zeros(3))
    assert "positions_3d" in check(wrong_key, h36m.load_h36m, wrong_key)
    not_dict = save(tmp_path / "array.npz", positions_3d=np.zeros((4, 32, 3)))
    check(not_dict, h36m.load_h36m, not_dict)
    positions = make_3d()
    del positions["S11"]
    no_subject = save(tmp_path / "s.npz", positions_3d=positions)
    assert "S11" in check(no_subject, h36m.load_h36m, no_subject, subjects="test")
    for bad in (np.zeros((5, 31, 3), np.float32), np.zeros((5, 32), np.float32), np.zeros((0, 32, 3))):
        positions = make_3d()
        positions["S1"]["Walking"] = bad
        path = save(tmp_path / "bad.npz", positions_3d=positions)
        assert "S1/Walking" in check(path, h36m.load_h36m, path, subjects=["S1"])
    millimetres = {s: {a: v * 1000 for a, v in acts.items()} for s, acts in make_3d().items()}
    path = save(tmp_path / "mm.npz", positions_3d=millimetres)
    assert "millimetres" in check(path, h36m.load_h36m, path)


def test_bad_2d_files(tmp_path, files):
    path_3d = files[0]
    positions = make_2d()
    del positions["S9"]
    path = save(tmp_path / "a.npz", positions_2d=positions, metadata=METADATA)
    assert "S9" in check(path, h36m.load_h36m, path_3d, path, subjects="test")
    positions = make_2d()
    del positions["S1"]["Walking"]
    path = save(tmp_path / "b.npz", positions_2d=positions, metadata=METADATA)
    assert "Walking" in check(path, h36m.load_h36m, path_3d, path)
    path = save(tmp_path / "c.npz", positions_2d=make_2d(joints=16), metadata=METADATA)
    assert "[T, 17, 2]" in check(path, h36m.load_h36m, path_3d, path)
    path = save(tmp_path / "d.npz", positions_2d=make_2d(extra=-1), metadata=METADATA)
    check(path, h36m.load_h36m, path_3d, path)
    path = save(tmp_path / "e.npz", positions_2d=make_2d(), metadata={**METADATA, "layout_name": "coco"})
    assert "coco" in check(path, h36m.load_h36m, path_3d, path)
    path = save(tmp_path / "f.npz", positions_2d=make_2d(), metadata={**METADATA, "num_joints": 16})
    check(path, h36m.load_h36m, path_3d, path)
    positions = make_2d()
    positions["S5"]["Walking"] = positions["S5"]["Walking"][:3]
    path = save(tmp_path / "g.npz", positions_2d=positions, metadata=METADATA)
    assert "cameras" in check(path, h36m.load_h36m, path_3d, path)


@pytest.mark.parametrize("kwargs", [{"joints": 18}, {"every": 0}, {"every": 1.5}, {"subjects": []}])
def test_bad_arguments(files, kwargs):
    with pytest.raises(UserError):
        h36m.load_h36m(files[0], **kwargs)


def test_keypoints_2d_formats(tmp_path):
    poses = np.arange(3 * 16 * 2, dtype=np.float32).reshape(3, 16, 2)
    npz = save(tmp_path / "k.npz", keypoints=poses, other=np.zeros(2))
    np.testing.assert_array_equal(h36m.load_keypoints_2d(npz, 16), poses)
    single = save(tmp_path / "single.npz", anything=poses)
    np.testing.assert_array_equal(h36m.load_keypoints_2d(single, 16), poses)
    npy = tmp_path / "k.npy"
    np.save(npy, poses)
    np.testing.assert_array_equal(h36m.load_keypoints_2d(str(npy), 16), poses)
    with_score = np.concatenate([poses, np.ones((3, 16, 1), np.float32)], axis=-1)
    js = tmp_path / "k.json"
    js.write_text(json.dumps({"keypoints": with_score.tolist()}))
    out = h36m.load_keypoints_2d(str(js), 16)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, poses)
    js.write_text(json.dumps(poses.tolist()))
    np.testing.assert_array_equal(h36m.load_keypoints_2d(str(js), 16), poses)


def test_bad_keypoint_files(tmp_path):
    poses = np.zeros((3, 16, 2), np.float32)
    path = save(tmp_path / "k.npz", keypoints=poses)
    assert "expected 14" in check(path, h36m.load_keypoints_2d, path, 14)
    check(tmp_path / "missing.json", h36m.load_keypoints_2d, str(tmp_path / "missing.json"), 16)
    flat = save(tmp_path / "flat.npz", keypoints=np.zeros((3, 32)))
    check(flat, h36m.load_keypoints_2d, flat, 16)
    nan = save(tmp_path / "nan.npz", keypoints=np.full((3, 16, 2), np.nan))
    check(nan, h36m.load_keypoints_2d, nan, 16)
    two = save(tmp_path / "two.npz", a=poses, b=poses)
    check(two, h36m.load_keypoints_2d, two, 16)
    ragged = tmp_path / "ragged.json"
    ragged.write_text(json.dumps([[[1, 2]], [[1, 2], [3, 4]]]))
    check(ragged, h36m.load_keypoints_2d, str(ragged), 1)
    other = tmp_path / "k.txt"
    other.write_text("1 2")
    check(other, h36m.load_keypoints_2d, str(other), 16)
    obj = tmp_path / "obj.json"
    obj.write_text(json.dumps({"poses": []}))
    check(obj, h36m.load_keypoints_2d, str(obj), 16)
    with pytest.raises(UserError):
        h36m.load_keypoints_2d(path, 0)


# ---- the paper's protocol from a data directory, cameras, actions ----

def test_cameras_look_at_the_capture_area_upright():
    """Every subject's camera sees a person standing at the world origin (z up) inside its image, head up;
    world_to_camera agrees with scipy's quaternions (tests/testing.py)."""
    points = np.array([[0.0, 0.0, 0.1], [0.0, 0.0, 1.0], [0.0, 0.0, 1.8]])  # feet, pelvis, head (metres)
    for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        for c, intrinsics in enumerate(h36m.CAMERAS):
            camera = h36m.world_to_camera(points, subject, c)
            np.testing.assert_allclose(camera, h36m_camera_frame(points, subject, c), atol=1e-6)  # float32 q
            assert np.all((3.5 < camera[:, 2]) & (camera[:, 2] < 6.5))
            pixels = h36m_project(camera, c)
            assert np.all((0 < pixels) & (pixels < intrinsics.size_px)), (subject, c, pixels)
            assert pixels[0, 1] > pixels[1, 1] > pixels[2, 1]  # feet below the pelvis below the head
    with pytest.raises(UserError, match="S2"):
        h36m.world_to_camera(points, "S2", 0)


def test_action_names_follow_the_papers_tables():
    assert len(h36m.ACTIONS) == 15 and h36m.ACTIONS[0] == "Directions" and h36m.ACTIONS[-1] == "WalkTogether"
    assert [h36m.action_name(a) for a in ("Directions 1", "Walking", "TakingPhoto 1", "WalkingDog", "WalkDog 1")] == [
        "Directions", "Walking", "Photo", "WalkDog", "WalkDog"]


def test_protocol_reads_the_directory_once_per_file_and_splits_by_subject(tmp_path):
    directory = write_h36m_dir(tmp_path)
    train, test = h36m.load_protocol(directory)
    assert list(dict.fromkeys(train.subject)) == list(h36m.TRAIN_SUBJECTS)
    assert list(dict.fromkeys(test.subject)) == list(h36m.TEST_SUBJECTS)
    assert set(train.frame) == {0, 3, 6, 9} and len(test) == 2 * 3 * 4  # 12 frames: every third
    assert train.poses_3d.shape[1:] == (17, 3) and test.poses_2d.shape[1:] == (4, 17, 2)
    train2, _ = h36m.load_protocol(directory, "cpn", every=2)
    assert set(train2.frame) == {0, 2, 4, 6, 8, 10}
    assert 1.0 < np.abs(train2.poses_2d - h36m.load_protocol(directory, every=2)[0].poses_2d).mean() < 5.0  # noise


@pytest.mark.parametrize("damage, expected", [
    ("no_dir", "does not exist"), ("no_cpn", "does not exist"), ("truncated", "not an .npz"),
    ("nan", "non-finite"), ("joints", "31 joints"), ("no_S11", "no subject 'S11'"), ("cameras", "3 cameras"),
])
def test_damaged_directories_name_the_file(tmp_path, damage, expected):
    directory = write_h36m_dir(tmp_path / "d", kinds=("gt",))
    path_3d, path_2d = str(tmp_path / "d" / h36m.FILE_3D), str(tmp_path / "d" / h36m.FILES_2D["gt"])
    kind, named = "gt", path_3d
    positions = np.load(path_3d, allow_pickle=True)["positions_3d"].item()
    if damage == "no_dir":
        directory = named = str(tmp_path / "elsewhere")
    elif damage == "no_cpn":
        kind, named = "cpn", str(tmp_path / "d" / h36m.FILES_2D["cpn"])
    elif damage == "truncated":
        data = open(path_3d, "rb").read()
        open(path_3d, "wb").write(data[: len(data) // 2])
    elif damage in ("nan", "joints", "no_S11"):
        if damage == "nan":
            positions["S9"]["Walking"][3, 5] = np.nan
        elif damage == "joints":
            positions["S1"]["Walking"] = positions["S1"]["Walking"][:, :31]
        else:
            del positions["S11"]
        save(path_3d, positions_3d=positions)
    else:  # a 2D file with 3 cameras per sequence
        positions_2d = np.load(path_2d, allow_pickle=True)["positions_2d"].item()
        positions_2d = {s: {a: views[:3] for a, views in acts.items()} for s, acts in positions_2d.items()}
        save(path_2d, positions_2d=positions_2d, metadata=METADATA)
        named = path_2d
    message = check(named, h36m.load_protocol, directory, kind)
    assert expected in message, message
