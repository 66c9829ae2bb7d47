/// COCO run-length encoding of a binary mask, bit-for-bit compatible with
/// pycocotools (`mask.encode`, `frPyObjects`, `decode`, `area`, `toBbox`).
///
/// Runs are taken in column-major (Fortran) order — down each column, then the
/// next column — and alternate background/foreground starting with background,
/// so a mask whose first pixel is foreground starts with a 0 count.
public struct COCORLE: Sendable, Equatable {
    /// Mask height (`size[0]` in COCO JSON).
    public let height: Int
    /// Mask width (`size[1]` in COCO JSON).
    public let width: Int
    /// Alternating run lengths, background first; they sum to `height * width`.
    public let counts: [Int]

    /// Validates that counts are non-negative and sum to height × width.
    public init(height: Int, width: Int, counts: [Int]) throws(ImagingError) {
        guard height >= 0, width >= 0, !height.multipliedReportingOverflow(by: width).overflow else {
            throw .invalidRLE(reason: "bad size \(height)x\(width)")
        }
        var total = 0
        for (i, c) in counts.enumerated() {
            guard c >= 0 else { throw .invalidRLE(reason: "negative count \(c) at index \(i)") }
            let (sum, overflow) = total.addingReportingOverflow(c)
            guard !overflow else { throw .invalidRLE(reason: "counts overflow at index \(i)") }
            total = sum
        }
        guard total == height * width else {
            throw .invalidRLE(reason: "counts sum to \(total), expected \(height)x\(width) = \(height * width)")
        }
        self.height = height
        self.width = width
        self.counts = counts
    }

    /// Encodes a mask (pycocotools `rleEncode`).
    public init(mask: BinaryMask) {
        var counts: [Int] = []
        var current: UInt8 = 0
        var run = 0
        mask.bits.withUnsafeBufferPointer { bits in
            for x in 0..<mask.width {
                var i = x
                for _ in 0..<mask.height {
                    let v = bits[i]
                    if v != current {
                        counts.append(run)
                        run = 0
                        current = v
                    }
                    run += 1
                    i += mask.width
                }
            }
        }
        counts.append(run)
        self.height = mask.height
        self.width = mask.width
        self.counts = counts
    }

    /// Decodes to a row-major mask (pycocotools `decode`).
    public func decode() throws(ImagingError) -> BinaryMask {
        // A 0×N RLE is valid COCO but not a mask this module can hold.
        guard width > 0, height > 0 else { throw .invalidDimensions(width: width, height: height) }
        var bits = [UInt8](repeating: 0, count: width * height)
        var position = 0   // column-major index; init guaranteed sum == h*w
        for (i, c) in counts.enumerated() {
            if i % 2 == 1 {
                for k in position..<(position + c) {
                    let y = k % height, x = k / height
                    bits[y * width + x] = 1
                }
            }
            position += c
        }
        return BinaryMask(uncheckedWidth: width, height: height, bits: bits)
    }

    /// Foreground pixel count (pycocotools `area`): the sum of the odd-indexed runs.
    public var area: Int {
        stride(from: 1, to: counts.count, by: 2).reduce(0) { $0 + counts[$1] }
    }

    /// pycocotools `toBbox` computed from the runs without decoding. Same result
    /// as maskApi.c `rleToBbox` for every RLE a mask can produce; written per
    /// foreground run so that zero-length runs in a parsed RLE (which the C code
    /// turns into unsigned wrap-around) contribute nothing instead.
    // ref: pycocotools/common/maskApi.c rleToBbox
    public var boundingBox: BoundingBox {
        var xs = Int.max, ys = Int.max, xe = -1, ye = -1
        var position = 0
        for (j, c) in counts.enumerated() {
            defer { position += c }
            guard j % 2 == 1, c > 0, height > 0 else { continue }
            let first = position, last = position + c - 1
            let x0 = first / height, x1 = last / height
            xs = min(xs, x0)
            xe = max(xe, x1)
            if x0 != x1 {
                // The run wraps from the bottom of one column to the top of another.
                ys = 0
                ye = height - 1
            } else {
                ys = min(ys, first % height)
                ye = max(ye, last % height)
            }
        }
        guard xe >= 0 else { return BoundingBox(x: 0, y: 0, width: 0, height: 0) }
        return BoundingBox(x: xs, y: ys, width: xe - xs + 1, height: ye - ys + 1)
    }

    /// The compressed `counts` string of COCO JSON (pycocotools `rleToString`):
    /// each count, delta-coded against the count two back from index 3 on, written
    /// as little-endian 5-bit groups with a continuation bit, offset into ASCII 48...111.
    // ref: pycocotools/common/maskApi.c rleToString (note `i>2`, not `i>=2`)
    public var compressedCounts: String {
        var out: [UInt8] = []
        out.reserveCapacity(counts.count * 2)
        for i in counts.indices {
            var x = counts[i]
            if i > 2 { x -= counts[i - 2] }
            var more = true
            while more {
                var c = UInt8(truncatingIfNeeded: x & 0x1f)
                x >>= 5   // arithmetic shift, as the C code on `long`
                more = (c & 0x10) != 0 ? x != -1 : x != 0
                if more { c |= 0x20 }
                out.append(c + 48)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the compressed `counts` string (pycocotools `rleFrString`), rejecting
    /// characters outside '0'...'o', unterminated or over-long groups, negative
    /// counts and counts that do not cover height × width exactly.
    // ref: pycocotools/common/maskApi.c rleFrString
    public init(height: Int, width: Int, compressedCounts string: String) throws(ImagingError) {
        var counts: [Int] = []
        var bytes = Array(string.utf8)[...]
        while !bytes.isEmpty {
            var x = 0, k = 0, more = true
            while more {
                guard let raw = bytes.popFirst() else {
                    throw .invalidRLE(reason: "counts string ends inside a value (entry \(counts.count))")
                }
                guard raw >= 48, raw <= 111 else {
                    throw .invalidRLE(reason: "character \(raw) outside '0'...'o' in counts (entry \(counts.count))")
                }
                // 12 groups = 60 bits; more cannot come from a valid mask.
                guard k < 12 else { throw .invalidRLE(reason: "value too long at entry \(counts.count)") }
                let c = Int(raw - 48)
                x |= (c & 0x1f) << (5 * k)
                more = (c & 0x20) != 0
                k += 1
                if !more && (c & 0x10) != 0 { x |= -1 << (5 * k) }
            }
            if counts.count > 2 {
                let (sum, overflow) = x.addingReportingOverflow(counts[counts.count - 2])
                guard !overflow else { throw .invalidRLE(reason: "overflow at entry \(counts.count)") }
                x = sum
            }
            counts.append(x)
        }
        try self.init(height: height, width: width, counts: counts)
    }
}
