import Foundation
import Tensor

/// NumPy `.npy` (format 1.0, little-endian float32, C order): what `--save-logits` writes
/// so `numpy.load` reads it as is.
public enum NPY {
    public static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    public static func encode(_ t: Tensor) -> [UInt8] {
        let shape = t.shape.map(String.init).joined(separator: ", ") + (t.shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape)), }"
        // Pad with spaces so magic + version + length + header + "\n" is a multiple of 64.
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let n = UInt16(header.utf8.count)
        return magic + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8) + LittleEndian.f32Bytes(t.data)
    }

    public static func write(_ t: Tensor, path: String) throws {
        try Data(encode(t)).write(to: URL(fileURLWithPath: path))
    }

    /// Reads a float32 `.npy` written by `encode` (or numpy with dtype '<f4', C order).
    public static func decode(_ bytes: [UInt8]) throws(PipelineError) -> Tensor {
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic, bytes[6] == 1 else {
            throw .badArgument("not a version 1.0 .npy file")
        }
        let n = Int(bytes[8]) | Int(bytes[9]) << 8
        guard bytes.count >= 10 + n, let header = String(bytes: bytes[10..<(10 + n)], encoding: .ascii) else {
            throw .badArgument(".npy header is truncated")
        }
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False") else {
            throw .badArgument(".npy must be little-endian float32 in C order, header: \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw .badArgument(".npy header has no shape")
        }
        let dims = header[open.upperBound..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0, v <= 1 << 30 else { throw .badArgument(".npy shape entry '\(d)' is not a size") }
            shape.append(v)
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
        }
        guard !overflow, bytes.count - 10 - n == count * 4 else {
            throw .badArgument(".npy shape \(shape) needs \(count * 4) data bytes, file has \(bytes.count - 10 - n)")
        }
        return Tensor(shape: shape, data: LittleEndian.floats(f32: bytes[(10 + n)...], count: count))
    }
}
