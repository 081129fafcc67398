#!/usr/bin/env python3
"""png_stats.py FILE [R,G,B]: prints "WIDTH HEIGHT NONWHITE MATCHING" for an 8-bit RGB or
RGBA PNG: its size, how many pixels are not white, and how many are within 8 of the
colour R,G,B in each channel (0 without one). Decodes with zlib alone, so a test needs
no imaging library; exits 2 on anything it cannot read."""
import struct
import sys
import zlib


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def unfilter(raw, width, height, bpp):
    stride = width * bpp
    rows, prev, pos = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            add = (0, a, b, (a + b) // 2, paeth(a, b, c))[kind] if kind < 5 else None
            if add is None:
                raise ValueError("bad filter type %d" % kind)
            line[i] = (line[i] + add) & 0xFF
        rows.append(line)
        prev = line
    return rows


def main():
    data = open(sys.argv[1], "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("only 8-bit RGB/RGBA, not interlaced")
    bpp = 3 if colour == 2 else 4
    want = [int(x) for x in sys.argv[2].split(",")] if len(sys.argv) > 2 else None
    nonwhite = matching = 0
    for row in unfilter(zlib.decompress(idat), width, height, bpp):
        for x in range(0, width * bpp, bpp):
            px = row[x:x + 3]
            nonwhite += px != b"\xff\xff\xff"
            matching += bool(want) and all(abs(px[k] - want[k]) <= 8 for k in range(3))
    print(width, height, nonwhite, matching)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, TypeError, struct.error, zlib.error) as e:
        print("png_stats: %s" % e, file=sys.stderr)
        sys.exit(2)
