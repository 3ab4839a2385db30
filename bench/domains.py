"""Benchmark inputs: libvirt domain XMLs of a chosen size, deterministic.

    from domains import typical, endpoints
    typical("q35")                 # a virt-install style guest, ~20 devices
    endpoints("q35", 100)          # the same base plus 100 extra PCI endpoints

The extra endpoints are virtio disks and NICs (alternating, then a few
virtio-serial controllers, balloon-like rng devices...), without addresses,
so that every one of them is placed by the planner.  On q35 each PCIe
endpoint needs its own pcie-root-port (libvirt packs 8 ports per slot of
the root bus); on pc every conventional device takes a slot, and libvirt
adds pci-bridges when bus 0 is full.
"""

from __future__ import annotations

import string

KINDS = ("q35", "pc")

_HEAD = """<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
"""

_BASE = {
    # virt-install / virt-manager defaults for a q35 guest
    "q35": """    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <controller type='usb' model='qemu-xhci' ports='15'/>
    <controller type='virtio-serial'/>
    <interface type='network'>
      <mac address='52:54:00:00:00:01'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'/>
    <console type='pty'/>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <channel type='spicevmc'>
      <target type='virtio' name='com.redhat.spice.0'/>
    </channel>
    <input type='tablet' bus='usb'/>
    <graphics type='spice' autoport='yes'>
      <listen type='address'/>
    </graphics>
    <sound model='ich9'/>
    <audio id='1' type='spice'/>
    <video>
      <model type='virtio' heads='1' primary='yes'/>
    </video>
    <redirdev bus='usb' type='spicevmc'/>
    <redirdev bus='usb' type='spicevmc'/>
    <memballoon model='virtio'/>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
""",
    # an older virt-manager i440fx guest
    "pc": """    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hda' bus='ide'/>
      <readonly/>
    </disk>
    <controller type='usb' model='ich9-ehci1'/>
    <controller type='usb' model='ich9-uhci1'/>
    <controller type='usb' model='ich9-uhci2'/>
    <controller type='usb' model='ich9-uhci3'/>
    <controller type='virtio-serial'/>
    <interface type='network'>
      <mac address='52:54:00:00:00:01'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'/>
    <console type='pty'/>
    <channel type='spicevmc'>
      <target type='virtio' name='com.redhat.spice.0'/>
    </channel>
    <input type='tablet' bus='usb'/>
    <graphics type='spice' autoport='yes'/>
    <sound model='ich6'/>
    <video>
      <model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1' primary='yes'/>
    </video>
    <redirdev bus='usb' type='spicevmc'/>
    <memballoon model='virtio'/>
""",
}

_TAIL = """  </devices>
</domain>
"""

#: PCI endpoints already in the base guest (disk, NIC, USB, serial, sound, video, balloon, rng...)
BASE_ENDPOINTS = {"q35": 8, "pc": 10}


def _disk_name(i: int) -> str:
    """vdb, vdc, ... vdz, vdaa, vdab, ... (libvirt's naming, skipping the base vda)."""
    i += 1
    letters = string.ascii_lowercase
    name = ""
    i += 1
    while i > 0:
        i, r = divmod(i - 1, 26)
        name = letters[r] + name
    return "vd" + name


def _extra(i: int) -> str:
    if i % 2 == 0:
        return (f"    <disk type='file' device='disk'>\n"
                f"      <driver name='qemu' type='raw'/>\n"
                f"      <source file='/var/lib/libvirt/images/extra{i}.img'/>\n"
                f"      <target dev='{_disk_name(i // 2)}' bus='virtio'/>\n"
                f"    </disk>\n")
    n = i // 2 + 2
    return (f"    <interface type='network'>\n"
            f"      <mac address='52:54:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}'/>\n"
            f"      <source network='default'/>\n"
            f"      <model type='virtio'/>\n"
            f"    </interface>\n")


def endpoints(kind: str, extra: int, name: str | None = None) -> str:
    """The base guest of ``kind`` plus ``extra`` virtio disks/NICs without addresses."""
    if kind not in _BASE:
        raise ValueError(f"unknown kind {kind!r}; known: {KINDS}")
    name = name or f"bench-{kind}-{extra}"
    machine = "pc-q35-7.2" if kind == "q35" else "pc-i440fx-7.2"
    uuid = "6f1c2a9e-0000-4000-8000-%012x" % (extra + (0 if kind == "q35" else 1 << 40))
    parts = [_HEAD.format(name=name, uuid=uuid, machine=machine), _BASE[kind].format(name=name)]
    parts.extend(_extra(i) for i in range(extra))
    parts.append(_TAIL)
    return "".join(parts)


def typical(kind: str, name: str | None = None) -> str:
    """A virt-install style guest: ~20 devices, of which ~10 PCI endpoints."""
    return endpoints(kind, 2, name or f"bench-{kind}-typical")


def device_count(xml: str) -> int:
    """Device elements of the input (children of <devices>, without <emulator>)."""
    from lxml import etree
    devs = etree.fromstring(xml.encode()).find("devices")
    return sum(1 for d in devs if isinstance(d.tag, str) and d.tag != "emulator")


def endpoint_count(kind: str, extra: int) -> int:
    return BASE_ENDPOINTS[kind] + extra
