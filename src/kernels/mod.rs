//! The numeric kernels: the only entry points the model calls for its heavy loops.
//!
//! Each operation has a scalar version in [`scalar`] that always compiles and is the test
//! oracle; faster versions for an instruction set live in their own file:
//! - `simd128.rs`: wasm32 with `+simd128` (and `+relaxed-simd`), chosen at compile time by
//!   `cfg(target_feature)`; the wasm scalar build (no simd128) uses [`scalar`].
//! - `avx2.rs`: x86_64 with AVX2 + FMA, chosen at run time (falls back to [`scalar`]).
//!
//! fp32 SIMD sums run in another order than run.c (lanes, then a horizontal sum): the golden
//! cases are stable under that (they agree across run.c's -O0/-O3/-Ofast builds). The int8
//! kernels are exact: integer group dots, groups added in runq.c's order.

pub mod math;
pub mod scalar;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128 as fast;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
use avx2 as fast;

/// The scalar kernels stand in where no SIMD file exists (e.g. the wasm scalar build).
#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
use scalar as fast;

/// Which kernel set this build runs: "simd128", "simd128+relaxed", "avx2", or "scalar".
pub fn backend() -> &'static str {
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    return "simd128+relaxed";
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        not(target_feature = "relaxed-simd")
    ))]
    return "simd128";
    #[cfg(target_arch = "x86_64")]
    return if avx2::available() { "avx2" } else { "scalar" };
    #[allow(unreachable_code)]
    "scalar"
}

/// `out[i] = sum_j w[i*n + j] * x[j]` for `i in 0..out.len()`, `n = x.len()` (fp32).
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    debug_assert_eq!(w.len(), out.len() * x.len());
    fast::matmul(out, x, w);
}

/// Q8_0 matmul as runq.c: per row, each group's exact integer dot of the int8 values, times
/// `w_scale * x_scale`, the group results summed in order. `x` is quantized with [`quantize`]
/// (int8 values held as i16: the SIMD kernels need them widened, so they are stored so once).
pub fn matmul_q8(
    out: &mut [f32],
    xq: &[i16],
    xs: &[f32],
    wq: &[i8],
    ws: &[f32],
    group_size: usize,
) {
    debug_assert_eq!(wq.len(), out.len() * xq.len());
    fast::matmul_q8(out, xq, xs, wq, ws, group_size);
}

/// Rows per block of a batched matmul: a block of weights (about 16 KB) stays in the L1 cache
/// while every token of the batch goes through it, so each weight is read from memory once
/// per batch instead of once per token. A multiple of 4 (the SIMD kernels' row tile).
fn rows_per_block(row_bytes: usize) -> usize {
    ((16 * 1024 / row_bytes.max(1)) & !3).max(4)
}

/// Batched [`matmul`]: for each row `t` of `x (T, n)`, `out[t * stride..][..d] = w · x_t`
/// (`w` is `(d, n)`), each row the very sums `matmul` computes. One row is `matmul` itself;
/// more go through `w` in blocks, each read from memory once for every row (prefill).
pub fn matmul_batch(out: &mut [f32], stride: usize, x: &[f32], w: &[f32], n: usize) {
    let d = w.len() / n;
    if x.len() == n {
        return matmul(&mut out[..d], x, w);
    }
    let block = rows_per_block(4 * n);
    for r0 in (0..d).step_by(block) {
        let r1 = (r0 + block).min(d);
        let wb = &w[r0 * n..r1 * n];
        for (t, x) in x.chunks_exact(n).enumerate() {
            fast::matmul(&mut out[t * stride + r0..t * stride + r1], x, wb);
        }
    }
}

