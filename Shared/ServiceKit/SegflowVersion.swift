/// The release every executable reports with `--version` (and `doctor`).
public enum SegflowVersion {
    public static let string = "0.5.0"
}
