#!/bin/bash
# Make a local libvirt 9.0 daemon (QEMU driver, qemu:///system) available for
# pciplan's differential and golden-file tooling, on Debian 12 (bookworm), as
# root, without systemd.  Safe to run again and again:
#
#   * installs the libvirt/QEMU packages (plus any package names given as
#     arguments) unless they are all installed already (FORCE_APT=1: always);
#   * makes QEMU run as root with no security driver, unless qemu.conf already
#     says otherwise (defining domains hangs in containers with the default
#     'libvirt-qemu' user);
#   * starts virtlogd and libvirtd in the background unless they run already;
#   * waits until `virsh -c qemu:///system version` answers (WAIT_SECS, 90).
#
# Usage: sudo scripts/setup-libvirt.sh [EXTRA_DEBIAN_PACKAGE...]
set -euo pipefail

URI=qemu:///system
QEMU_CONF=/etc/libvirt/qemu.conf
WAIT_SECS=${WAIT_SECS:-90}
PACKAGES=(
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    qemu-system-x86 qemu-system-arm qemu-efi-aarch64 qemu-system-ppc qemu-system-misc
    # to build libvirt-python (pip install '.[libvirt]': pciplan hotplug --connect)
    libvirt-dev pkg-config gcc
)

say() { printf 'setup-libvirt: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    say "needs root (apt-get, /etc/libvirt, starting libvirtd)"
    exit 1
fi

# -- packages ---------------------------------------------------------------
wanted=("${PACKAGES[@]}" "$@")
missing=()
for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ] || [ "${FORCE_APT:-0}" = 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get update"
    apt-get update -q
    say "apt-get install ${wanted[*]}"
    apt-get install -y -q --no-install-recommends "${wanted[@]}"
else
    say "packages already installed"
fi

# -- what the packages' maintainer scripts make, on images where they did not -----
# libvirtd resolves its built-in QEMU user and group at start even when qemu.conf
# names root, and refuses to start if 'libvirt-qemu' does not exist.
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --gid libvirt-qemu --groups kvm --home-dir /var/lib/libvirt \
        --no-create-home --shell /usr/sbin/nologin libvirt-qemu
    say "created system user libvirt-qemu"
fi
mkdir -p /var/log/libvirt/qemu /run/libvirt /var/lib/libvirt /var/cache/libvirt

# -- qemu.conf: QEMU as root, no security driver -------------------------------
set_conf() {  # key value: only when the key is not set (uncommented) yet
    local key=$1 value=$2
    if ! grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$QEMU_CONF" 2>/dev/null; then
        printf '%s = %s\n' "$key" "$value" >>"$QEMU_CONF"
        say "$QEMU_CONF: $key = $value"
        conf_changed=1
    fi
}
conf_changed=0
mkdir -p "$(dirname "$QEMU_CONF")"
touch "$QEMU_CONF"
set_conf user '"root"'
set_conf group '"root"'
set_conf security_driver '"none"'

# -- daemons --------------------------------------------------------------------
answers() { timeout 15 virsh -q -c "$URI" version >/dev/null 2>&1; }

if ! pgrep -x virtlogd >/dev/null; then
    say "starting virtlogd"
    /usr/sbin/virtlogd --daemon
fi
if pgrep -x libvirtd >/dev/null; then
    if [ "$conf_changed" = 1 ]; then
        say "warning: libvirtd was already running; restart it to apply the qemu.conf changes"
    fi
else
    say "starting libvirtd"
    /usr/sbin/libvirtd --daemon
fi

deadline=$((SECONDS + WAIT_SECS))
until answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "libvirtd does not answer at $URI after ${WAIT_SECS}s"
        virsh -c "$URI" version >&2 || true
        exit 1
    fi
    sleep 1
done
say "libvirtd answers at $URI: $(virsh -q -c "$URI" version | grep -i 'running hypervisor' || true)"
