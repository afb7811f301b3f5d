# The two commands of the README: `make demo` (generate gestures from the bundled example speech)
# and `make test` (the whole test suite on Blender 5.0 and 4.2). Both set everything up first.
# Re-running is quick: environments are rebuilt only when their requirements change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VENV42 := .venv-blender42
OUT := out

.PHONY: demo weights test extension clean system-deps

$(VENV)/.installed: requirements/base.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/base.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Blender 4.2 LTS without torch: proves the extension works in a Blender with nothing installed.
$(VENV42)/.installed: requirements/blender42.txt pyproject.toml $(VENV)/.installed
	$(PYTHON) -m venv $(VENV42)
	$(VENV42)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/blender42.txt
	$(VENV42)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# espeak-ng speaks the test audio; installed from the system's packages when missing.
system-deps:
	@command -v espeak-ng >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq espeak-ng >/dev/null; }

# Gestures for the bundled example speech with the bundled model (weights/): the motion as npz, an
# animated .blend (SMPL-X armature, action, sound strip) and a preview a person can look at without
# Blender (a stick-figure strip, front and side, with the wrists' speed; and an animated GIF).
DEMO_STYLE ?= 2_bodhi
demo: $(VENV)/.installed
	mkdir -p $(OUT)
	$(VENV)/bin/gestura generate examples/speech.wav -o $(OUT)/demo.npz --style $(DEMO_STYLE) --seed 0 --overwrite -q
	$(VENV)/bin/gestura generate examples/speech.wav -o $(OUT)/demo.blend --style $(DEMO_STYLE) --seed 0 --overwrite -q
	$(VENV)/bin/python -m gestura.training.synth.preview $(OUT)/demo.npz $(OUT)/demo_preview.png \
		--seconds 12 --per-second 2 --title "make demo: examples/speech.wav, style $(DEMO_STYLE)"
	$(VENV)/bin/python -m gestura.training.synth.preview $(OUT)/demo.npz $(OUT)/demo_preview.gif --seconds 12

# Re-train the bundled model from scratch (synthetic corpora, stage 1, stage 2, stroke planner, FGD encoder, held-out
# evaluation) with training/recipe.sh; about 2.5 hours on 2 CPU cores and 20 GB of disk (weights/MODEL_CARD.md). CORPUS=... RUNS=... to move
# its working folders (default ~/.cache/gestura/).
weights: $(VENV)/.installed system-deps
	training/recipe.sh

test: $(VENV)/.installed $(VENV42)/.installed system-deps
	$(VENV)/bin/python -m pytest -q
	$(VENV42)/bin/python -m pytest -q -m blender

extension: $(VENV)/.installed
	mkdir -p $(OUT)
	$(VENV)/bin/python $(wildcard $(VENV)/lib/python3.11/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py) \
		build --source-dir . --output-dir $(OUT)

clean:
	rm -rf $(VENV) $(VENV42) $(OUT) .pytest_cache
