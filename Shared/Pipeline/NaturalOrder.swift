/// "Natural" file-name order, as file managers sort: runs of digits compare by their
/// numeric value, so frame2 < frame10 and 00009.png < 00010.png; everything else compares
/// by Unicode scalar. Ties (e.g. "f01" vs "f1") fall back to plain order, so the order is total.
public enum NaturalOrder {
    public static func areInIncreasingOrder(_ a: String, _ b: String) -> Bool {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        var i = 0, j = 0
        while i < x.count && j < y.count {
            if isDigit(x[i]) && isDigit(y[j]) {
                var ei = i, ej = j
                while ei < x.count && isDigit(x[ei]) { ei += 1 }
                while ej < y.count && isDigit(y[ej]) { ej += 1 }
                // Compare numerically without parsing (runs may be longer than any Int).
                var si = i, sj = j
                while si < ei - 1 && x[si] == "0" { si += 1 }
                while sj < ej - 1 && y[sj] == "0" { sj += 1 }
                if ei - si != ej - sj { return ei - si < ej - sj }
                while si < ei {
                    if x[si] != y[sj] { return x[si].value < y[sj].value }
                    si += 1; sj += 1
                }
                i = ei; j = ej
            } else {
                if x[i] != y[j] { return x[i].value < y[j].value }
                i += 1; j += 1
            }
        }
        if x.count - i != y.count - j { return x.count - i < y.count - j }
        return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    static func isDigit(_ s: Unicode.Scalar) -> Bool { s.value >= 48 && s.value <= 57 }
}
