//! The numeric kernels: the only entry points the model calls for its heavy loops.
//!
//! Each operation has a scalar version in [`scalar`] that always compiles and is the test
//! oracle; faster versions for an instruction set live in their own file and are chosen
//! here at compile time by `cfg(target_feature)`.

pub mod scalar;

/// `out[i] = sum_j w[i*n + j] * x[j]` for `i in 0..out.len()`, `n = x.len()` (fp32).
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    debug_assert_eq!(w.len(), out.len() * x.len());
    scalar::matmul(out, x, w);
}

/// Q8_0 matmul as runq.c: per row, each group's exact integer dot of the int8 values, times
/// `w_scale * x_scale`, the group results summed in order. `x` is quantized with [`quantize`].
pub fn matmul_q8(out: &mut [f32], xq: &[i8], xs: &[f32], wq: &[i8], ws: &[f32], group_size: usize) {
    debug_assert_eq!(wq.len(), out.len() * xq.len());
    scalar::matmul_q8(out, xq, xs, wq, ws, group_size);
}

/// Quantizes `x` per group of `group_size` into int8 values `xq` and scales `xs`, with C's
/// `round()` (half away from zero), as runq.c's `quantize`.
pub fn quantize(xq: &mut [i8], xs: &mut [f32], x: &[f32], group_size: usize) {
    scalar::quantize(xq, xs, x, group_size);
}

/// `out[j] = w[j] * (x[j] / sqrt(mean(x^2) + 1e-5))`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32]) {
    scalar::rmsnorm(out, x, w);
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    scalar::softmax(x);
}

/// The dot product of two equal-length vectors (attention scores).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    scalar::dot(a, b)
}

/// `out += a * v` (the attention's weighted sum of values).
pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    scalar::axpy(out, a, v);
}
