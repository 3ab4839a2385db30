"""The guest's ``/init``: load drivers, report every PCI function on the console, power off.

The kernel command line tells it what to load: ``pciplan.load=m1,m2,...``
(insmod order, dependencies first, from ``/lib/modules/<name>.ko``).  For a
user-supplied initramfs the list starts with ``ALL``: every flat
``/lib/modules/*.ko`` is loaded, retrying until a pass loads nothing (their
order is unknown), and the named modules are then tried with ``modprobe``
(an initramfs may carry a ``modules.dep`` tree instead).

Report lines (one per fact, machine-readable, everything hexadecimal without
``0x`` except the counts)::

    PCIPLAN begin <kernel release> <uptime>
    PCIPLAN insmod-failed <module>
    PCIPLAN dev <seg:bus:dev.fn> <vendor> <device> <class> <irq-mode> <driver> msi=<n> msix=<n> irq=<n>
    PCIPLAN bridge <seg:bus:dev.fn> <secondary> <subordinate>        (decimal bus numbers)
    PCIPLAN cfg <seg:bus:dev.fn>
    <first 256 bytes of config space: od -tx1 lines>
    PCIPLAN end <uptime>

``driver`` is the name the kernel gives the bound driver (it may contain
spaces: "i6300ESB timer"), ``-`` when none is bound.
``irq-mode`` is what the bound driver ended up with: ``MSI-X`` or ``MSI``
(from ``msi_irqs/*``), ``INTx`` (a driver and no MSI vectors; the host
turns it into ``none`` when config space shows no interrupt pin) or
``unbound`` (no driver).  Under TCG every fork costs, so the loop reads
sysfs with shell builtins and forks only ``od``.
"""

INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
up() { cut -d' ' -f1 /proc/uptime; }
echo "PCIPLAN init $(up)"
load=""
settle=0.5
for w in $(cat /proc/cmdline); do
  case $w in
    pciplan.load=*) load=${w#pciplan.load=} ;;
    pciplan.settle=*) settle=${w#pciplan.settle=} ;;
  esac
done
failed=""
user=""
for m in $(echo "$load" | tr , ' '); do
  if [ "$m" = ALL ]; then
    # a user-supplied initramfs: every flat module it has, in whatever order loads
    user=1
    for f in /lib/modules/*.ko; do [ -f "$f" ] && failed="$failed $(basename $f .ko)"; done
  elif [ -f /lib/modules/$m.ko ]; then
    insmod /lib/modules/$m.ko 2>/dev/null || failed="$failed $m"
  elif [ -d /sys/module/$m ]; then
    :
  elif command -v modprobe >/dev/null 2>&1 && modprobe $m 2>/dev/null; then
    :
  elif [ -z "$user" ]; then
    echo "PCIPLAN module-missing $m"
  fi
done
# modules whose dependencies were not loaded yet: retry until a pass loads nothing
pass=0
while [ -n "$failed" ] && [ $pass -lt 10 ]; do
  again=""
  for m in $failed; do
    [ -d /sys/module/$m ] && continue
    insmod /lib/modules/$m.ko 2>/dev/null || again="$again $m"
  done
  [ "$again" = "$failed" ] && break
  failed=$again
  pass=$((pass + 1))
done
if [ -z "$user" ]; then
  for m in $failed; do echo "PCIPLAN insmod-failed $m"; done
fi
sleep $settle
for n in /sys/class/net/*; do
  [ "${n##*/}" = lo ] || ip link set dev "${n##*/}" up 2>/dev/null
done
echo 1 > /proc/sys/kernel/printk
echo "PCIPLAN begin $(uname -r) $(up)"
# one fork per function (od): everything else is read with shell builtins
for d in /sys/bus/pci/devices/*; do
  [ -e "$d/vendor" ] || continue
  a=${d##*/}
  read ven < $d/vendor; read dev < $d/device; read cls < $d/class
  irq=0; [ -r $d/irq ] && read irq < $d/irq
  drv=-
  while read line; do
    case $line in DRIVER=*) drv=${line#DRIVER=} ;; esac
  done < $d/uevent
  msi=0; msix=0
  if [ -d $d/msi_irqs ]; then
    for f in $d/msi_irqs/*; do
      [ -f "$f" ] || continue
      read kind < $f
      case $kind in
        msix) msix=$((msix + 1)) ;;
        msi) msi=$((msi + 1)) ;;
      esac
    done
  fi
  if [ $msix -gt 0 ]; then mode=MSI-X
  elif [ $msi -gt 0 ]; then mode=MSI
  elif [ "$drv" = - ]; then mode=unbound
  else mode=INTx
  fi
  echo "PCIPLAN dev $a ${ven#0x} ${dev#0x} ${cls#0x} $mode $drv msi=$msi msix=$msix irq=$irq"
  if [ -r $d/secondary_bus_number ]; then
    read sec < $d/secondary_bus_number; read sub < $d/subordinate_bus_number
    echo "PCIPLAN bridge $a $sec $sub"
  fi
  echo "PCIPLAN cfg $a"
  od -An -tx1 -v -N256 $d/config
done
echo "PCIPLAN end $(up)"
sync
poweroff -f
echo o > /proc/sysrq-trigger
sleep 10
"""
