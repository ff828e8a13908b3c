# otpgate — see `make help`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

Q = $(if $V,,@)
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -ldflags '-X github.com/otpgate/otpgate/internal/version.Version=$(VERSION)'
# CGO is set explicitly so that a missing gcc never silently changes what is
# built: with cgo, os/user resolves users and groups through NSS (LDAP, sssd),
# as the PAM stack does; without it only /etc/passwd and /etc/group are read.
GOBUILD := CGO_ENABLED=1 $(GO) build -trimpath $(LDFLAGS)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n", $$1, $$2}'

##### build

.PHONY: build build-go build-pam
build: build-go build-pam ## build every artifact into bin/

build-go:
	$(Q)mkdir -p $(BIN)
	$(Q)$(GOBUILD) -o $(BIN)/ ./cmd/...

build-pam: ## the PAM module (C loader + Go library, cgo)
	$(Q)mkdir -p $(BIN)
	$(Q)$(MAKE) -s -C pam BIN=$(BIN) GO=$(GO) VERSION=$(VERSION)

##### test

.PHONY: deps
deps: ## install (as root) or check the test prerequisites
	$(Q)./scripts/install-deps.sh

.PHONY: test
test: deps build ## (as root) unit tests with -race, then the container integration suites
	$(Q)if [ "$$(id -u)" != 0 ]; then echo "make test: needs root (namespace containers, root-owned store files); run it with sudo" >&2; exit 1; fi
	$(Q)$(GO) test -race -count=1 -tags root ./...
	$(Q)$(MAKE) --no-print-directory test-nonroot
	$(Q)OTPGATE_BIN=$(BIN) $(GO) test -count=1 -tags integration -timeout 20m ./integration/...

