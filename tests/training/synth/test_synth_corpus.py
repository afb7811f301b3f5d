"""`gestura synth` writes a small but real corpus (espeak-ng speech + synthesized gestures) in the
BEAT2 layout, and the training data reader takes every clip of it."""
from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

# The Blender 4.2 environment (pytest -m blender) has neither: it only has to collect this module.
soundfile = pytest.importorskip("soundfile")
pytest.importorskip("scipy")

from gestura import cli  # noqa: E402
from gestura.rigs.motion_io import load_npz
from gestura.training import dataset
from gestura.training.synth import corpus, styles, text


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "synth"
    # About a minute of speech: one train, one val and one test clip for each of the 4 speakers.
    assert cli.main(["synth", "--out", str(out), "--hours", "0.015", "--seed", "3", "--jobs", "2"]) == 0
    return out


def test_layout_and_split(small_corpus):
    with open(small_corpus / "train_test_split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"id", "type"}
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert {r["type"] for r in rows} == {"train", "val", "test"}
    by_speaker = {}
    for r in rows:
        speaker = dataset.speaker_of(r["id"])
        by_speaker.setdefault(speaker, set()).add(r["type"])
        name = r["id"].split("_")[1]
        assert styles.get_style(name).speaker_id == speaker
    assert set(by_speaker) == {s.speaker_id for s in styles.STYLES}
    assert all(types == {"train", "val", "test"} for types in by_speaker.values())
    manifest = json.loads((small_corpus / "synth.json").read_text())
    assert manifest["format"] == "gestura-synth" and manifest["seed"] == 3
    assert [s["name"] for s in manifest["styles"]] == list(styles.STYLE_NAMES)


def test_audio_and_motion_files(small_corpus):
    for wav in sorted((small_corpus / "wave16k").glob("*.wav")):
        info = soundfile.info(wav)
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        assert info.frames % 16000 == 0  # whole seconds
        seconds = info.frames // 16000
        assert seconds >= 3
        motion = load_npz(small_corpus / "smplxflame_30" / f"{wav.stem}.npz")
        assert motion.fps == 30.0 and motion.num_frames == seconds * 30
        wave, _ = soundfile.read(wav)
        assert np.abs(wave).max() > 0.2  # real speech, not silence
        with np.load(small_corpus / "smplxflame_30" / f"{wav.stem}.npz", allow_pickle=False) as data:
            assert data["poses"].shape == (seconds * 30, 165)
            assert str(data["model"]) == "smplx2020" and int(data["mocap_frame_rate"]) == 30


def test_held_out_clips_say_only_held_out_sentences(small_corpus):
    with open(small_corpus / "train_test_split.csv", newline="") as handle:
        split = {r["id"]: r["type"] for r in csv.DictReader(handle)}
    for clip_id, kind in split.items():
        lines = (small_corpus / "text" / f"{clip_id}.txt").read_text().splitlines()
        assert lines[0].startswith("# voice ")
        sentences = [line for line in lines[1:] if line]
        assert sentences
        assert all(text.is_held_out(s) == (kind != "train") for s in sentences)


def test_the_dataset_reader_accepts_every_clip(small_corpus):
    with warnings.catch_warnings():
        warnings.simplefilter("error", dataset.DataWarning)
        for split in ("train", "val", "test"):
            data = dataset.Beat2Dataset.load(small_corpus, (split,), cache=False)
            assert len(data.clips) == len(styles.STYLES)
            assert data.styles == [f"{s.speaker_id}_{s.name}" for s in styles.STYLES]
            assert not data.skipped


def test_clips_carry_their_planned_stroke_apexes_and_the_motion_is_the_synthesizers(small_corpus):
    from gestura.training.synth import gestures

    plan = corpus.plan_clips(0.015, 3)[3]  # the corpus's 2_bodhi_0_1_1: 16 s, 18 strokes
    with np.load(small_corpus / "smplxflame_30" / f"{plan.id}.npz", allow_pickle=False) as data:
        poses, apex = data["poses"], data["stroke_apex"]
    assert apex.shape == (poses.shape[0],) and apex.dtype == np.float32 and set(np.unique(apex)) == {0.0, 1.0}
    # The motion is exactly what the synthesizer makes of the clip's speech (unchanged by the
    # apex channel), and the channel marks its planned apexes.
    wave, _, _, _ = corpus.speak_clip(plan)
    motion, units, _ = gestures.synthesize_with_plan(wave, styles.get_style(plan.style), seed=plan.seed)
    np.testing.assert_array_equal(poses, gestures.synthesize(wave, styles.get_style(plan.style), seed=plan.seed)
                                  .poses[: len(poses)].reshape(len(poses), -1))
    planned = np.rint(np.array([a for u in units for a in u.apexes]) * 30).astype(int)
    np.testing.assert_array_equal(np.flatnonzero(apex), np.unique(planned[planned < len(poses)]))
    # The data reader hands them on; a clip without the channel gets them derived from its motion.
    [clip] = [c for c in dataset.Beat2Dataset.load(small_corpus, ("train",), cache=False).clips if c.ref.id == plan.id]
    assert clip.stroke_apex_planned
    np.testing.assert_array_equal(clip.stroke_apex, apex[: clip.num_frames])


def test_clips_without_planned_apexes_get_them_derived_from_the_motion(tmp_path):
    from beat2_fixture import ClipSpec, make_beat2

    from gestura.training import metrics

    root = make_beat2(tmp_path / "b", [ClipSpec("2_scott_0_1_1", "train", 6.0)])
    clip = dataset.Beat2Dataset.load(root, ("train",), cache=False).clips[0]
    assert not clip.stroke_apex_planned
    np.testing.assert_array_equal(clip.stroke_apex, metrics.derive_stroke_apexes(clip.positions))
    assert clip.stroke_apex.sum() > 0  # the fixture's arms swing and stop at its beats


def test_same_seed_same_corpus_whatever_the_jobs(small_corpus, tmp_path):
    again = tmp_path / "again"
    assert cli.main(["synth", "--out", str(again), "--hours", "0.015", "--seed", "3", "--jobs", "1"]) == 0
    assert (again / "train_test_split.csv").read_text() == (small_corpus / "train_test_split.csv").read_text()
    first = sorted((small_corpus / "smplxflame_30").glob("*.npz"))[0]
    a, b = load_npz(first), load_npz(again / "smplxflame_30" / first.name)
    np.testing.assert_array_equal(a.poses, b.poses)


def test_plan_reaches_the_hours_asked_for():
    plans = corpus.plan_clips(2.0, seed=0)
    seconds = sum(p.seconds for p in plans)
    assert abs(seconds - 7200) < 60
    shares = {s: sum(p.seconds for p in plans if p.split == s) / seconds for s in ("train", "val", "test")}
    assert 0.85 < shares["train"] < 0.9 and 0.07 < shares["test"] < 0.09
    train = [p.seconds for p in plans if p.split == "train"]
    assert max(train) <= corpus.CLIP_SECONDS[1]
    # Only the last train clip of each speaker may be shorter (what is left of its share).
    assert sum(s < corpus.CLIP_SECONDS[0] for s in train) <= len(styles.STYLES)


def test_about_half_the_clips_get_silent_gaps_of_1_to_8_seconds():
    plans = corpus.plan_clips(2.0, seed=0)
    gaps = [corpus.plan_gaps(p) for p in plans]
    assert 0.35 < np.mean([bool(g) for g in gaps]) < 0.65
    assert all(len(g) <= 2 and all(1.0 <= x <= 8.0 for x in g) for g in gaps)
    assert all(p.seconds - sum(g) >= 8.0 for p, g in zip(plans, gaps))


def test_a_clip_with_a_gap_is_silent_there_and_the_body_rests():
    """The gaps lie between sentences with their planned lengths; the audio is near-silent there,
    and the synthesizer rests: wrists under 0.15x their speed in speech, jaw closed, no stroke."""
    from gestura.rigs.skeleton import JOINT_INDEX
    from gestura.training import metrics
    from gestura.training.synth import gestures

    plan = next(p for p in (corpus.ClipPlan("3_carmen_0_1_1", "train", "carmen", s, 16.0) for s in range(100))
                if len(corpus.plan_gaps(p)) == 1 and corpus.plan_gaps(p)[0] > 4.0)
    wave, lines, _, gaps = corpus.speak_clip(plan)
    assert len(lines) >= 2 and len(gaps) == 1
    (start, end), = gaps
    assert end - start == pytest.approx(corpus.plan_gaps(plan)[0], abs=1 / 16000)
    a, b = int(start * 16000), int(end * 16000)
    assert np.abs(wave[a:b]).max() < 3e-3
    assert np.abs(wave[a - 16000: a]).max() > 0.1 and np.abs(wave[b: b + 16000]).max() > 0.1  # speech around it
    motion, units, _ = gestures.synthesize_with_plan(wave, styles.get_style(plan.style), seed=plan.seed)
    positions = dataset.joint_positions(motion)
    frames = (int(np.ceil(start * 30)), int(end * 30))
    assert metrics.rest_in_silence(positions, frames) < 0.15
    inner = slice(frames[0] + 30, frames[1] - 30)
    assert motion.poses[inner, JOINT_INDEX["jaw"], 0].max() < 0.03  # the jaw closed
    assert not [x for u in units for x in u.apexes if start < x < end]


def test_bad_requests_change_nothing(tmp_path, capsys):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert cli.main(["synth", "--out", str(occupied), "--hours", "0.01"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    assert cli.main(["synth", "--out", str(tmp_path / "x"), "--hours", "0"]) == 2
    assert "--hours must be positive" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_existing_corpus_needs_overwrite(small_corpus, capsys):
    before = sorted(p.name for p in (small_corpus / "wave16k").iterdir())
    assert cli.main(["synth", "--out", str(small_corpus), "--hours", "0.01"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in (small_corpus / "wave16k").iterdir()) == before


def test_an_output_folder_that_cannot_be_created_is_one_line_and_status_2(tmp_path, capsys):
    blocker = tmp_path / "a.wav"
    blocker.write_bytes(b"a file where a folder would go")
    for out in ("/proc/gestura-corpus", str(blocker / "corpus")):
        assert cli.main(["synth", "--out", out, "--hours", "0.001"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"gestura synth: error: cannot create the corpus folder {out} ("), line


def test_eval_on_a_synth_corpus_reports_what_another_draw_of_the_synthesizer_reaches(small_corpus, tmp_path, capsys):
    pytest.importorskip("torch")
    from gestura.inference.pipeline import resolve_checkpoint
    from gestura.training import metrics
    from gestura.training.dataset import joint_positions
    from gestura.training.synth import gestures

    report = tmp_path / "eval.json"
    assert cli.main(["eval", "--data", str(small_corpus), "--checkpoint", str(resolve_checkpoint(None).path),
                     "--json", str(report), "--no-progress", "--threads", "1", "--rest-seeds", "0",
                     "--seed", "4", "--takes", "2"]) == 0
    table = capsys.readouterr().out
    result = json.loads(report.read_text())
    # The synthesizer with other seeds (10000 + seed + clip index) on the test clips' speech, scored
    # at the data's own planned apexes: strokes chosen by another draw of the same rules.
    clips = dataset.Beat2Dataset.load(small_corpus, ("test",), None, keep_wave=True).clips
    again = [joint_positions(gestures.synthesize(c.wave, styles.get_style(c.ref.style.split("_")[1]), seed=10_004 + i))
             for i, c in enumerate(clips)]
    apexes = [np.flatnonzero(c.stroke_apex > 0.5) for c in clips]
    draw = result["another_draw"]
    assert draw["apex_ratio"] == pytest.approx(metrics.apex_ratio(again, apexes), rel=1e-6)
    assert draw["corpus_correlation"] == result["ground_truth"]["corpus_correlation"]
    # Not the data itself: its own draw strokes on every one of its apexes.
    assert draw["apex_ratio"] != pytest.approx(result["ground_truth"]["apex_ratio"], rel=1e-3)
    assert f"the synthesizer with other seeds on the same audio: apex ratio {draw['apex_ratio']:.2f}" in table
    # Its speaker figures over as many draws as takes (draw k: seed 10000 + seed + 1000 k + clip index),
    # pooled as the takes are: over the data's, hand height above the rest pose.
    from gestura.training import evaluate

    again_2 = [joint_positions(gestures.synthesize(c.wave, styles.get_style(c.ref.style.split("_")[1]), seed=11_004 + i))
               for i, c in enumerate(clips)]
    truth = evaluate.style_stats([c.positions for c in clips], [c.ref.style for c in clips])
    drawn = evaluate.style_stats(again + again_2, [c.ref.style for c in clips] * 2)
    rest = result["rest_hand_height"]
    for style, row in draw["styles"].items():
        assert row["ratio"]["wrist_speed"] == pytest.approx(drawn[style]["wrist_speed"] / truth[style]["wrist_speed"])
        assert row["ratio"]["hand_height"] == pytest.approx(
            (drawn[style]["hand_height"] - rest) / (truth[style]["hand_height"] - rest))
    inside = draw["styles_within_tolerance"]
    ratios = [v for row in draw["styles"].values() for v in row["ratio"].values() if v is not None]
    assert inside["of"] == len(ratios) and inside["within"] == sum(abs(v - 1) <= 0.25 for v in ratios)
    assert (f"the synthesizer redrawn on the same audio (2 draws per clip, pooled as the takes are): "
            f"{inside['within']} of {inside['of']} within 25 %") in table
