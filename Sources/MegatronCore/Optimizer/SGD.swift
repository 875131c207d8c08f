// SGD.swift — stochastic gradient descent with momentum, Megatron's `--optimizer sgd` (PyTorch's
// torch.optim.SGD, dampening 0, no Nesterov), weight decay coupled to the gradient as PyTorch does:
//     d = g + wd·p;  buf = μ·buf + d   (buf starts at 0, so the first step has buf = d);  p -= lr·buf
// with wd = 0 for biases and norm parameters and lr scaled by layer-wise decay, as for AdamW.
import Tensor

public enum SGD {
    /// The update of `count` contiguous elements, threaded, with g the stored gradient times
    /// `gradientScale` (the clipping coefficient). Vector body and scalar tail do identical
    /// arithmetic, so an element's result does not depend on where a range (or shard) starts.
    static func apply(
        params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>,
        momentumBuffer buf: UnsafeMutablePointer<Float>, count: Int, lr: Float, momentum: Float, weightDecay wd: Float,
        gradientScale: Float
    ) {
        ThreadBudget.parallelFor(count, grain: 1 << 14) { r in
            var i = r.lowerBound
            let mu = F16(repeating: momentum), decay = F16(repeating: wd), rate = F16(repeating: lr)
            let scale = F16(repeating: gradientScale)
            while i + 16 <= r.upperBound {
                let pi = load16(p, i)
                let d = (load16(g, i) * scale).addingProduct(decay, pi)
                let b = d.addingProduct(mu, load16(buf, i))
                store16(b, buf, i)
                store16(pi.addingProduct(-rate, b), p, i)
                i += 16
            }
            while i < r.upperBound {
                let d = (g[i] * gradientScale).addingProduct(wd, p[i])
                let b = d.addingProduct(momentum, buf[i])
                buf[i] = b
                p[i] = p[i].addingProduct(-lr, b)
                i += 1
            }
        }
    }
}
