"""Test support: random domains, libvirt oracle client, PCI layout comparison."""
