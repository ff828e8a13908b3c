#!/bin/sh
# Installs what `make test` needs on a Debian 12 machine. Runs as root (CI
# does); as another user it only checks, and fails naming what is missing.
set -eu

PKGS="libpam0g-dev postgresql openssh-server openssh-client sudo pamtester oathtool zbar-tools tmux strace util-linux iproute2 passwd libpam-wrapper make pkg-config groff-base man-db systemd dpkg tar libpam-google-authenticator libpam-oath gcc ansible-core rsync git putty-tools dropbear-bin libnss-extrausers python3-paramiko python3-asyncssh"
TOOLS="oathtool /usr/lib/postgresql/15/bin/initdb zbarimg pamtester sudo /usr/sbin/sshd ssh ssh-keygen tmux unshare setpriv useradd strace prlimit make pkg-config groff man systemd-analyze dpkg-deb tar gcc google-authenticator ansible rsync git plink pscp puttygen dbclient dropbearconvert"

missing=""
for t in $TOOLS; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -f /usr/include/security/pam_modules.h ] || missing="$missing pam_modules.h"
[ -f /usr/lib/x86_64-linux-gnu/libpam_wrapper.so ] || missing="$missing libpam_wrapper.so"
[ -f /usr/lib/libnss_extrausers.so.2 ] || missing="$missing libnss_extrausers.so.2"
/usr/bin/python3 -c 'import paramiko' 2>/dev/null || missing="$missing python3-paramiko"
/usr/bin/python3 -W ignore -c 'import asyncssh' 2>/dev/null || missing="$missing python3-asyncssh"

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing:$missing; run as root: apt-get install $PKGS" >&2
		exit 1
	fi
	echo "install-deps: installing packages (missing:$missing)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
	for t in $TOOLS; do
		command -v "$t" >/dev/null 2>&1 || { echo "install-deps: $t still missing after apt-get install" >&2; exit 1; }
	done
fi
echo "install-deps: all prerequisites present"
