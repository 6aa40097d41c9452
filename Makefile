# factory: `make images` (the main job, on the example lock) and `make test`.
# Both set up everything they need on a fresh Debian machine (as root): apt packages,
# the .venv with the factory installed, QEMU binfmt for aarch64.
SHELL := /bin/bash
.DEFAULT_GOAL := images

PYTHON ?= python3
VENV := .venv
FACTORY := $(VENV)/bin/factory
APT_PACKAGES := qemu-user-static mmdebstrap docker-registry skopeo chromium
# The host's pip configuration may add local find-links / extra indexes; the venv must
# come from the index only, hash-checked against constraints/host.txt.
PIP_ENV := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null
CA_BUNDLE := /etc/ssl/certs/ca-certificates.crt
PIP_CERT_ARG := $(if $(wildcard $(CA_BUNDLE)),--cert $(CA_BUNDLE),)
PYTEST_ARGS ?=

.PHONY: images test test-unit lint deps venv binfmt docker-check lock toolchain-lock build-lock exporters-lock host-lock fuzz fuzz-lock registry-stop bench clean

$(VENV)/.installed: constraints/host.txt pyproject.toml
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { apt-get update -q && apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PIP_ENV) $(VENV)/bin/python -m pip install -q $(PIP_CERT_ARG) --require-hashes -r constraints/host.txt
	$(PIP_ENV) $(VENV)/bin/python -m pip install -q $(PIP_CERT_ARG) --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

deps:
	@missing=""; \
	command -v mmdebstrap >/dev/null || missing="$$missing mmdebstrap"; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v skopeo >/dev/null || missing="$$missing skopeo"; \
	[ -e /usr/bin/qemu-aarch64-static ] || missing="$$missing qemu-user-static"; \
	command -v dpkg-deb >/dev/null || missing="$$missing dpkg"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

docker-check:
	@docker info >/dev/null 2>&1 || { echo "make: the Docker engine is not running: start it (\`dockerd &\` as root) and check \`docker info\`" >&2; exit 1; }

# Registers forky's QEMU 11.1 for aarch64 (3-16x faster than bookworm's 7.2); a no-op when it already is.
binfmt: venv deps
	@if [ "$$(uname -m)" = x86_64 ]; then $(FACTORY) binfmt; fi

images: venv deps docker-check binfmt
	$(FACTORY) all

# --durations: the slowest tests, to keep `make test` within its hour on a 2-core machine.
test: lint deps docker-check binfmt
	$(VENV)/bin/pytest --durations=20 $(PYTEST_ARGS)

# The unit tests need no engine: DOCKER_HOST points at nothing, so one that reaches for
# Docker fails instead of passing by luck on a machine that has one.
test-unit: lint
	DOCKER_HOST=unix:///nonexistent/docker.sock $(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

# ruff and mypy (strict for factory/), configured in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check factory tests bench
	$(VENV)/bin/mypy

lock: venv docker-check
	$(FACTORY) lock

# The toolchain and build-backend locks ship in the package (factory/resources/constraints).
toolchain-lock: venv docker-check
	$(FACTORY) lock --toolchain

build-lock: venv docker-check
	$(FACTORY) lock --in factory/resources/constraints/build.in --out factory/resources/constraints/build.txt

# poetry and pdm, which export poetry.lock and pdm.lock (factory/locks/export.py), run on the host.
exporters-lock: venv
	cd factory/resources/constraints && $(PIP_ENV) CUSTOM_COMPILE_COMMAND="make exporters-lock" ../../../$(VENV)/bin/python -m piptools compile -q --no-config \
	  --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links --strip-extras -o exporters.txt exporters.in

host-lock: venv
	cd constraints && $(PIP_ENV) CUSTOM_COMPILE_COMMAND="make host-lock" ../$(VENV)/bin/python -m piptools compile -q --no-config \
	  --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links --strip-extras -o host.txt host.in

# bench/run.py: the example lock side by side with uv, pip and cibuildwheel; bench/reallocks.py:
# the sdist cells of two real production locks (bench/locks), built for the four targets.
bench: venv deps docker-check binfmt
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/reallocks.py

registry-stop: venv
	$(FACTORY) registry stop

clean:
	rm -rf wheelhouse wheelhouse.failed images.lock .pytest_cache

# Coverage-guided fuzzing (atheris) of every reader of outside input, FUZZ_SECONDS each
# (default 600), FUZZ_JOBS at a time (default: one per core). Each target's libFuzzer log is
# .cache/fuzz/TARGET.log; its last line ("Done N runs in T second(s)") is printed. The
# property is tests/support/fuzzing.py's; a crash fails the run and leaves crash-* there.
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= $(shell nproc)
FUZZ_TARGETS ?= requirements pylock project-lock config environment manifest readiness install-lock images-lock bases-lock builders-lock releases index-page sdist
FUZZ_MAIN := tests/fuzz/atheris_main.py
FUZZ_DIR := .cache/fuzz
fuzz: venv
	$(PIP_ENV) $(VENV)/bin/python -m pip install -q $(PIP_CERT_ARG) --require-hashes --no-deps -r constraints/fuzz.txt
	@mkdir -p $(FUZZ_DIR)
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh -c \
	  'cd $(FUZZ_DIR) && ../../$(VENV)/bin/python ../../$(FUZZ_MAIN) {} $(FUZZ_SECONDS) > {}.log 2>&1; rc=$$?; \
	   echo "{}: $$(grep -E "^Done" {}.log || echo "CRASH (rc $$rc), see $(FUZZ_DIR)/{}.log")"; exit $$rc'

fuzz-lock: venv
	cd constraints && $(PIP_ENV) CUSTOM_COMPILE_COMMAND="make fuzz-lock" ../$(VENV)/bin/python -m piptools compile -q --no-config \
	  --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links --strip-extras -o fuzz.txt fuzz.in