# test-nonroot runs `go test ./...` as a newcomer would, as the user nobody,
# on a copy of the tree with its own Go caches: the unit tests that need no
# root must pass without it (the others are behind the root build tag).
.PHONY: test-nonroot
test-nonroot: ## (as root) go test ./... as the user nobody, on a copy of the tree
	$(Q)tmp=$$(mktemp -d /tmp/otpgate-nonroot.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	  mkdir "$$tmp/src" && { git ls-files -z 2>/dev/null || find . \( -path ./.tools -o -path ./bin -o -path ./.git \) -prune -o -type f -print0; } | xargs -0 cp --parents -t "$$tmp/src" && \
	  chown -R nobody:nogroup "$$tmp" && \
	  runuser -u nobody -- env HOME="$$tmp" GOCACHE="$$tmp/cache" GOMODCACHE="$$tmp/mod" PATH="$$PATH" \
	    sh -c 'cd "$$1/src" && $(GO) test -count=1 ./...' sh "$$tmp"

.PHONY: bench
bench: ## Go benchmarks
	$(Q)$(GO) test -tags root -run '^$$' -bench . -benchmem ./...

##### demo

.PHONY: demo
demo: build ## (as root) otpgated, OpenSSH+pam_otpgate and otpgate-sshd in a throwaway container; Ctrl-C ends it
	$(Q)$(BIN)/otpgate-demo -bin $(BIN)

##### lint

# golangci-lint is pinned and built from source by the Go toolchain into a
# directory named after its version, so changing the version rebuilds it and
# nothing outside the tree is touched. Its configuration is .golangci.yml.
# It runs with the root tag (root-only tests); over pam/ with go_pam_module
# as well, the tag pam/Makefile builds the module's cgo exports with (it
# changes the PAM library's API, so it cannot be set for the other
# packages); and with the integration tag over integration/.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(CURDIR)/.tools/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

$(GOLANGCI_LINT):
	$(Q)echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(@D) (a few minutes the first time)"
	$(Q)GOBIN=$(@D) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: lint
lint: deps $(GOLANGCI_LINT) ## go mod verify, gofmt, go vet, no test code in shipped programs, golangci-lint
	$(Q)$(GO) mod verify
	$(Q)out=$$($(GO) mod tidy -diff) || { echo "go.mod/go.sum are not tidy: run go mod tidy"; echo "$$out"; exit 1; }
	$(Q)out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(Q)out=$$(git grep -nIE '[Ii]ssue [0-9]+|[Rr]eason [0-9]+ (above|below)|shared[/]notes|(^|[ (])T[0-9]{2}([^0-9]|$$)' -- . ':!docs/bench' ':!Makefile' | grep -v 'HOTP/T[0-9]' | grep -v 'parts\[1\] == "T[0-9]' ); \
	  if [ -n "$$out" ]; then echo "history in the code (say what the code does, not which issue or catalogue entry it came from):"; echo "$$out"; exit 1; fi
	$(Q)$(GO) vet -tags root ./...
	$(Q)$(GO) vet -tags integration ./integration/...
	$(Q)out=$$($(GO) list -deps ./cmd/... ./pam/module | grep -E '^github.com/otpgate/otpgate/(integration|internal/testutil)(/|$$)'; $(GO) list -deps ./cmd/otpgate-demo | grep -x testing); \
	  if [ -n "$$out" ]; then echo "a shipped program links test code (product code imports internal/container, never integration/...):"; echo "$$out"; exit 1; fi
	$(Q)$(GOLANGCI_LINT) config verify
	$(Q)$(GOLANGCI_LINT) run --build-tags root $$($(GO) list -tags root -f '{{.Dir}}' ./... | grep -v '/pam/module$$')
	$(Q)$(GOLANGCI_LINT) run --build-tags root,go_pam_module ./pam/...
	$(Q)$(GOLANGCI_LINT) run --build-tags integration ./integration/...

##### install

# Where install puts things. DESTDIR stages a tree (packaging); PREFIX is
# the installed prefix. The PAM module goes to the system PAM directory and
# the Go library to /usr/lib/otpgate whatever PREFIX is (pam/Makefile; the
# loader has that path compiled in); the configuration to /etc/otpgate.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
GOLIBDIR := /usr/lib/otpgate
# The system PAM module directory, found as pam/Makefile finds it and passed
# down, so that install and uninstall agree.
PAM_LIBDIR := $(shell pkg-config --variable=libdir pam 2>/dev/null)
ifeq ($(PAM_LIBDIR),)
PAM_LIBDIR := /lib/$(shell $(CC) -print-multiarch 2>/dev/null)
endif
PAMDIR ?= $(PAM_LIBDIR)/security
UNITS := otpgated otpgate-sshd
MAN1 := otpgate.1
MAN5 := otpgate.toml.5
MAN8 := otpgated.8 otpgate-sshd.8 pam_otpgate.8

.PHONY: install uninstall
install: build ## install binaries, PAM module, config (if absent), systemd units, man pages (PREFIX=/usr/local, DESTDIR)
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/otpgate $(DESTDIR)$(SYSCONFDIR)/pam.d \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BIN)/otpgated $(DESTDIR)$(SBINDIR)/otpgated
	install -m 0755 $(BIN)/otpgate $(DESTDIR)$(BINDIR)/otpgate
	install -m 0755 $(BIN)/otpgate-sshd $(DESTDIR)$(SBINDIR)/otpgate-sshd
	$(MAKE) -C pam install BIN=$(BIN) DESTDIR=$(DESTDIR) PAMDIR=$(PAMDIR) GO=$(GO) VERSION=$(VERSION)
	$(Q)if [ -e $(DESTDIR)$(SYSCONFDIR)/otpgate/config.toml ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/otpgate/config.toml (compare it with config.example.toml)"; \
	else \
		echo install -m 0644 config.example.toml $(DESTDIR)$(SYSCONFDIR)/otpgate/config.toml; \
		install -m 0644 config.example.toml $(DESTDIR)$(SYSCONFDIR)/otpgate/config.toml; \
	fi
	$(Q)if [ -e $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd ] && ! cmp -s packaging/pam.d/otpgate-sshd $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd (compare it with packaging/pam.d/otpgate-sshd)"; \
	else \
		echo install -m 0644 packaging/pam.d/otpgate-sshd $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd; \
		install -m 0644 packaging/pam.d/otpgate-sshd $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd; \
	fi
	$(Q)for u in $(UNITS); do \
		echo "install packaging/systemd/$$u.service $(DESTDIR)$(UNITDIR)/$$u.service (ExecStart in $(SBINDIR))"; \
		sed 's|/usr/sbin/|$(SBINDIR)/|g' packaging/systemd/$$u.service >$(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$$u.service.tmp $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; \
	done
	install -m 0644 $(addprefix packaging/man/,$(MAN1)) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(addprefix packaging/man/,$(MAN5)) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(addprefix packaging/man/,$(MAN8)) $(DESTDIR)$(MANDIR)/man8/

# uninstall refuses while /etc/pam.d uses the module: removing it would make
# every "auth required pam_otpgate.so" stack deny all logins.
uninstall: ## remove what install installed; keeps /etc/otpgate and /var/lib/otpgate (secrets)
	$(Q)if used=$$(grep -lE '^[^#]*pam_otpgate' $(DESTDIR)/etc/pam.d/* 2>/dev/null); then \
		echo "uninstall: $$used still use pam_otpgate.so: remove those lines first (with a root shell open), or logins will fail" >&2; exit 1; \
	fi
	rm -f $(DESTDIR)$(SBINDIR)/otpgated $(DESTDIR)$(BINDIR)/otpgate $(DESTDIR)$(SBINDIR)/otpgate-sshd
	rm -f $(DESTDIR)$(PAMDIR)/pam_otpgate.so $(DESTDIR)$(GOLIBDIR)/libpam_otpgate_go.so
	rm -f $(foreach u,$(UNITS),$(DESTDIR)$(UNITDIR)/$(u).service)
	$(Q)if cmp -s packaging/pam.d/otpgate-sshd $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd; then rm -f $(DESTDIR)$(SYSCONFDIR)/pam.d/otpgate-sshd; fi
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(MAN1)) $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(MAN5)) $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(MAN8))
	-$(Q)rmdir $(DESTDIR)$(GOLIBDIR) 2>/dev/null
	$(Q)echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/otpgate (configuration, host keys) and /var/lib/otpgate (secrets); remove them yourself if they are no longer needed"

##### package

DEB_ARCH = $(shell dpkg --print-architecture)
# A Debian version from the last commit: 0~YYYYMMDD.HASH (sorts by date).
DEB_VERSION ?= 0~$(shell git log -1 --format=%cd.%h --date=format:%Y%m%d 2>/dev/null || echo 0)
DEB_ROOT = $(BIN)/deb
DEB_DOCS := README.md config.example.toml $(wildcard docs/*.md)

.PHONY: deb
deb: build ## Debian package bin/otpgate_VERSION_ARCH.deb (dpkg-deb; changes no PAM config when installed)
	$(Q)rm -rf $(DEB_ROOT)
	$(Q)$(MAKE) -s install DESTDIR=$(DEB_ROOT) PREFIX=/usr UNITDIR=/lib/systemd/system >/dev/null
	$(Q)gzip -9n $(DEB_ROOT)/usr/share/man/man*/*
	$(Q)install -d -m 0755 $(DEB_ROOT)/usr/share/doc/otpgate $(DEB_ROOT)/DEBIAN
	$(Q)install -m 0644 packaging/debian/copyright $(DEB_ROOT)/usr/share/doc/otpgate/copyright
	$(Q)install -m 0644 $(DEB_DOCS) $(DEB_ROOT)/usr/share/doc/otpgate/
	$(Q)install -m 0644 packaging/debian/conffiles $(DEB_ROOT)/DEBIAN/conffiles
	$(Q)install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_ROOT)/DEBIAN/
	$(Q)sed -e 's/@VERSION@/$(DEB_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
		-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)/" packaging/debian/control >$(DEB_ROOT)/DEBIAN/control
	$(Q)dpkg-deb --root-owner-group -Zgzip --build $(DEB_ROOT) $(BIN)/otpgate_$(DEB_VERSION)_$(DEB_ARCH).deb
	$(Q)rm -rf $(DEB_ROOT)

.PHONY: clean
clean: ## remove build outputs (the pinned tools in .tools stay)
	rm -rf $(BIN)

##### comparison benchmarks (not part of `make test`)

.PHONY: bench-compare
bench-compare: deps build ## otpgate vs google-authenticator and pam_oath through real PAM (minutes; writes docs/bench/comparison.*)
	$(Q)OTPGATE_BIN=$(BIN) $(GO) test -count=1 -tags benchcompare -run TestCompare -timeout 60m -v ./bench/compare/

##### reliability and fuzzing (not part of `make test`, which runs the fast variants and the seed corpora)

FUZZTIME ?= 30s
SOAK_FUZZTIME ?= 5m
SOAK_TIMEOUT ?= 90m

.PHONY: fuzz
fuzz: ## go mod verify, then every Fuzz target in the tree for FUZZTIME (default 30s) each
	$(Q)$(GO) mod verify
	$(Q)set -e; for file in $$(find . -name '*_test.go' -not -path './bin/*' | sort | xargs grep -l '^func Fuzz'); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "fuzz: $$(dirname $$file) $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$(dirname $$file); \
		done; \
	done

.PHONY: test-soak
test-soak: deps build ## go mod verify, the long reliability variants (1000 kills, 15000 connections), then fuzz for SOAK_FUZZTIME each
	$(Q)$(GO) mod verify
	$(Q)OTPGATE_SOAK=1 OTPGATE_BIN=$(BIN) $(GO) test -count=1 -tags integration -timeout $(SOAK_TIMEOUT) -run '^TestReliability' -v ./integration/
	$(Q)$(MAKE) --no-print-directory fuzz FUZZTIME=$(SOAK_FUZZTIME)