/// Batched [`matmul_q8`]: `xq (T, n)` and `xs (T, n / group_size)` hold T quantized rows;
/// row `t`'s output goes to `out[t * stride..][..d]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_q8_batch(
    out: &mut [f32],
    stride: usize,
    xq: &[i16],
    xs: &[f32],
    wq: &[i8],
    ws: &[f32],
    group_size: usize,
    n: usize,
) {
    let d = wq.len() / n;
    let groups = n / group_size;
    if xq.len() == n {
        return matmul_q8(&mut out[..d], xq, xs, wq, ws, group_size);
    }
    let block = rows_per_block(n + 4 * groups);
    let rows = xq.len() / n;
    for r0 in (0..d).step_by(block) {
        let r1 = (r0 + block).min(d);
        let (wb, sb) = (&wq[r0 * n..r1 * n], &ws[r0 * groups..r1 * groups]);
        // Two tokens at a time: the SIMD kernel widens each weight chunk once for both.
        let mut t = 0;
        while t < rows {
            let (xq0, xs0) = (&xq[t * n..(t + 1) * n], &xs[t * groups..(t + 1) * groups]);
            if t + 1 < rows {
                let (xq1, xs1) =
                    (&xq[(t + 1) * n..(t + 2) * n], &xs[(t + 1) * groups..(t + 2) * groups]);
                let (o0, o1) = out[t * stride..].split_at_mut(stride);
                let pair = [&mut o0[r0..r1], &mut o1[r0..r1]];
                matmul_q8_pair(pair, [xq0, xq1], [xs0, xs1], wb, sb, group_size);
                t += 2;
            } else {
                fast::matmul_q8(
                    &mut out[t * stride + r0..t * stride + r1],
                    xq0,
                    xs0,
                    wb,
                    sb,
                    group_size,
                );
                t += 1;
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128::matmul_q8_pair;

/// [`matmul_q8`] of two activation rows (where no SIMD kernel does both at once).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn matmul_q8_pair(
    out: [&mut [f32]; 2],
    xq: [&[i16]; 2],
    xs: [&[f32]; 2],
    wq: &[i8],
    ws: &[f32],
    gs: usize,
) {
    let [o0, o1] = out;
    fast::matmul_q8(o0, xq[0], xs[0], wq, ws, gs);
    fast::matmul_q8(o1, xq[1], xs[1], wq, ws, gs);
}

/// Quantizes `x` per group of `group_size` into int8 values `xq` (held as i16) and scales
/// `xs`, with C's `round()` (half away from zero), as runq.c's `quantize`.
pub fn quantize(xq: &mut [i16], xs: &mut [f32], x: &[f32], group_size: usize) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::quantize(xq, xs, x, group_size);
    #[allow(unreachable_code)]
    scalar::quantize(xq, xs, x, group_size);
}

/// `out[j] = w[j] * (x[j] / sqrt(mean(x^2) + 1e-5))`. Kept in run.c's sequential order on
/// every target: it costs little, and an int8 golden case (aidreams260K-v2, whose matmuls are
/// exact) flips when this sum and the attention dots both change order.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32]) {
    scalar::rmsnorm(out, x, w);
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    scalar::softmax(x);
}

/// The dot product of two equal-length vectors (attention scores).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    fast::dot(a, b)
}

/// `out += a * v`.
pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    fast::axpy(out, a, v);
}

/// Attention scores: `scores[t] = dot(q, keys[t * stride..][..q.len()])` for every `t`, each
/// the very sum [`dot`] computes.
pub fn dots(scores: &mut [f32], q: &[f32], keys: &[f32], stride: usize) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::dots(scores, q, keys, stride);
    #[allow(unreachable_code)]
    for (t, s) in scores.iter_mut().enumerate() {
        *s = dot(q, &keys[t * stride..][..q.len()]);
    }
}

/// The attention's weighted sum of values: `out += att[t] * values[t * stride..][..out.len()]`
/// for `t = 0, 1, ...` in order, bit for bit the sequence of [`axpy`] calls.
pub fn weighted_sum(out: &mut [f32], att: &[f32], values: &[f32], stride: usize) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::weighted_sum(out, att, values, stride);
    #[allow(unreachable_code)]
    let n = out.len();
    for (t, &a) in att.iter().enumerate() {
        axpy(out, a, &values[t * stride..][..n]);
    }
}

