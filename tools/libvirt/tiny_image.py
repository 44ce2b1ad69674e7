"""Write the tiny guest image of the libvirt hosts (issue 17).

A raw disk whose master boot record prints one line on the first serial
port (COM1, 0x3f8) and then halts the CPU with interrupts disabled, for
good. SeaBIOS loads the sector to 0000:7c00 and jumps there. A vCPU in
``hlt`` with interrupts off sleeps in the host (KVM) or in QEMU's TCG
thread until a non-maskable interrupt, so the idle guest costs next to no
CPU; the line on the serial port tells when the guest has booted.

The partition table has one partition over the rest of the disk, so that
glance's image safety checks take the disk for a partitioned raw disk (a
master boot record with no partition at all is refused). Nothing reads
the partition; the guest never leaves its boot sector.

Such a guest has no ACPI handling: a clean shutdown request is ignored,
so nova's power-off waits [DEFAULT]shutdown_timeout and then destroys it.

    python3 tools/libvirt/tiny_image.py OUT [--size-mib N] [--message M]
"""

import argparse
import struct
import sys

LOAD_ADDRESS = 0x7c00
COM1 = 0x3f8


def boot_sector(message, sectors=2048):
    """Return the 512 bytes of the boot sector printing message.

    sectors: the disk's size in 512-byte sectors, which its one partition
    (type 0x83, from sector 1) fills.
    """
    text = message.encode('ascii') + b'\r\n\0'
    # Hand-assembled 16-bit code; offsets are from the start of the sector.
    head = bytes([
        0xfa,              # 0: cli
        0xfc,              # 1: cld                (lodsb counts up)
        0x31, 0xc0,        # 2: xor ax, ax
        0x8e, 0xd8,        # 4: mov ds, ax
    ])
    code_len = len(head) + 3 + 3 + 1 + 2 + 2 + 1 + 2 + 1 + 2
    si = LOAD_ADDRESS + code_len
    body = b''.join([
        b'\xbe' + struct.pack('<H', si),       # mov si, message
        b'\xba' + struct.pack('<H', COM1),     # mov dx, 0x3f8
        bytes([
            0xac,          # next: lodsb
            0x84, 0xc0,    # test al, al
            0x74, 0x03,    # jz halt
            0xee,          # out dx, al
            0xeb, 0xf8,    # jmp next
            0xf4,          # halt: hlt
            0xeb, 0xfd,    # jmp halt              (after an NMI)
        ]),
    ])
    code = head + body
    assert len(code) == code_len, (len(code), code_len)
    sector = code + text
    if len(sector) > 446:
        raise ValueError('message too long for the boot sector')
    # One partition entry (boot flag, start CHS, type, end CHS, start LBA,
    # sectors), three empty ones, the signature.
    partition = struct.pack('<B3BB3BII', 0x00, 0x00, 0x02, 0x00, 0x83,
                            0xfe, 0xff, 0xff, 1, sectors - 1)
    return (sector.ljust(446, b'\0') + partition.ljust(64, b'\0') +
            b'\x55\xaa')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='raw image file to write')
    parser.add_argument('--size-mib', type=int, default=1,
                        help='size of the raw disk (default 1 MiB)')
    parser.add_argument('--message', default='tiny-guest: booted, halting',
                        help='line written to COM1 before halting')
    args = parser.parse_args(argv)
    size = max(args.size_mib, 1) * 1024 * 1024
    sector = boot_sector(args.message, size // 512)
    with open(args.out, 'wb') as f:
        f.write(sector)
        f.truncate(size)
    return 0


if __name__ == '__main__':
    sys.exit(main())
