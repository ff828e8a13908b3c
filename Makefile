# otpgate — see `make help`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

Q = $(if $V,,@)
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -ldflags '-X main.Version=$(VERSION)'
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
test: deps build ## unit tests with -race, then the container integration suites
	$(Q)$(GO) test -race -count=1 ./...
	$(Q)OTPGATE_BIN=$(BIN) $(GO) test -count=1 -tags integration -timeout 20m ./integration/...

.PHONY: bench
bench: ## Go benchmarks
	$(Q)$(GO) test -run '^$$' -bench . -benchmem ./...

##### demo

.PHONY: demo
demo: build ## (as root) otpgated, OpenSSH+pam_otpgate and otpgate-sshd in a throwaway container; Ctrl-C ends it
	$(Q)$(BIN)/otpgate-demo -bin $(BIN)

##### lint

.PHONY: lint
lint: deps ## gofmt and go vet (after deps: vet compiles the cgo PAM module)
	$(Q)out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(Q)$(GO) vet ./...
	$(Q)$(GO) vet -tags integration ./integration/...

##### install

PREFIX ?= /usr/local
.PHONY: install
install: build ## install binaries (PREFIX=/usr/local)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/otpgated $(DESTDIR)$(PREFIX)/sbin/otpgated
	install -m 0755 $(BIN)/otpgate $(DESTDIR)$(PREFIX)/bin/otpgate
	install -m 0755 $(BIN)/otpgate-sshd $(DESTDIR)$(PREFIX)/sbin/otpgate-sshd
	$(MAKE) -C pam install BIN=$(BIN) DESTDIR=$(DESTDIR)

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN)
