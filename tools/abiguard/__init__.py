"""abiguard: the operator's tools for live migration between QEMU hosts
that run different releases: does each VM keep the devices its guest
enumerated, and what makes it so where it does not."""

__version__ = "1.1.0"
