import ArgumentParser
import ServiceKit

struct SegflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segflow",
        abstract: "Promptable image segmentation (SAM, LiteMedSAM, MobileSAM, CLIPSeg, SegGPT, Painter) on CPU, served over Kafka.",
        discussion: """
            Run `segflow doctor` first on a new machine: it shows the OpenBLAS core in use, \
            checks SGEMM against a reference and measures its speed.
            """,
        version: SegflowVersion.string,
        subcommands: [SegmentCommand.self, EverythingCommand.self, TrackCommand.self, EmbedCommand.self, BenchCommand.self, BrokerCommand.self, UpCommand.self, TopicsCommand.self, TokenizeCommand.self, DoctorCommand.self]
    )
}
