//! x86_64 AVX2 + FMA kernels for the native build, chosen at run time (`available()`), so the
//! default release build uses them on any AVX2 machine without `-C target-cpu=native`.
//!
//! Same shapes as `simd128.rs`, twice as wide: the f32 matmul keeps four rows in flight with
//! two 8-lane FMA accumulators each; the int8 matmul sums each group's integer dot exactly
//! (`vpmovsxbw` + `vpmaddwd`) and adds the groups in runq.c's order, four rows in four lanes.
//! Each public function checks the CPU and falls back to the scalar oracle.
//!
//! The attention's `dot` and `axpy` are the exception: they compute exactly what the wasm
//! kernels compute (`dot`: simd128's two 4-lane accumulators, multiply then add, its horizontal
//! sum; `axpy`: multiply then add per element, as scalar), so that an int8 model, whose
//! matmuls are exact, gives the same bits natively and in the browser. With FMA here, one
//! run.c chat transcript (chat.json, aidreams260K-v2, seed 40) sampled another token natively.

use std::arch::x86_64::*;

use super::scalar;

/// Whether this CPU has AVX2 and FMA (std detects once, then this is a cached load).
#[inline]
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    if available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { matmul_avx2(out, x, w) }
    } else {
        scalar::matmul(out, x, w)
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    if available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { dot_avx2(a, b) }
    } else {
        scalar::dot(a, b)
    }
}

pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    if available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { axpy_avx2(out, a, v) }
    } else {
        scalar::axpy(out, a, v)
    }
}

pub fn matmul_q8(out: &mut [f32], xq: &[i16], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    if available() && gs.is_multiple_of(16) {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { matmul_q8_avx2(out, xq, xs, wq, ws, gs) }
    } else {
        scalar::matmul_q8(out, xq, xs, wq, ws, gs)
    }
}

/// Loads 8 f32 from `c[at..at + 8]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ld<const N: usize>(c: &[f32; N], at: usize) -> __m256 {
    assert!(at + 8 <= N);
    // SAFETY: the assert keeps the 32 bytes read inside `c`; loadu has no alignment need.
    unsafe { _mm256_loadu_ps(c.as_ptr().add(at)) }
}

/// Loads 16 i8 and sign-extends them to 16 i16.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ld_i8(c: &[i8; 16]) -> __m256i {
    // SAFETY: `c` is exactly 16 bytes; loadu has no alignment need.
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(c.as_ptr() as *const __m128i) })
}

/// Loads 16 i16.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ld_i16(c: &[i16; 16]) -> __m256i {
    // SAFETY: `c` is exactly 32 bytes; loadu has no alignment need.
    unsafe { _mm256_loadu_si256(c.as_ptr() as *const __m256i) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma")]
fn matmul_avx2(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    let (x16, xt) = x.as_chunks::<16>();
    let tail = n - xt.len();
    let mut blocks = out.chunks_exact_mut(4);
    let mut wblocks = w.chunks_exact(4 * n);
    for (o, wb) in (&mut blocks).zip(&mut wblocks) {
        let (r0, rest) = wb.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        let (c0, c1) = (r0.as_chunks::<16>().0, r1.as_chunks::<16>().0);
        let (c2, c3) = (r2.as_chunks::<16>().0, r3.as_chunks::<16>().0);
        let z = _mm256_setzero_ps();
        let (mut a0, mut b0, mut a1, mut b1, mut a2, mut b2, mut a3, mut b3) =
            (z, z, z, z, z, z, z, z);
        for ((((xc, w0), w1), w2), w3) in x16.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
            // The same 64 bytes of the next block's rows: streams across page boundaries,
            // where the hardware prefetcher stops. (Addresses past the end are never read.)
            for w in [w0, w1, w2, w3] {
                _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(4 * n) as *const i8);
            }
            let (xa, xb) = (ld(xc, 0), ld(xc, 8));
            a0 = _mm256_fmadd_ps(ld(w0, 0), xa, a0);
            b0 = _mm256_fmadd_ps(ld(w0, 8), xb, b0);
            a1 = _mm256_fmadd_ps(ld(w1, 0), xa, a1);
            b1 = _mm256_fmadd_ps(ld(w1, 8), xb, b1);
            a2 = _mm256_fmadd_ps(ld(w2, 0), xa, a2);
            b2 = _mm256_fmadd_ps(ld(w2, 8), xb, b2);
            a3 = _mm256_fmadd_ps(ld(w3, 0), xa, a3);
            b3 = _mm256_fmadd_ps(ld(w3, 8), xb, b3);
        }
        let rows = [(r0, a0, b0), (r1, a1, b1), (r2, a2, b2), (r3, a3, b3)];
        for (o, (r, a, b)) in o.iter_mut().zip(rows) {
            *o = hsum(_mm256_add_ps(a, b)) + scalar::dot(&r[tail..], xt);
        }
    }
    for (o, r) in blocks.into_remainder().iter_mut().zip(wblocks.remainder().chunks_exact(n)) {
        *o = dot_avx2(r, x);
    }
}

