import Foundation
import Tensor
import XCTest

/// Swift kernels vs PyTorch outputs written by Tests/Reference/make_kernel_goldens.py
/// (torch 2.x CPU, segment_anything's own helpers). One test per op family; each case
/// name in the fixture appears in the failure message.
final class GoldenTests: XCTestCase {
    let g = Goldens.shared

    func testFixtureIsComplete() {
        // Guards against a truncated or regenerated-without-cases fixture.
        XCTAssertGreaterThanOrEqual(g.cases.count, 46)
    }

    func testLinearAndMatmul() {
        for (name, c) in g.cases(op: "linear") {
            let b = c.inputs["bias"]
            assertClose(Ops.linear(c.input("x"), weight: c.input("weight"), bias: b), c.output(), tol: Tol.goldenGemmRelTol, name)
        }
        for (name, c) in g.cases(op: "matmul") {
            let y = Ops.matmul(c.input("a"), c.input("b"), transposeA: c.bool("transposeA"), transposeB: c.bool("transposeB"))
            assertClose(y, c.output(), tol: Tol.goldenGemmRelTol, name)
        }
    }

    func testConv2d() {
        for (name, c) in g.cases(op: "conv2d") {
            let y = Ops.conv2d(c.input("x"), weight: c.input("weight"), bias: c.inputs["bias"], stride: c.size2("stride"),
                               padding: c.size2("padding"), dilation: c.size2("dilation"), groups: c.int("groups"))
            assertClose(y, c.output(), tol: Tol.goldenGemmRelTol, name)
        }
    }

    func testConvTranspose2d() {
        for (name, c) in g.cases(op: "conv_transpose2d") {
            let y = Ops.convTranspose2d(c.input("x"), weight: c.input("weight"), bias: c.inputs["bias"],
                                        stride: c.size2("stride"), padding: c.size2("padding"),
                                        outputPadding: c.size2("output_padding"), dilation: c.size2("dilation"),
                                        groups: c.int("groups"))
            assertClose(y, c.output(), tol: Tol.goldenGemmRelTol, name)
        }
    }

    func testNorms() {
        for (name, c) in g.cases(op: "layer_norm") {
            assertClose(Ops.layerNorm(c.input("x"), weight: c.input("weight"), bias: c.input("bias"), eps: c.float("eps")),
                        c.output(), tol: Tol.goldenElementwiseRelTol, name)
        }
        for (name, c) in g.cases(op: "layer_norm2d") {
            assertClose(Ops.layerNorm2d(c.input("x"), weight: c.input("weight"), bias: c.input("bias"), eps: c.float("eps")),
                        c.output(), tol: Tol.goldenElementwiseRelTol, name)
        }
        for (name, c) in g.cases(op: "batch_norm") {
            let y = Ops.batchNorm(c.input("x"), runningMean: c.input("mean"), runningVar: c.input("var"),
                                  weight: c.input("weight"), bias: c.input("bias"), eps: c.float("eps"))
            assertClose(y, c.output(), tol: Tol.goldenElementwiseRelTol, name)
        }
    }

    func testActivations() {
        for (name, c) in g.cases(op: "activations") {
            let x = c.input("x")
            assertClose(Ops.gelu(x), c.output("gelu"), tol: Tol.goldenElementwiseRelTol, "\(name) gelu")
            assertClose(Ops.gelu(x, approximate: .tanh), c.output("gelu_tanh"), tol: Tol.goldenElementwiseRelTol, "\(name) gelu tanh")
            assertClose(Ops.quickGELU(x), c.output("quick_gelu"), tol: Tol.goldenElementwiseRelTol, "\(name) quickGELU")
            assertClose(Ops.relu(x), c.output("relu"), tol: Tol.goldenElementwiseRelTol, "\(name) relu")
            assertClose(Ops.sigmoid(x), c.output("sigmoid"), tol: Tol.goldenElementwiseRelTol, "\(name) sigmoid")
        }
        for (name, c) in g.cases(op: "softmax") {
            assertClose(Ops.softmax(c.input("x")), c.output(), tol: Tol.goldenElementwiseRelTol, name)
        }
    }

