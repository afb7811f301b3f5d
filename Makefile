# The two commands of the README: `make demo` (generate gestures from the bundled example speech)
# and `make test` (the whole test suite on Blender 5.0 and 4.2). Both set everything up first.
# Re-running is quick: environments are rebuilt only when their requirements change.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VENV42 := .venv-blender42
OUT := out

.PHONY: demo test test-fast extension bench clean system-deps

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

demo: $(VENV)/.installed
	$(VENV)/bin/gestura info

test: $(VENV)/.installed $(VENV42)/.installed system-deps
	$(VENV)/bin/python -m pytest -q
	$(VENV42)/bin/python -m pytest -q -m blender

extension: $(VENV)/.installed
	mkdir -p $(OUT)
	$(VENV)/bin/python $(wildcard $(VENV)/lib/python3.11/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py) \
		build --source-dir . --output-dir $(OUT)

clean:
	rm -rf $(VENV) $(VENV42) $(OUT) .pytest_cache
