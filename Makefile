# wheelfarm — the two commands a newcomer needs:
#   make demo   installs what is missing, builds, and runs the embedded default (this machine + a local index)
#   make test   installs what is missing (and builds a second CPython for the farm tests, once),
#               builds, and runs every test (real sshd, pypiserver, pip, gcc)
SWIFT ?= swift
BIN := .build/debug/wheelfarm

.PHONY: setup build test demo clean

setup:
	bash scripts/setup.sh

build: setup
	$(SWIFT) build

test: build
	bash scripts/second-python.sh
	$(SWIFT) test

demo: build
	bash scripts/demo.sh

clean:
	rm -rf .build dist