    func testAttention() {
        for (name, c) in g.cases(op: "attention") {
            let scale: Float? = c.params["scale"] == nil ? nil : c.float("scale")
            let y = Ops.attention(q: c.input("q"), k: c.input("k"), v: c.input("v"), scale: scale, bias: c.input("bias"))
            assertClose(y, c.output(), tol: Tol.goldenGemmRelTol, name)
        }
        for (name, c) in g.cases(op: "sam_attention") {
            let size = c.ints("size")
            let hw = (h: size[0], w: size[1])
            let q = c.input("q")
            let rp = Ops.decomposedRelPos(q: q, relPosH: c.input("rel_pos_h"), relPosW: c.input("rel_pos_w"), qSize: hw, kSize: hw)
            let y = Ops.attention(q: q, k: c.input("k"), v: c.input("v"), scale: c.float("scale"), relPos: rp)
            assertClose(y, c.output(), tol: Tol.goldenGemmRelTol, name)
        }
    }

    func testSAMRelPos() {
        for (name, c) in g.cases(op: "get_rel_pos") {
            assertClose(Ops.getRelPos(qSize: c.int("q_size"), kSize: c.int("k_size"), relPos: c.input("rel_pos")),
                        c.output(), tol: Tol.goldenResizeRelTol, name)
        }
        for (name, c) in g.cases(op: "add_decomposed_rel_pos") {
            let qs = c.ints("q_size"), ks = c.ints("k_size")
            let y = Ops.addDecomposedRelPos(attn: c.input("attn"), q: c.input("q"), relPosH: c.input("rel_pos_h"),
                                            relPosW: c.input("rel_pos_w"), qSize: (qs[0], qs[1]), kSize: (ks[0], ks[1]))
            assertClose(y, c.output(), tol: Tol.goldenGemmRelTol, name)
        }
    }

    func testWindows() {
        for (name, c) in g.cases(op: "window") {
            let ws = c.int("window_size")
            let x = c.input("x")
            let (wins, pad) = Ops.windowPartition(x, windowSize: ws)
            XCTAssertEqual([pad.h, pad.w], c.ints("pad_hw"), name)
            assertClose(wins, c.output("windows"), tol: Tol.copyRelTol, "\(name) partition")
            let back = Ops.windowUnpartition(c.output("windows"), windowSize: ws, padHW: pad, hw: (x.shape[1], x.shape[2]))
            assertClose(back, c.output("unpartitioned"), tol: Tol.copyRelTol, "\(name) unpartition")
        }
    }

    func testInterpolation() {
        for (name, c) in g.cases(op: "bilinear") {
            let y = Ops.interpolateBilinear(c.input("x"), size: c.size2("size"), alignCorners: c.bool("align_corners"),
                                            antialias: c.bool("antialias"))
            assertClose(y, c.output(), tol: Tol.goldenResizeRelTol, name)
        }
        for (name, c) in g.cases(op: "nearest") {
            assertClose(Ops.interpolateNearest(c.input("x"), size: c.size2("size")), c.output(), tol: Tol.copyRelTol, name)
        }
        for (name, c) in g.cases(op: "linear1d") {
            assertClose(Ops.interpolateLinear(c.input("x"), size: c.int("size")), c.output(), tol: Tol.goldenResizeRelTol, name)
        }
    }

    func testShapeAndElementwise() {
        for (name, c) in g.cases(op: "pad") {
            let amounts = (c.params["pad"] as! [[NSNumber]]).map { (before: $0[0].intValue, after: $0[1].intValue) }
            assertClose(Ops.pad(c.input("x"), amounts, value: c.float("value")), c.output(), tol: Tol.copyRelTol, name)
        }
        for (name, c) in g.cases(op: "permute") {
            assertClose(Ops.permute(c.input("x"), c.ints("perm")), c.output(), tol: Tol.copyRelTol, name)
        }
        for (name, c) in g.cases(op: "broadcast") {
            let a = c.input("a"), b = c.input("b")
            // torch rounds each op once in float32 exactly as we do: identical bits expected.
            assertClose(a + b, c.output("add"), tol: Tol.elementwiseRelTol, "\(name) add")
            assertClose(a - b, c.output("sub"), tol: Tol.elementwiseRelTol, "\(name) sub")
            assertClose(a * b, c.output("mul"), tol: Tol.elementwiseRelTol, "\(name) mul")
            assertClose(a / b, c.output("div"), tol: Tol.elementwiseRelTol, "\(name) div")
        }
        for (name, c) in g.cases(op: "reduce") {
            let x = c.input("x")
            assertClose(Ops.sum(x, axis: 1), c.output("sum1"), tol: Tol.goldenElementwiseRelTol, "\(name) sum")
            assertClose(Ops.mean(x, axis: -1, keepDims: true), c.output("mean_last"), tol: Tol.goldenElementwiseRelTol, "\(name) mean")
        }
    }
}
