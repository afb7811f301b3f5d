"""``bench/fetch_real_speech_more.py`` offline: its manifest, the ``ar`` reader, the cut and join
arithmetic and the wav it writes. No network, no sox."""
from __future__ import annotations

import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tarfile
from array import array
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "fetch_real_speech_more.py"
DOC = REPO / "bench" / "real_speech_more.md"


def load_script():
    spec = importlib.util.spec_from_file_location("fetch_real_speech_more", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fetch = load_script()


def ar_bytes(members: dict[str, bytes], name_suffix: str = "") -> bytes:
    """An ``ar`` archive as dpkg-deb writes it: 60-byte headers, data padded to an even length."""
    out = bytearray(b"!<arch>\n")
    for name, data in members.items():
        header = (f"{name + name_suffix:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode("ascii")
                  + b"`\n")
        assert len(header) == 60
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def tar_bytes(files: dict[str, bytes], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def deb_bytes(files: dict[str, bytes]) -> bytes:
    return ar_bytes({"debian-binary": b"2.0\n", "control.tar.xz": tar_bytes({"./control": b"x"}, "w:xz"),
                     "data.tar.xz": tar_bytes(files, "w:xz")})


# --- the manifest ------------------------------------------------------------------------------

def test_manifest_has_the_41_clips_of_the_table_with_unique_names():
    names = [clip.name for clip in fetch.CLIPS]
    table = re.findall(r"^\| (\S+\.wav) \|", DOC.read_text(encoding="utf-8"), flags=re.M)
    assert len(names) == 41
    assert len(set(names)) == 41
    assert names == table


def test_manifest_archives_and_hashes_are_well_formed():
    hexdigest = re.compile(r"[0-9a-f]{64}")
    assert {clip.archive for clip in fetch.CLIPS} == set(fetch.ARCHIVES)
    for key, archive in fetch.ARCHIVES.items():
        assert key == archive.project
        assert hexdigest.fullmatch(archive.sha256)
        if archive.is_deb:
            assert archive.pool.startswith("pool/main/") and archive.pool.endswith("/" + archive.filename)
        else:
            assert archive.filename.endswith((".tar.gz", ".zip")) and archive.version in archive.filename
    for clip in fetch.CLIPS:
        assert hexdigest.fullmatch(clip.sha256), clip.name
    assert len({clip.sha256 for clip in fetch.CLIPS}) == 41
    assert sum(clip.dithered for clip in fetch.CLIPS) == 25


def test_parts_are_consecutive_cuts_from_the_start_and_joins_have_several_members():
    parts: dict[str, list] = {}
    for clip in fetch.CLIPS:
        if clip.span is not None:
            assert len(clip.members) == 1 and clip.gap == 0
            assert re.fullmatch(r".+_part\d+\.wav", clip.name)
            parts.setdefault(clip.members[0], []).append(clip)
        elif clip.gap:
            assert len(clip.members) == 3 and clip.gap == fetch.GAP == 4800
        else:
            assert len(clip.members) == 1
    assert len(parts) == 6
    for clips in parts.values():
        assert [clip.name for clip in clips] == [clips[0].name.rsplit("_part", 1)[0] + f"_part{i}.wav"
                                                 for i in range(1, len(clips) + 1)]
        assert clips[0].span[0] == 0
        for before, after in zip(clips, clips[1:]):
            assert before.span[1] == after.span[0]
        assert all(start < end for start, end in (clip.span for clip in clips))


# --- archives -----------------------------------------------------------------------------------

def test_ar_reader_finds_the_data_member_after_odd_sized_ones():
    archive = ar_bytes({"debian-binary": b"2.0\n", "control.tar.gz": b"abc", "data.tar.xz": b"payload"})
    assert fetch.read_ar_member(io.BytesIO(archive), "data.tar") == b"payload"
    assert fetch.read_ar_member(io.BytesIO(archive), "control") == b"abc"


def test_ar_reader_takes_gnu_names_and_rejects_what_is_not_ar():
    archive = ar_bytes({"debian-binary": b"2.0\n", "data.tar": b"x"}, name_suffix="/")
    assert fetch.read_ar_member(io.BytesIO(archive), "data.tar") == b"x"
    with pytest.raises(fetch.ExtractError):
        fetch.read_ar_member(io.BytesIO(b"PK\x03\x04 not ar"), "data.tar")
    with pytest.raises(fetch.ExtractError):
        fetch.read_ar_member(io.BytesIO(ar_bytes({"debian-binary": b"2.0\n"})), "data.tar")


@pytest.mark.skipif(shutil.which("ar") is None, reason="binutils ar not installed")
def test_ar_reader_reads_what_binutils_ar_writes(tmp_path):
    for name, data in {"debian-binary": b"2.0\n", "data.tar.xz": b"odd"}.items():
        (tmp_path / name).write_bytes(data)
    subprocess.run(["ar", "rc", "pkg.deb", "debian-binary", "data.tar.xz"], cwd=tmp_path, check=True)
    with open(tmp_path / "pkg.deb", "rb") as f:
        assert fetch.read_ar_member(f, "data.tar") == b"odd"


def test_read_members_from_a_deb_and_an_sdist(tmp_path):
    deb = tmp_path / "p_1_all.deb"
    deb.write_bytes(deb_bytes({"./usr/share/a.wav": b"A", "./usr/share/b.gsm": b"B", "./usr/x": b"X"}))
    deb_archive = fetch.Archive("p", "1", deb.name, "0" * 64, pool="pool/main/p/" + deb.name)
    assert fetch.read_members(deb_archive, deb, {"usr/share/a.wav", "usr/share/b.gsm"}) == {
        "usr/share/a.wav": b"A", "usr/share/b.gsm": b"B"}
    sdist = tmp_path / "p-1.tar.gz"
    sdist.write_bytes(tar_bytes({"p-1/tests/a.wav": b"A", "p-1/setup.py": b""}, "w:gz"))
    sdist_archive = fetch.Archive("p", "1", sdist.name, "0" * 64)
    assert fetch.read_members(sdist_archive, sdist, {"p-1/tests/a.wav"}) == {"p-1/tests/a.wav": b"A"}
    with pytest.raises(fetch.ExtractError, match="has no p-1/missing.wav"):
        fetch.read_members(sdist_archive, sdist, {"p-1/missing.wav"})


# --- audio ----------------------------------------------------------------------------------------

def test_toward_zero_is_the_first_builds_float_round_trip():
    every = np.arange(-32768, 32768, dtype=np.int16)
    first_build = (np.clip(every.astype(np.float32) / 32768, -1, 1) * 32767).astype(np.int16)
    assert fetch.toward_zero(array("h", every.tobytes())).tobytes() == first_build.tobytes()


def test_cuts_put_back_together_give_the_whole_and_joins_put_the_gap_between():
    whole = array("h", range(-50, 50))
    spans = [(0, 37), (37, 80), (80, 100)]
    cuts = [fetch.assemble(fetch.Clip(f"x_part{i}.wav", "a", ("m",), "0" * 64, span=span), {"m": whole})
            for i, span in enumerate(spans, 1)]
    assert [len(cut) for cut in cuts] == [37, 43, 20]
    assert sum(cuts, array("h")) == whole
    parts = {"a": array("h", [1, 2]), "b": array("h", [3]), "c": array("h", [4, 5])}
    joined = fetch.assemble(fetch.Clip("j.wav", "a", ("a", "b", "c"), "0" * 64, gap=3), parts)
    assert list(joined) == [1, 2, 0, 0, 0, 3, 0, 0, 0, 4, 5]


def test_wav_is_16_khz_mono_pcm16_with_the_header_soundfile_writes():
    samples = array("h", [0, 1, -1, 32767, -32768, 1234])
    data = fetch.wav_bytes(samples)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[36:40] == b"data"
    assert len(data) == 44 + 2 * len(samples)
    assert np.frombuffer(data[44:], "<i2").tolist() == list(samples)
    soundfile = pytest.importorskip("soundfile")
    buffer = io.BytesIO()
    soundfile.write(buffer, np.array(samples, dtype=np.int16), 16000, subtype="PCM_16", format="WAV")
    assert buffer.getvalue() == data


# --- command line ---------------------------------------------------------------------------------

def test_exit_2_on_bad_usage_and_without_sox(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        fetch.main([])
    assert exc.value.code == 2
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    assert fetch.main([str(tmp_path / "out")]) == 2
    assert "apt-get install sox" in capsys.readouterr().out
