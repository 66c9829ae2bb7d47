import Foundation
import Tensor

/// Writes Float32 tensors as a safetensors file (for tests, tools and converted weights).
/// Layout as read by `SafeTensors`: header padded with spaces to 8 bytes so the data
/// section is aligned, tensors stored back to back in the given order.
public enum SafeTensorsWriter {
    public static func encode(_ tensors: [(name: String, tensor: Tensor)],
                              metadata: [String: String] = [:]) throws(CheckpointError) -> [UInt8] {
        var seen = Set<String>()
        var header = "{"
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            header += "\"__metadata__\":{\(pairs.joined(separator: ","))},"
        }
        var offset = 0
        var fields: [String] = []
        for (name, t) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else { throw .duplicateTensor(name: name) }
            let size = t.count * 4
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for (_, t) in tensors {
            t.data.withUnsafeBytes { out.append(contentsOf: $0) }  // little-endian host (see Bytes.swift)
        }
        return out
    }

    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             to url: URL) throws {
        try Data(encode(tensors, metadata: metadata)).write(to: url, options: .atomic)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                out += "\\u" + String(u.value, radix: 16).leftPadded(to: 4)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
