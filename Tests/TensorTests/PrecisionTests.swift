// PrecisionTests.swift — the reduced-precision primitives the bf16/fp16 model uses: in-place fp16
// rounding against Swift's own Float16 conversion (an independent nearest-even implementation) on
// edge values (ties, the largest half, the overflow threshold 65520, subnormals, ±0, ±∞) and a
// million random values, both paths; in-place bf16 rounding equal to the bit-exact BF16.round; the
// 16-bit words a layer keeps (rounding while keeping = rounding; restoring = the rounded values); and
// the GEMM on fp32 operands (rounded while packed) equal bit for bit to the GEMM on the same values
// pre-rounded to bf16 bits, on every available kernel (the vector packers included), every transpose,
// and with fp32 A beside B as bits (as a bf16 weight gradient reads a held input).
import Tensor
import XCTest

final class PrecisionTests: XCTestCase {
    func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(UInt32(truncatingIfNeeded: state >> 33)) / Float(UInt32.max) * 2 - 1) * scale
        }
    }

    func testFP16RoundingMatchesFloat16() {
        var inputs: [Float] = [
            0, -0.0, 1, -1, 65504, -65504, 65519.996, 65520, -65520, 1e9, .infinity, -.infinity,
            0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-14, 0x1.ffcp-15, 1 + 0x1p-11, 1 + 0x1.8p-10, 2049, 2051, 0.1,
        ]
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        for _ in 0..<1_000_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            // Exponents around fp16's range (2^-30 … 2^20), random mantissas and signs.
            let bits = UInt32(truncatingIfNeeded: state >> 32)
            let exponent = UInt32(97 + (bits >> 23) % 51)
            inputs.append(Float(bitPattern: (bits & 0x8000_0000) | exponent << 23 | (bits & 0x7F_FFFF)))
        }
        let expected = inputs.map { Float(Float16($0)) }
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            var x = inputs
            x.withUnsafeMutableBufferPointer { Precision.fp16.round($0.baseAddress!, count: $0.count) }
            var mismatches = 0
            for i in x.indices where x[i].bitPattern != expected[i].bitPattern {
                if mismatches < 5 { XCTFail("\(kernel): \(inputs[i]) → \(x[i]), Float16 gives \(expected[i])") }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(kernel)")
            XCTAssertEqual(x[6], 65504, "just below the threshold stays finite")
            XCTAssertEqual(x[7], .infinity, "65520 overflows to ∞ (the loss scaler's signal)")
        }
    }

    func testBF16InPlaceRoundingEqualsBitExactRounding() {
        var x =
            randomFloats(100_003, seed: 7, scale: 1000) + [
                Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), .infinity,
            ]
        var bits = [UInt16](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { s in
            bits.withUnsafeMutableBufferPointer { BF16.round(s.baseAddress!, into: $0.baseAddress!, count: s.count) }
        }
        x.withUnsafeMutableBufferPointer { Precision.bf16.round($0.baseAddress!, count: $0.count) }
        for i in x.indices { XCTAssertEqual(x[i].bitPattern, UInt32(bits[i]) << 16, "element \(i)") }
    }

    /// A gradient copied and rounded in one pass (TransformerLayer.branchGradient) equals rounding in
    /// place, bit for bit, and leaves its source as it was — edge values, an odd length, every path.
    func testRoundIntoEqualsRoundingInPlace() {
        let inputs =
            randomFloats(70_001, seed: 12, scale: 3000) + [
                0, -0.0, 65504, 65520, -1e9, .infinity, -.infinity, .nan, 0x1p-24, 0x1p-25, 0x1p-130,
                Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
            ]
        for precision in Precision.allCases {
            for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
                BF16.force(kernel)
                defer { BF16.force(nil) }
                var expected = inputs, source = inputs
                var copied = [Float](repeating: 7, count: inputs.count)
                expected.withUnsafeMutableBufferPointer { precision.round($0.baseAddress!, count: $0.count) }
                source.withUnsafeMutableBufferPointer { x in
                    copied.withUnsafeMutableBufferPointer {
                        precision.round(x.baseAddress!, into: $0.baseAddress!, count: x.count)
                    }
                }
                XCTAssertEqual(source.map(\.bitPattern), inputs.map(\.bitPattern), "\(precision): the source changed")
                let wrong = inputs.indices.filter { copied[$0].bitPattern != expected[$0].bitPattern }
                XCTAssertEqual(
                    wrong.count, 0, "\(precision) \(kernel): first at \(wrong.first.map { inputs[$0] } ?? 0)")
            }
        }
    }

    /// What a layer keeps of a tensor in 16-bit runs (HeldTensor): rounding while keeping leaves the
    /// values exactly as `round` does, and restoring the words gives those values back bit for bit —
    /// edge values, a length that is no multiple of the vector width, every kernel's path.
    func testRoundKeepingEqualsRoundingAndRestoresExactly() {
        let inputs =
            randomFloats(100_003, seed: 11, scale: 3000) + [
                0, -0.0, 65504, 65520, -1e9, .infinity, -.infinity, 0x1p-24, 0x1p-25, 0x1p-130,
                Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
            ]
        for precision in [Precision.bf16, .fp16] {
            for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
                BF16.force(kernel)
                defer { BF16.force(nil) }
                var expected = inputs, kept = inputs
                var words = [UInt16](repeating: 0, count: inputs.count)
                var restored = [Float](repeating: .nan, count: inputs.count)
                expected.withUnsafeMutableBufferPointer { precision.round($0.baseAddress!, count: $0.count) }
                kept.withUnsafeMutableBufferPointer { x in
                    words.withUnsafeMutableBufferPointer {
                        precision.roundKeeping(x.baseAddress!, words: $0.baseAddress!, count: x.count)
                    }
                }
                words.withUnsafeBufferPointer { w in
                    restored.withUnsafeMutableBufferPointer {
                        precision.restore(w.baseAddress!, into: $0.baseAddress!, count: w.count)
                    }
                }
                var mismatches = 0
                for i in inputs.indices
                where kept[i].bitPattern != expected[i].bitPattern || restored[i].bitPattern != expected[i].bitPattern {
                    if mismatches < 5 {
                        XCTFail(
                            "\(precision) \(kernel): \(inputs[i]) → kept \(kept[i]), restored \(restored[i]), round gives \(expected[i])"
                        )
                    }
                    mismatches += 1
                }
                XCTAssertEqual(mismatches, 0, "\(precision) \(kernel)")
            }
        }
    }

    func testFloatOperandGEMMEqualsRoundedBitsGEMM() {
        // Small and odd, large enough for the vector packers (whole 16-column panels, 32-wide k runs),
        // past the AVX512-BF16 kernel's blocks (128-row chunks of A, 512 pairs of k) and the AMX
        // kernel's (C tiles of 256 rows × 384 columns, 256 pairs of k).
        for (m, n, k) in [(37, 45, 29), (70, 64, 101), (33, 48, 1100), (203, 37, 1031), (270, 390, 530)] {
            checkFloatOperands(m: m, n: n, k: k)
        }
    }

    func checkFloatOperands(m: Int, n: Int, k: Int) {
        let a = randomFloats(m * k, seed: 1), b = randomFloats(k * n, seed: 2)
        var aBits = [UInt16](repeating: 0, count: a.count), bBits = [UInt16](repeating: 0, count: b.count)
        a.withUnsafeBufferPointer { s in
            aBits.withUnsafeMutableBufferPointer { BF16.round(s.baseAddress!, into: $0.baseAddress!, count: s.count) }
        }
        b.withUnsafeBufferPointer { s in
            bBits.withUnsafeMutableBufferPointer { BF16.round(s.baseAddress!, into: $0.baseAddress!, count: s.count) }
        }
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let lda = ta ? m : k, ldb = tb ? k : n
                var fromFloats = [Float](repeating: 0.5, count: m * n), fromBits = fromFloats
                BF16.gemm(
                    transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: &fromFloats,
                    ldc: n)
                BF16.gemm(
                    transA: ta, transB: tb, m: m, n: n, k: k, a: aBits, lda: lda, b: bBits, ldb: ldb, beta: 1,
                    c: &fromBits, ldc: n)
                XCTAssertEqual(
                    fromFloats.map(\.bitPattern), fromBits.map(\.bitPattern),
                    "\(kernel) \(m)×\(n)×\(k) transA \(ta) transB \(tb)")
                // fp32 A with B as words (a bf16 weight gradient reading a held input): the same bits.
                var mixed = [Float](repeating: 0.5, count: m * n)
                BF16.gemm(
                    transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: bBits, ldb: ldb, beta: 1, c: &mixed,
                    ldc: n)
                XCTAssertEqual(
                    fromFloats.map(\.bitPattern), mixed.map(\.bitPattern),
                    "\(kernel) \(m)×\(n)×\(k) transA \(ta) transB \(tb), B as words")
            }
        }
    }

    func testFinishedProductEqualsProductThenSeparatePasses() throws {
        // BF16.gemmKeeping (bias, bf16 rounding and keeping, and FC1's GELU done as each result is
        // stored) against gemm over C pre-filled with the bias, roundKeeping, the Swift GELU and
        // roundKeeping again: bit for bit on every kernel, with the sums spread over GELU's whole
        // range (its exp clamps and underflow included), n off the 16- and 32-column tiles, k past
        // the kernels' k blocks, and a NaN and infinities in the bias. The GELU's fp32 value reaches
        // a word only through bf16 rounding, so one differing rounding step inside it would flip a
        // word about once in 2¹⁶ values: the million results of the last shape see that.
        guard BF16.available else { throw XCTSkip("no bf16 instruction set on this CPU") }
        for (m, n, k, spread) in [(37, 45, 29, 60), (70, 64, 101, 60), (33, 50, 1100, 60), (512, 2048, 8, 4)] {
            let a = randomFloats(m * k, seed: 3), w = randomFloats(n * k, seed: 4)
            var bias = randomFloats(n, seed: 5, scale: Float(spread))
            (bias[0], bias[1], bias[2]) = (.nan, .infinity, -.infinity)
            for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
                BF16.force(kernel)
                defer { BF16.force(nil) }
                for (withBias, withGELU) in [(true, true), (true, false), (false, false)] {
                    var expected = [Float](repeating: 0, count: m * n)
                    if withBias { for i in 0..<m { for j in 0..<n { expected[i * n + j] = bias[j] } } }
                    BF16.gemm(
                        transB: true, m: m, n: n, k: k, a: a, lda: k, b: w, ldb: k, beta: withBias ? 1 : 0,
                        c: &expected, ldc: n)
                    var expectedWords = [UInt16](repeating: 0, count: m * n), expectedGELU = expectedWords
                    Precision.bf16.roundKeeping(&expected, words: &expectedWords, count: m * n)
                    if withGELU {
                        expected = expected.map(\.geluValue)
                        Precision.bf16.roundKeeping(&expected, words: &expectedGELU, count: m * n)
                    }
                    var c = [Float](repeating: 7, count: m * n)
                    var words = [UInt16](repeating: 1, count: m * n), geluWords = words
                    bias.withUnsafeBufferPointer { b in
                        words.withUnsafeMutableBufferPointer { kw in
                            geluWords.withUnsafeMutableBufferPointer { gw in
                                BF16.gemmKeeping(
                                    m: m, n: n, k: k, a: a, lda: k, b: w, ldb: k, c: &c, ldc: n,
                                    bias: withBias ? b.baseAddress! : nil, keep: kw.baseAddress!,
                                    geluKeep: withGELU ? gw.baseAddress! : nil)
                            }
                        }
                    }
                    let what = "\(kernel) \(m)×\(n)×\(k) bias \(withBias) gelu \(withGELU)"
                    XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), what)
                    XCTAssertEqual(words, expectedWords, what)
                    if withGELU { XCTAssertEqual(geluWords, expectedGELU, what) }
                }
            }
        }
    }

    func testFinishedGELUEqualsSeparatePassesOnEveryBF16Value() throws {
        // FC1's GELU meets only values already rounded to bf16, so all 65,536 of them (NaNs,
        // infinities and subnormals included), as the biases of a 1 × 65,536 × 1 product of zeros,
        // cover every input the finished product's GELU can see.
        guard BF16.available else { throw XCTSkip("no bf16 instruction set on this CPU") }
        let n = 65536
        let bias = (0..<n).map { Float(bitPattern: UInt32($0) << 16) }, zero: [Float] = [0]
        let w = [Float](repeating: 0, count: n)
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            var expected = bias, expectedWords = [UInt16](repeating: 0, count: n), expectedGELU = expectedWords
            BF16.gemm(transB: true, m: 1, n: n, k: 1, a: zero, lda: 1, b: w, ldb: 1, beta: 1, c: &expected, ldc: n)
            Precision.bf16.roundKeeping(&expected, words: &expectedWords, count: n)
            expected = expected.map(\.geluValue)
            Precision.bf16.roundKeeping(&expected, words: &expectedGELU, count: n)
            var c = [Float](repeating: 7, count: n)
            var words = [UInt16](repeating: 1, count: n), geluWords = words
            BF16.gemmKeeping(
                m: 1, n: n, k: 1, a: zero, lda: 1, b: w, ldb: 1, c: &c, ldc: n, bias: bias, keep: &words,
                geluKeep: &geluWords)
            for (name, got, want) in [
                ("words", words, expectedWords), ("GELU words", geluWords, expectedGELU),
                ("values", c.map { UInt16($0.bitPattern >> 16) }, expected.map { UInt16($0.bitPattern >> 16) }),
            ] {
                let bad = (0..<n).filter { got[$0] != want[$0] }
                XCTAssertTrue(
                    bad.isEmpty,
                    "\(kernel) \(name): \(bad.count) differ, first for bias bits \(bad.first ?? 0): "
                        + "\(bad.first.map { got[$0] } ?? 0) against \(bad.first.map { want[$0] } ?? 0)")
            }
            XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern), "\(kernel)")
        }
    }

    func testGELUGradientFinishedProductEqualsSeparatePassesOnEveryBF16Value() throws {
        // FC2's input-gradient product finished as the GELU's backward pass: the GELU's input is
        // FC1's kept output, a bf16 word, so all 65,536 of them (NaNs, infinities and subnormals
        // included) as the columns of a 3 × 65,536 × 5 product cover every input GELU′ can see,
        // each against three different gradients.
        guard BF16.available else { throw XCTSkip("no bf16 instruction set on this CPU") }
        let (m, n, k) = (3, 65536, 5)
        var state: UInt64 = 21
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 22)
        }
        let a = (0..<(m * k)).map { _ in random() }, b = (0..<(k * n)).map { _ in random() }
        let fc1 = (0..<(m * n)).map { UInt16(truncatingIfNeeded: $0) }
        let x = fc1.map { Float(bitPattern: UInt32($0) << 16) }
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            var expected = [Float](repeating: 0, count: m * n)
            BF16.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &expected, ldc: n)
            expected = (0..<(m * n)).map { expected[$0] * x[$0].geluDerivative }  // GELU.backward's arithmetic
            Precision.bf16.round(&expected, count: m * n)
            var c = [Float](repeating: 7, count: m * n)
            BF16.gemmFinishingGELUGradient(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n, geluInput: fc1)
            let bad = (0..<(m * n)).filter { c[$0].bitPattern != expected[$0].bitPattern }
            XCTAssertTrue(
                bad.isEmpty,
                "\(kernel): \(bad.count) differ, first at \(bad.first ?? 0) (x bits \(bad.first.map { fc1[$0] } ?? 0)): "
                    + "\(bad.first.map { c[$0] } ?? 0) against \(bad.first.map { expected[$0] } ?? 0)")
            XCTAssertGreaterThan(
                Set(expected.filter(\.isFinite)).count, 10000, "too few distinct gradients to mean much")
            // k past one k block (1,024): the finishing happens once, after the last block's sums.
            let (m2, n2, k2) = (9, 40, 1100)
            let a2 = (0..<(m2 * k2)).map { _ in random() }, b2 = (0..<(k2 * n2)).map { _ in random() }
            let fc12 = (0..<(m2 * n2)).map { _ in UInt16(Float(random() * 0.01).bitPattern >> 16) }
            var want = [Float](repeating: 0, count: m2 * n2), got = [Float](repeating: 7, count: m2 * n2)
            BF16.gemm(m: m2, n: n2, k: k2, a: a2, lda: k2, b: b2, ldb: n2, c: &want, ldc: n2)
            want = (0..<(m2 * n2)).map { want[$0] * Float(bitPattern: UInt32(fc12[$0]) << 16).geluDerivative }
            Precision.bf16.round(&want, count: m2 * n2)
            BF16.gemmFinishingGELUGradient(
                m: m2, n: n2, k: k2, a: a2, lda: k2, b: b2, ldb: n2, c: &got, ldc: n2, geluInput: fc12)
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(kernel), k \(k2)")
        }
    }
}
