# wheelfarm — the two commands a newcomer needs:
#   make demo   installs what is missing, checks the toolchain, builds the release binary and runs the
#               embedded default (this machine + a local index)
#   make test   installs what is missing (and builds a second CPython for the farm tests, once), checks
#               the toolchain, builds, and runs every test (real sshd, pypiserver, pip, gcc) against the
#               release binary
# Others: make doctor (the toolchain self-check), make fresh-root-check (setup.sh on a new Debian 12
# root), make install (the release binary and its data folders under PREFIX).
SWIFT ?= swift
PREFIX ?= /usr/local
RELEASE_BIN := $(CURDIR)/.build/release/wheelfarm

.PHONY: setup doctor build release-binary test demo install fresh-root-check clean

setup:
	bash scripts/setup.sh

doctor: setup
	bash scripts/doctor.sh

build: doctor
	$(SWIFT) build

release-binary: doctor
	$(SWIFT) build -c release --product wheelfarm

# The tests that run the built binary run the release build (WHEELFARM_BINARY), the one users run.
test: setup
	bash scripts/second-python.sh
	bash scripts/doctor.sh --tests
	$(SWIFT) build -c release --product wheelfarm
	WHEELFARM_BINARY=$(RELEASE_BIN) $(SWIFT) test

demo: release-binary
	WHEELFARM_BINARY=$(RELEASE_BIN) bash scripts/demo.sh

install: release-binary
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/wheelfarm
	install -m 755 $(RELEASE_BIN) $(DESTDIR)$(PREFIX)/bin/wheelfarm
	cp -R agents recipes inventory examples $(DESTDIR)$(PREFIX)/share/wheelfarm/

fresh-root-check:
	bash scripts/fresh-root-check.sh

clean:
	rm -rf .build dist
