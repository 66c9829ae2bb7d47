/// PIL opens a JPEG in two steps: `JpegImagePlugin._open` walks the markers up to the
/// first SOS in Python, and only then does libjpeg decode. The walk refuses files
/// that libjpeg alone would decode — an unknown marker such as `FF 01`, a DQT
/// segment shorter than its tables, a SOF whose component list is cut mid-entry,
/// a short JFIF/Adobe/ICC/Photoshop segment — so decoding "exactly like PIL" means
/// refusing them too. This is a port of that walk (Pillow 13 `JpegImagePlugin.py`:
/// `_open`, `Skip`, `APP`, `SOF`, `DQT`, `COM`, `ImageFile._safe_read`); it checks,
/// it keeps nothing. libjpeg then parses the same bytes on its own.
///
/// Not ported: PIL's later, error-tolerant EXIF-DPI and MPO index parsing (their
/// failures only warn), and accepting two SOF markers (libjpeg refuses those anyway).
enum PILJPEGMarkerCheck {
    static func check(_ b: UnsafeBufferPointer<UInt8>) throws(ImagingError) {
        let n = b.count
        var r = 3                      // next unread byte; PIL has read FF D8 FF
        var s: [UInt8] = [0xFF]        // PIL's `s`: the pending marker bytes
        var iccSegments: [[UInt8]] = []

        func corrupt(_ what: String) -> ImagingError {
            .corruptImage(format: .jpeg, message: "\(what) (PIL refuses the file too)")
        }
        func readByte() -> [UInt8] {
            guard r < n else { return [] }
            r += 1
            return [b[r - 1]]
        }
        func segment(_ marker: Int) throws(ImagingError) -> [UInt8] {
            guard r + 2 <= n else {
                throw .truncatedImage(format: .jpeg, byteCount: n, message: String(format16(marker)) + " segment length cut off")
            }
            let length = (Int(b[r]) << 8 | Int(b[r + 1])) - 2
            r += 2
            guard length > 0 else { return [] }
            guard r + length <= n else {
                throw .truncatedImage(format: .jpeg, byteCount: n, message: "\(format16(marker)) segment of \(length) bytes cut off")
            }
            defer { r += length }
            return Array(b[r..<(r + length)])
        }
        func be16(_ seg: [UInt8], _ o: Int) -> Int? { o + 2 <= seg.count ? Int(seg[o]) << 8 | Int(seg[o + 1]) : nil }
        func be32(_ seg: [UInt8], _ o: Int) -> Int? {
            o + 4 <= seg.count ? (0..<4).reduce(0) { $0 << 8 | Int(seg[o + $1]) } : nil
        }
        func starts(_ seg: [UInt8], _ prefix: String) -> Bool { seg.starts(with: Array(prefix.utf8)) }

        while !s.isEmpty {
            guard s[0] == 0xFF else { s = readByte(); continue }   // junk between markers is skipped
            s += readByte()
            guard s.count >= 2 else { break }
            let marker = Int(s[0]) << 8 | Int(s[1])
            switch marker {
            case 0xFFC0...0xFFFE:
                switch marker {
                case 0xFFC0...0xFFC3, 0xFFC5...0xFFC7, 0xFFC9...0xFFCB, 0xFFCD...0xFFCF, 0xFFDE:
                    if let first = iccSegments.min(by: { $0.lexicographicallyPrecedes($1) }), first.count <= 13 {
                        throw corrupt("ICC_PROFILE segment of \(first.count) bytes has no fragment count")
                    }
                    iccSegments = []
                    let seg = try segment(marker)
                    guard seg.count >= 5 else { throw corrupt("\(format16(marker)) frame header of \(seg.count) bytes") }
                    guard seg[0] == 8 else {
                        throw .unsupportedImage(format: .jpeg, reason: "cannot handle \(seg[0])-bit samples (8-bit only, as PIL)")
                    }
                    guard seg.count >= 6 else { throw corrupt("\(format16(marker)) frame header of \(seg.count) bytes") }
                    guard [1, 3, 4].contains(seg[5]) else {
                        throw .unsupportedImage(format: .jpeg, reason: "cannot handle \(seg[5])-component images")
                    }
                    guard (seg.count - 6) % 3 == 0 else {
                        throw corrupt("\(format16(marker)) component list of \(seg.count - 6) bytes is not a multiple of 3")
                    }
                case 0xFFDB:
                    var seg = try segment(marker)[...]
                    while let v = seg.first {
                        let tableLength = 1 + (v / 16 == 0 ? 1 : 2) * 64
                        guard seg.count >= tableLength else { throw corrupt("bad quantization table marker") }
                        seg = seg.dropFirst(tableLength)
                    }
                case 0xFFE0...0xFFEF:
                    let seg = try segment(marker)
                    if marker == 0xFFE0, starts(seg, "JFIF"), be16(seg, 5) == nil {
                        throw corrupt("JFIF segment of \(seg.count) bytes")
                    } else if marker == 0xFFE2, starts(seg, "ICC_PROFILE\0") {
                        iccSegments.append(seg)
                    } else if marker == 0xFFED, starts(seg, "Photoshop 3.0\0") {
                        // PIL tolerates short reads of the 16/32-bit fields, not of the name length byte.
                        var o = 14
                        while o + 4 <= seg.count, Array(seg[o..<(o + 4)]) == Array("8BIM".utf8) {
                            o += 4
                            guard be16(seg, o) != nil else { break }
                            o += 2
                            guard o < seg.count else { throw corrupt("Photoshop resource name cut off") }
                            o += 1 + Int(seg[o])
                            o += o & 1
                            guard let size = be32(seg, o) else { break }
                            o += 4
                            o += size
                            o += o & 1
                        }
                    } else if marker == 0xFFEE, starts(seg, "Adobe"), be16(seg, 5) == nil {
                        throw corrupt("Adobe segment of \(seg.count) bytes")
                    }
                case 0xFFC4, 0xFFCC, 0xFFDA, 0xFFDC, 0xFFDD, 0xFFDF, 0xFFFE:
                    _ = try segment(marker)
                default:
                    break // SOI, EOI, RSTn, JPG, JPGn: no payload in PIL's table
                }
                if marker == 0xFFDA { return }
                s = readByte()
            case 0xFFFF:
                s = [0xFF]   // fill byte: the second FF starts the next marker
            case 0xFF00:
                s = readByte()
            default:
                throw corrupt("\(format16(marker)) at offset \(r - 2) is not a JPEG marker")
            }
        }
        // No SOS: libjpeg reports the missing scan.
    }

    private static func format16(_ marker: Int) -> String {
        let hex = String(marker, radix: 16, uppercase: true)
        return "marker 0x" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