/// Every kernel against the scalar oracle, on sizes that leave tails for every tile
/// (natively, and in wasm under `wasm-pack test`). fp32: relative tolerance (the sums run
/// in another order); int8 matmul and quantize: exact.
#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// xorshift64* values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                let u = ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32 >> 8) as f32
                    / 16_777_216.0;
                u * 2.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], n: usize) {
        assert_eq!(a.len(), b.len());
        for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
            // |error| of a length-n sum of products of values in [-1, 1) is at most ~n * eps * n.
            let tol = 1e-6 * (n as f32).max(1.0) * (1.0 + b.abs());
            assert!((a - b).abs() <= tol, "index {i}: {a} vs oracle {b} (n {n})");
        }
    }

    const SIZES: [(usize, usize); 9] =
        [(1, 1), (3, 5), (4, 16), (5, 17), (7, 33), (9, 64), (13, 100), (17, 288), (37, 20)];

    #[test]
    fn matmul_matches_scalar() {
        for (d, n) in SIZES {
            let (x, w) = (values(n, 3), values(d * n, 5));
            let (mut fast, mut oracle) = (vec![0.0; d], vec![0.0; d]);
            matmul(&mut fast, &x, &w);
            scalar::matmul(&mut oracle, &x, &w);
            close(&fast, &oracle, n);
        }
    }

    /// A model split over shards gives each shard some rows of every matrix: a row's result
    /// must be the same bits whatever rows share its call (tiles, remainders, quarters).
    #[test]
    fn a_row_is_the_same_whatever_rows_share_its_call() {
        for (d, n) in [(13, 100), (37, 20), (17, 288), (86, 64), (9, 172)] {
            let (x, w) = (values(n, 41), values(d * n, 43));
            let mut whole = vec![0.0; d];
            matmul(&mut whole, &x, &w);
            for split in [1, 2, 3, 5, d / 2, d - 1] {
                let (mut a, mut b) = (vec![0.0; split], vec![0.0; d - split]);
                matmul(&mut a, &x, &w[..split * n]);
                matmul(&mut b, &x, &w[split * n..]);
                assert_eq!([a, b].concat(), whole, "fp32 d {d} n {n} split {split}");
            }
            for gs in [4, 16, 32] {
                if n % gs != 0 {
                    continue;
                }
                let (xq, xs, wq, ws) = q8(d, n, gs, 47);
                let mut whole = vec![0.0; d];
                matmul_q8(&mut whole, &xq, &xs, &wq, &ws, gs);
                for split in [1, 3, d / 2, d - 1] {
                    let (mut a, mut b) = (vec![0.0; split], vec![0.0; d - split]);
                    let g = n / gs;
                    matmul_q8(&mut a, &xq, &xs, &wq[..split * n], &ws[..split * g], gs);
                    matmul_q8(&mut b, &xq, &xs, &wq[split * n..], &ws[split * g..], gs);
                    assert_eq!([a, b].concat(), whole, "q8 d {d} n {n} gs {gs} split {split}");
                }
            }
        }
    }

    #[test]
    fn matmul_batch_equals_matmul_per_row() {
        for (d, n) in SIZES {
            for t in [1, 2, 5] {
                let (x, w) = (values(t * n, 7), values(d * n, 9));
                let mut batch = vec![0.0; t * d];
                matmul_batch(&mut batch, d, &x, &w, n);
                for (row, x) in batch.chunks_exact(d).zip(x.chunks_exact(n)) {
                    let mut one = vec![0.0; d];
                    matmul(&mut one, x, &w);
                    assert_eq!(row, &one[..], "d {d} n {n} t {t}");
                }
            }
        }
    }

    /// Q8 inputs as the model makes them: weights and activations quantized by the oracle.
    fn q8(d: usize, n: usize, gs: usize, seed: u64) -> (Vec<i16>, Vec<f32>, Vec<i8>, Vec<f32>) {
        let (x, w) = (values(n, seed), values(d * n, seed + 1));
        let (mut xq, mut xs) = (vec![0; n], vec![0.0; n / gs]);
        let (mut wq, mut ws) = (vec![0; d * n], vec![0.0; d * n / gs]);
        scalar::quantize(&mut xq, &mut xs, &x, gs);
        scalar::quantize(&mut wq, &mut ws, &w, gs);
        (xq, xs, wq.into_iter().map(|q| q as i8).collect(), ws)
    }

    #[test]
    fn matmul_q8_is_exact() {
        for (d, groups) in [(1, 1), (3, 2), (4, 1), (5, 3), (9, 5), (13, 4)] {
            for gs in [4, 16, 32, 48, 64] {
                let n = groups * gs;
                let (xq, xs, wq, ws) = q8(d, n, gs, 11);
                let (mut fast, mut oracle) = (vec![0.0; d], vec![0.0; d]);
                matmul_q8(&mut fast, &xq, &xs, &wq, &ws, gs);
                scalar::matmul_q8(&mut oracle, &xq, &xs, &wq, &ws, gs);
                assert_eq!(fast, oracle, "d {d} n {n} gs {gs}");
                // A batch of 5 different rows (pairs and an odd one) against the oracle per row.
                let t = 5;
                let (mut xqt, mut xst) = (Vec::new(), Vec::new());
                for k in 0..t as u64 {
                    let (xq, xs, _, _) = q8(1, n, gs, 100 + k);
                    xqt.extend(xq);
                    xst.extend(xs);
                }
                let mut batch = vec![0.0; t * d];
                matmul_q8_batch(&mut batch, d, &xqt, &xst, &wq, &ws, gs, n);
                for ((row, xq), xs) in
                    batch.chunks_exact(d).zip(xqt.chunks_exact(n)).zip(xst.chunks_exact(n / gs))
                {
                    let mut one = vec![0.0; d];
                    scalar::matmul_q8(&mut one, xq, xs, &wq, &ws, gs);
                    assert_eq!(row, &one[..], "batch d {d} n {n} gs {gs}");
                }
            }
        }
    }

    #[test]
    fn quantize_is_exact() {
        for gs in [4, 16, 32, 64] {
            let n = 5 * gs;
            let mut x = values(n, 13);
            // Exact halves and an all-zero group: C round() goes away from zero, 0/0 gives 0.
            x[1] = 0.5 * x[0].abs().max(x[2].abs()).max(1e-3);
            for v in &mut x[gs..2 * gs] {
                *v = 0.0;
            }
            let (mut fq, mut fs) = (vec![0; n], vec![0.0; n / gs]);
            let (mut oq, mut os) = (vec![0; n], vec![0.0; n / gs]);
            quantize(&mut fq, &mut fs, &x, gs);
            scalar::quantize(&mut oq, &mut os, &x, gs);
            assert_eq!((fq, fs), (oq, os), "gs {gs}");
        }
        // Values landing exactly on .5 after division by the scale (max 127 -> scale 1).
        let mut x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) + 0.5).collect();
        x[0] = 127.0;
        let (mut fq, mut fs) = (vec![0; 64], vec![0.0; 1]);
        let (mut oq, mut os) = (vec![0; 64], vec![0.0; 1]);
        quantize(&mut fq, &mut fs, &x, 64);
        scalar::quantize(&mut oq, &mut os, &x, 64);
        assert_eq!((fq, fs), (oq, os));
    }

    #[test]
    fn vector_kernels_match_scalar() {
        for n in [1, 3, 7, 8, 15, 16, 17, 48, 63, 64, 100, 288] {
            let (a, b) = (values(n, 17), values(n, 19));
            let (fast, oracle) = (dot(&a, &b), scalar::dot(&a, &b));
            close(&[fast], &[oracle], n);

            let (mut fo, mut oo) = (b.clone(), b.clone());
            axpy(&mut fo, 0.37, &a);
            scalar::axpy(&mut oo, 0.37, &a);
            close(&fo, &oo, 1);
        }
    }

    /// The attention kernels equal their definitions bit for bit: `dot` per key, and `axpy`
    /// per position in order (head sizes with and without SIMD tails, strided caches).
    #[test]
    fn attention_kernels_equal_dot_and_axpy() {
        for head in [1, 3, 4, 8, 12, 17, 32, 48, 64, 100] {
            for (len, stride) in [(1, head), (5, head + 3), (9, 2 * head + 1), (64, head)] {
                let (q, cache) = (values(head, 23), values(len * stride, 29));
                let mut scores = vec![0.0; len];
                dots(&mut scores, &q, &cache, stride);
                let each: Vec<f32> =
                    (0..len).map(|t| dot(&q, &cache[t * stride..][..head])).collect();
                assert_eq!(scores, each, "dots: head {head} len {len}");

                let att = values(len, 31);
                let (mut sum, mut each) = (values(head, 37), values(head, 37));
                weighted_sum(&mut sum, &att, &cache, stride);
                for (t, &a) in att.iter().enumerate() {
                    axpy(&mut each, a, &cache[t * stride..][..head]);
                }
                assert_eq!(sum, each, "weighted_sum: head {head} len {len}");
            }
        }
    }
}