/// simd128's `dot`, lane for lane: accumulators over 8-float chunks (floats 0-3 and 4-7),
/// multiply then add, then `(l0 + l2) + (l1 + l3)` of their sum, then the scalar tail.
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a8, at) = a[..n].as_chunks::<8>();
    let (b8, bt) = b[..n].as_chunks::<8>();
    let (mut s0, mut s1) = (_mm_setzero_ps(), _mm_setzero_ps());
    for (a, b) in a8.iter().zip(b8) {
        // SAFETY: each chunk is exactly 8 f32s; loadu has no alignment need.
        let (a0, a1, b0, b1) = unsafe {
            let (a, b) = (a.as_ptr(), b.as_ptr());
            (_mm_loadu_ps(a), _mm_loadu_ps(a.add(4)), _mm_loadu_ps(b), _mm_loadu_ps(b.add(4)))
        };
        s0 = _mm_add_ps(s0, _mm_mul_ps(a0, b0));
        s1 = _mm_add_ps(s1, _mm_mul_ps(a1, b1));
    }
    let v = _mm_add_ps(s0, s1);
    let s = _mm_add_ps(v, _mm_shuffle_ps::<0b01_00_11_10>(v, v)); // [l0+l2, l1+l3, ..]
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b10_11_00_01>(s, s)); // (l0+l2) + (l1+l3)
    _mm_cvtss_f32(s) + scalar::dot(at, bt)
}

/// `out += a * v`, multiply then add per element: the very bits of the scalar loop.
#[target_feature(enable = "avx2,fma")]
fn axpy_avx2(out: &mut [f32], a: f32, v: &[f32]) {
    let n = out.len().min(v.len());
    let (o8, ot) = out[..n].as_chunks_mut::<8>();
    let (v8, vt) = v[..n].as_chunks::<8>();
    let av = _mm256_set1_ps(a);
    for (o, v) in o8.iter_mut().zip(v8) {
        let r = _mm256_add_ps(ld(o, 0), _mm256_mul_ps(av, ld(v, 0)));
        // SAFETY: `o` is exactly 8 f32s; storeu has no alignment need.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), r) };
    }
    scalar::axpy(ot, a, vt);
}

#[target_feature(enable = "avx2,fma")]
fn matmul_q8_avx2(out: &mut [f32], xq: &[i16], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    let n = xq.len();
    let groups = n / gs;
    for (b, (o, wb)) in out.chunks_exact_mut(4).zip(wq.chunks_exact(4 * n)).enumerate() {
        let s = &ws[4 * b * groups..4 * (b + 1) * groups];
        let (r0, rest) = wb.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        let mut val = _mm_setzero_ps();
        for (g, (xg, &x_scale)) in xq.chunks_exact(gs).zip(xs).enumerate() {
            let span = g * gs..(g + 1) * gs;
            let (c0, c1) =
                (r0[span.clone()].as_chunks::<16>().0, r1[span.clone()].as_chunks::<16>().0);
            let (c2, c3) = (r2[span.clone()].as_chunks::<16>().0, r3[span].as_chunks::<16>().0);
            let z = _mm256_setzero_si256();
            let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
            for ((((xc, w0), w1), w2), w3) in
                xg.as_chunks::<16>().0.iter().zip(c0).zip(c1).zip(c2).zip(c3)
            {
                let xv = ld_i16(xc);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(ld_i8(w0), xv));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(ld_i8(w1), xv));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(ld_i8(w2), xv));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(ld_i8(w3), xv));
            }
            let half = |a: __m256i| {
                _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a))
            };
            let h01 = _mm_hadd_epi32(half(a0), half(a1));
            let h23 = _mm_hadd_epi32(half(a2), half(a3));
            let ival = _mm_cvtepi32_ps(_mm_hadd_epi32(h01, h23));
            let w_scale = _mm_setr_ps(s[g], s[groups + g], s[2 * groups + g], s[3 * groups + g]);
            // (ival * w_scale) * x_scale, as runq.c; separate mul and add (no FMA) on purpose.
            val = _mm_add_ps(val, _mm_mul_ps(_mm_mul_ps(ival, w_scale), _mm_set1_ps(x_scale)));
        }
        let mut lanes = [0.0f32; 4];
        // SAFETY: `lanes` is exactly 4 f32s; storeu has no alignment need.
        unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), val) };
        o.copy_from_slice(&lanes);
    }
    let done = out.len() / 4 * 4;
    scalar::matmul_q8(&mut out[done..], xq, xs, &wq[done * n..], &ws[done * groups..], gs);
}
