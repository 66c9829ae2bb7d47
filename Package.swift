// swift-tools-version:6.0
import Foundation
import PackageDescription

// The tensor kernels are 8-wide SIMD loops; x86-64's baseline (SSE2) compiles them to
// 4-wide code. When the building machine has AVX2 + FMA (Haswell and later), Tensor is
// compiled for that ISA (faster SIMD kernels; `segflow bench` shows the effect). Binaries are then
// for machines at least that new — Segflow builds where it runs (Deploy/setup.sh). For a
// portable build (e.g. a container image for unknown hosts) set SEGFLOW_TARGET_CPU=x86-64.
let tensorTargetCPU: String? = {
    if let chosen = ProcessInfo.processInfo.environment["SEGFLOW_TARGET_CPU"] { return chosen.isEmpty ? nil : chosen }
    #if arch(x86_64) && os(Linux)
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
    let set = Set(flags.split(separator: " ").map(String.init))
    return set.contains("avx2") && set.contains("fma") ? "haswell" : nil
    #else
    return nil
    #endif
}()
let tensorSettings: [SwiftSetting] = tensorTargetCPU.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []

// Native dependencies come from Debian packages (see Deploy/setup.sh):
// librdkafka-dev, libopenblas-dev, libdnnl-dev, libpng-dev, zlib1g-dev, libprotobuf-c-dev, protobuf-c-compiler,
// libjpeg62-turbo-dev, libwebp-dev, libavformat-dev, libavcodec-dev, libswscale-dev, libavutil-dev.
let package = Package(
    name: "Segflow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "segflow", targets: ["segflow"]),
        .executable(name: "segflow-image-encoder", targets: ["segflow-image-encoder"]),
        .executable(name: "segflow-prompt-decoder", targets: ["segflow-prompt-decoder"]),
        .executable(name: "segflow-text-encoder", targets: ["segflow-text-encoder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Operations: the swift-metrics API in the libraries, Prometheus exposition in the
        // processes, and a small HTTP server for /metrics, /healthz and /readyz (FlyingFox:
        // no dependencies of its own; see README, Operations).
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // System libraries: one module map per C library.
        .systemLibrary(name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Shared/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // oneDNN: bf16 GEMM (and an alternative f32 GEMM engine). Debian ships no .pc file for
        // it; the module map links -ldnnl.
        .systemLibrary(name: "CDNNL", path: "Shared/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CPNG", path: "Shared/CPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"])]),
        // JPEG and WebP input (ImageDecoder): libjpeg-turbo and libwebp (+ its demux library,
        // whose WebPAnimDecoder is the decoder PIL uses for every WebP).
        .systemLibrary(name: "CJPEG", path: "Shared/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CWebP", path: "Shared/CWebP", pkgConfig: "libwebpdemux",
                       providers: [.apt(["libwebp-dev"])]),
        // Video input and output (VideoReader, VideoWriter): FFmpeg's demuxers, decoders,
        // encoders (libx264 where Debian's libavcodec has it) and pixel-format conversion.
        .systemLibrary(name: "CFFmpeg", path: "Shared/CFFmpeg", pkgConfig: "libavformat",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev"])]),
        .systemLibrary(name: "CProtobufC", path: "Shared/CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        // zlib: gunzip of CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz), kept compressed
        // as shipped upstream. zlib1g-dev is already pulled in by libpng-dev.
        .systemLibrary(name: "CZlib", path: "Shared/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Libraries.
        // C kernels with AVX-512 variants chosen at run time (function target attributes,
        // so the rest of the build stays portable).
        .target(name: "CKernels", path: "Shared/CKernels"),
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CDNNL", "CKernels"], path: "Shared/Tensor", swiftSettings: tensorSettings),
        .target(name: "Checkpoint", dependencies: ["Tensor"], path: "Shared/Checkpoint"),
        // C shim so libpng's setjmp/longjmp error path never crosses Swift frames.
        .target(name: "CPNGSupport", dependencies: ["CPNG"], path: "Shared/CPNGSupport"),
        // Same for libjpeg's error_exit, which may only leave by longjmp.
        .target(name: "CJPEGSupport", dependencies: ["CJPEG"], path: "Shared/CJPEGSupport"),
        .target(name: "Imaging", dependencies: ["CPNG", "CPNGSupport", "CJPEGSupport", "CWebP"], path: "Shared/Imaging"),
        // The one layer library (Linear, LayerNorm, Conv2d, ...) every model family uses.
        .target(name: "NN", dependencies: ["Tensor", "Checkpoint"], path: "Shared/NN"),
        .target(name: "SAM", dependencies: ["NN", "Tensor", "Checkpoint", "Imaging"], path: "Shared/SAM"),
        // SAM 2 (Hiera backbone, FPN neck, SAM 2 mask decoder); reuses SAM's prompt encoder and
        // two-way transformer.
        .target(name: "SAM2", dependencies: ["SAM", "NN", "Tensor", "Checkpoint", "Imaging"], path: "Shared/SAM2"),
        .target(name: "CLIP", dependencies: ["NN", "Tensor", "Checkpoint", "CZlib"], path: "Shared/CLIP",
                resources: [.copy("Resources/bpe_simple_vocab_16e6.txt.gz"),
                            .copy("Resources/LICENSE-bpe_simple_vocab_16e6.txt")]),
        .target(name: "CLIPSeg", dependencies: ["CLIP", "NN", "Tensor", "Checkpoint", "Imaging"], path: "Shared/CLIPSeg"),
        // SegGPT and Painter (in-context segmentation / painting on a prompt-over-query canvas).
        .target(name: "SegGPT", dependencies: ["NN", "Tensor", "Checkpoint", "Imaging"], path: "Shared/SegGPT"),
        .target(name: "Pipeline", dependencies: ["SAM", "Imaging", "Checkpoint", "Tensor", "COpenBLAS"], path: "Shared/Pipeline"),
        // Video files in and out, and FrameSource (a video, a folder or a glob of frames; reuses
        // Pipeline's InputSet). Only the segflow command line links it: the services never
        // parse video.
        .target(name: "Video", dependencies: ["CFFmpeg", "Imaging", "Pipeline"], path: "Shared/Video"),
        // Multi-object video tracking over a SAM-family decoder, driven by a predict closure and
        // the frame's embedding (the prompt-decoder runs it from a cached embedding).
        .target(name: "Tracking", dependencies: ["SAM", "Imaging", "Tensor"], path: "Shared/Tracking"),
        // Model families behind one protocol and one registry (the only code that knows model names).
        .target(name: "Backends", dependencies: ["SAM", "SAM2", "CLIPSeg", "CLIP", "SegGPT", "Pipeline", "Tracking", "Imaging", "Tensor", "Messaging", "Checkpoint"],
                path: "Shared/Backends"),
        // The three service loops (image-encoder, prompt-decoder, text-encoder).
        .target(name: "Serving", dependencies: ["Backends", "Pipeline", "Imaging", "Messaging",
                                              .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                              .product(name: "Metrics", package: "swift-metrics"),
                                              .product(name: "Logging", package: "swift-log")], path: "Shared/Serving"),
        // The client SDK: send images and prompts, await results, decode them.
        .target(name: "Client", dependencies: ["Backends", "Pipeline", "Imaging", "Messaging", "SAM",
                                             .product(name: "Logging", package: "swift-log")], path: "Shared/Client"),
        // The embedded stack (broker + services in one process) and the pipeline benchmark.
        .target(name: "Embedded", dependencies: ["Serving", "Client", "Backends", "Pipeline", "Imaging", "Messaging", "SAM",
                                               .product(name: "Logging", package: "swift-log")], path: "Shared/Embedded"),
        // Command-line options shared by the service executables (the only library using ArgumentParser).
        .target(name: "ServiceCommandLine", dependencies: ["Backends", "Messaging", "Observability", "Pipeline", "ServiceKit", "Serving", "Tensor",
                                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                         .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                         .product(name: "Logging", package: "swift-log")],
                path: "Shared/ServiceCommandLine"),
        .target(name: "ServiceKit", dependencies: ["Tensor", "COpenBLAS", "Pipeline",
                                                 .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                 .product(name: "Logging", package: "swift-log")], path: "Shared/ServiceKit"),
        // The processes' metrics and health endpoint: Prometheus exposition of what the
        // libraries record through swift-metrics, /healthz and /readyz (the only code that
        // knows Prometheus or HTTP).
        .target(name: "Observability", dependencies: [
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "FlyingFox", package: "FlyingFox"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Shared/Observability"),
        // protobuf-c code generated from Protocols/segflow.proto by Protocols/generate.sh.
        .target(name: "CSegflowProto", dependencies: ["CProtobufC"], path: "Shared/CSegflowProto"),
        // The only code that touches librdkafka and protobuf-c pointers.
        .target(name: "Messaging", dependencies: ["CRdKafka", "CProtobufC", "CSegflowProto",
                                                .product(name: "Logging", package: "swift-log")], path: "Shared/Messaging"),

        // Executables (thin).
        .executableTarget(name: "segflow", dependencies: [
            "ServiceKit", "Tensor", "Checkpoint", "Imaging", "SAM", "Pipeline", "Backends", "Serving", "Client", "Embedded",
            "ServiceCommandLine", "Messaging", "CLIP", "SegGPT", "SAM2", "Video", "Tracking",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Services/segflow"),

        .executableTarget(name: "segflow-image-encoder", dependencies: [
            "Serving", "Backends", "ServiceCommandLine", "ServiceKit", "Messaging", "Tensor", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Services/image-encoder"),
        .executableTarget(name: "segflow-prompt-decoder", dependencies: [
            "Serving", "Backends", "ServiceCommandLine", "ServiceKit", "Tensor", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Services/prompt-decoder"),
        .executableTarget(name: "segflow-text-encoder", dependencies: [
            "Serving", "Backends", "ServiceCommandLine", "ServiceKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Services/text-encoder"),

        // Tests.
        .target(name: "TestSupport", dependencies: ["Tensor"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"], path: "Tests/TensorTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "Tensor"], path: "Tests/CheckpointTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "Tensor"], path: "Tests/ImagingTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SAMTests", dependencies: ["SAM", "Checkpoint", "Tensor", "Imaging"], path: "Tests/SAMTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CLIPTests", dependencies: ["CLIP", "Checkpoint", "Tensor"], path: "Tests/CLIPTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "CLIPSegTests", dependencies: ["TestSupport", "CLIPSeg", "CLIP", "Checkpoint", "Tensor", "Imaging"],
                    path: "Tests/CLIPSegTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "SAM2Tests", dependencies: ["TestSupport", "SAM2", "SAM", "Checkpoint", "Tensor", "Imaging"],
                    path: "Tests/SAM2Tests", resources: [.copy("Fixtures")]),
        .testTarget(name: "SegGPTTests", dependencies: ["TestSupport", "SegGPT", "Checkpoint", "Tensor", "Imaging"],
                    path: "Tests/SegGPTTests", resources: [.copy("Fixtures")]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "SAM", "Imaging", "Tensor"], path: "Tests/PipelineTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TrackingTests", dependencies: ["Tracking", "Pipeline", "SAM", "Imaging", "Tensor"], path: "Tests/TrackingTests",
                    exclude: ["Fixtures"]),  // read by path (#filePath), like IntegrationTests' photographs
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Backends", "SAM", "SAM2", "Tensor", "Imaging", "Messaging",
                                                       .product(name: "MetricsTestKit", package: "swift-metrics")], path: "Tests/ServingTests"),
        .testTarget(name: "ObservabilityTests", dependencies: ["Observability",
                                                             .product(name: "Metrics", package: "swift-metrics"),
                                                             .product(name: "Prometheus", package: "swift-prometheus")],
                    path: "Tests/ObservabilityTests"),
        .testTarget(name: "IntegrationTests", dependencies: ["Serving", "ServiceKit", "Backends", "Client", "Embedded", "Messaging", "SAM", "Imaging", "Pipeline", "CLIPSeg", "Checkpoint", "Tensor", "Video"],
                    path: "Tests/IntegrationTests"),
        .testTarget(name: "VideoTests", dependencies: ["Video", "Pipeline", "Imaging"], path: "Tests/VideoTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ServiceKitTests", dependencies: ["ServiceKit", "Tensor"], path: "Tests/ServiceKitTests"),
        .testTarget(name: "MessagingTests", dependencies: ["Messaging", "Tensor"], path: "Tests/MessagingTests"),
    ],
    swiftLanguageModes: [.v6]
)
