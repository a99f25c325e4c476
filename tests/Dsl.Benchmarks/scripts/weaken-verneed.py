#!/usr/bin/env python3
"""Marks symbol-version requirements of an ELF64 shared library as weak (VER_FLG_WEAK), in place.

usage: weaken-verneed.py LIBRARY VERSION [VERSION ...]     e.g. weaken-verneed.py libLibTorchSharp.so GLIBCXX_3.4.32

The dynamic loader refuses to load a library whose .gnu.version_r (SHT_GNU_verneed) names a version
that the providing library lacks ("version `GLIBCXX_3.4.32' not found"), unless that requirement's
Vernaux entry carries VER_FLG_WEAK (0x2); then it only notes it (ldd prints "weak version ... not
found") and goes on. This edits exactly the vna_flags field of the named entries; nothing moves.
Run it only on a private copy of the library, never on a system or NuGet-cache file.
"""
import struct
import sys

SHT_GNU_VERNEED = 0x6FFFFFFE
VER_FLG_WEAK = 0x2


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, wanted = sys.argv[1], set(sys.argv[2:])
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        print(f"{path}: not a little-endian ELF64 file", file=sys.stderr)
        return 1

    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    found = set()
    for _, sh_type, _, _, sh_offset, _, sh_link, sh_info, _, _ in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab = sections[sh_link][4]

        def name_at(offset: int) -> str:
            start = strtab + offset
            return data[start:data.index(0, start)].decode()

        verneed = sh_offset
        for _ in range(sh_info):  # sh_info = number of Verneed entries
            _, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", data, verneed)
            aux = verneed + vn_aux
            for _ in range(vn_cnt):
                _, vna_flags, _, vna_name, vna_next = struct.unpack_from("<IHHII", data, aux)
                version = name_at(vna_name)
                if version in wanted:
                    found.add(version)
                    if vna_flags & VER_FLG_WEAK:
                        print(f"{path}: {name_at(vn_file)} {version} already weak")
                    else:
                        struct.pack_into("<H", data, aux + 4, vna_flags | VER_FLG_WEAK)
                        print(f"{path}: {name_at(vn_file)} {version}: vna_flags {vna_flags:#x} -> {vna_flags | VER_FLG_WEAK:#x}")
                if vna_next == 0:
                    break
                aux += vna_next
            if vn_next == 0:
                break
            verneed += vn_next

    missing = wanted - found
    if missing:
        print(f"{path}: no version requirement named {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    with open(path, "r+b") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
