//! wasm32 simd128 kernels (4 f32 / 16 i8 lanes), chosen by `cfg(target_feature = "simd128")`.
//!
//! The matmuls keep four output rows in flight with two independent accumulators each, so
//! every loaded `x` vector feeds four rows and eight add chains hide the add latency. With
//! `+relaxed-simd` the multiply-add is `f32x4.relaxed_madd` (a fused FMA where the CPU has
//! one): fp32 sums may differ in the last bit, as run.c's own -O3 / -Ofast builds do.
//! The int8 kernel sums each group's integer dot exactly and adds the groups in runq.c's order.

use core::arch::wasm32::*;

use super::scalar;

/// Loads 4 f32 from `c[at..at + 4]`.
#[inline(always)]
fn ld<const N: usize>(c: &[f32; N], at: usize) -> v128 {
    assert!(at + 4 <= N);
    // SAFETY: the assert keeps the 16 bytes read inside `c`; v128_load has no alignment need.
    unsafe { v128_load(c.as_ptr().add(at) as *const v128) }
}

/// Loads 16 i8.
#[inline(always)]
fn ld8(c: &[i8; 16]) -> v128 {
    // SAFETY: `c` is exactly 16 bytes; v128_load has no alignment need.
    unsafe { v128_load(c.as_ptr() as *const v128) }
}

/// `acc + a * b`.
#[inline(always)]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, acc);
    #[cfg(not(target_feature = "relaxed-simd"))]
    return f32x4_add(acc, f32x4_mul(a, b));
}

/// Loads 16 i16 as two vectors (low 8, high 8).
#[inline(always)]
fn ld16(c: &[i16; 16]) -> (v128, v128) {
    // SAFETY: `c` is exactly 32 bytes; v128_load has no alignment need.
    unsafe { (v128_load(c.as_ptr() as *const v128), v128_load(c.as_ptr().add(8) as *const v128)) }
}

/// The four lanes of an f32x4.
#[inline(always)]
fn lanes(v: v128) -> [f32; 4] {
    [
        f32x4_extract_lane::<0>(v),
        f32x4_extract_lane::<1>(v),
        f32x4_extract_lane::<2>(v),
        f32x4_extract_lane::<3>(v),
    ]
}

#[inline(always)]
fn hsum(v: v128) -> f32 {
    let s = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let s = f32x4_add(s, i32x4_shuffle::<1, 0, 3, 2>(s, s));
    f32x4_extract_lane::<0>(s)
}

/// The four sums of `a0..a3`'s lanes, as one vector `[sum a0, sum a1, sum a2, sum a3]`.
#[inline(always)]
fn hsum4_i32(a0: v128, a1: v128, a2: v128, a3: v128) -> v128 {
    let s01 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a0, a1), i32x4_shuffle::<2, 6, 3, 7>(a0, a1));
    let s23 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a2, a3), i32x4_shuffle::<2, 6, 3, 7>(a2, a3));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23))
}

/// `s` cut into four parts of `len` items each, and what is left after them.
fn quarters<T>(s: &[T], len: usize) -> ([&[T]; 4], &[T]) {
    let (a, rest) = s.split_at(len);
    let (b, rest) = rest.split_at(len);
    let (c, rest) = rest.split_at(len);
    let (d, rest) = rest.split_at(len);
    ([a, b, c, d], rest)
}

/// [`quarters`] of a mutable slice.
fn quarters_mut<T>(s: &mut [T], len: usize) -> ([&mut [T]; 4], &mut [T]) {
    let (a, rest) = s.split_at_mut(len);
    let (b, rest) = rest.split_at_mut(len);
    let (c, rest) = rest.split_at_mut(len);
    let (d, rest) = rest.split_at_mut(len);
    ([a, b, c, d], rest)
}

/// Four output rows at a time, one from each quarter of `w`: four sequential streams in
/// pages far apart, which the hardware prefetchers follow independently. wasm has no prefetch
/// instruction; four adjacent rows (one region) leave far fewer bytes in flight and read
/// weights from memory about 30 % slower (110M shape). (Eight rows from eight parts: no
/// better in Node, and a quarter slower in the compute-bound prefill.) Every row's sum is the
/// same whichever rows share its tile: two accumulators over 8-float chunks, then the scalar
/// tail, as `dot`.
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    if n == 0 {
        return out.fill(0.0);
    }
    let q = out.len() / 4;
    let (x8, xt) = x.as_chunks::<8>();
    let tail = n - xt.len();
    let ([o0, o1, o2, o3], o_left) = quarters_mut(out, q);
    let (w4, w_left) = quarters(w, q * n);
    let [q0, q1, q2, q3] = w4.map(|w| w.chunks_exact(n));
    let outs = o0.iter_mut().zip(o1.iter_mut()).zip(o2.iter_mut()).zip(o3.iter_mut());
    for ((((o0, o1), o2), o3), (((r0, r1), r2), r3)) in outs.zip(q0.zip(q1).zip(q2).zip(q3)) {
        let (c0, c1, c2, c3) = (
            r0.as_chunks::<8>().0,
            r1.as_chunks::<8>().0,
            r2.as_chunks::<8>().0,
            r3.as_chunks::<8>().0,
        );
        let z = f32x4_splat(0.0);
        let (mut a0, mut b0, mut a1, mut b1, mut a2, mut b2, mut a3, mut b3) =
            (z, z, z, z, z, z, z, z);
        for ((((xc, w0), w1), w2), w3) in x8.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
            let (xa, xb) = (ld(xc, 0), ld(xc, 4));
            a0 = madd(a0, ld(w0, 0), xa);
            b0 = madd(b0, ld(w0, 4), xb);
            a1 = madd(a1, ld(w1, 0), xa);
            b1 = madd(b1, ld(w1, 4), xb);
            a2 = madd(a2, ld(w2, 0), xa);
            b2 = madd(b2, ld(w2, 4), xb);
            a3 = madd(a3, ld(w3, 0), xa);
            b3 = madd(b3, ld(w3, 4), xb);
        }
        let rows = [(o0, r0, a0, b0), (o1, r1, a1, b1), (o2, r2, a2, b2), (o3, r3, a3, b3)];
        for (o, r, a, b) in rows {
            *o = hsum(f32x4_add(a, b)) + scalar::dot(&r[tail..], xt);
        }
    }
    for (o, r) in o_left.iter_mut().zip(w_left.chunks_exact(n)) {
        *o = dot(r, x);
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a8, at) = a[..n].as_chunks::<8>();
    let (b8, bt) = b[..n].as_chunks::<8>();
    let (mut s0, mut s1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    for (a, b) in a8.iter().zip(b8) {
        s0 = madd(s0, ld(a, 0), ld(b, 0));
        s1 = madd(s1, ld(a, 4), ld(b, 4));
    }
    hsum(f32x4_add(s0, s1)) + scalar::dot(at, bt)
}

/// Four keys at a time (four independent pairs of add chains instead of one), each score the
/// very sum `dot(q, key)` computes.
pub fn dots(scores: &mut [f32], q: &[f32], keys: &[f32], stride: usize) {
    let hs = q.len();
    let (q8, qt) = q.as_chunks::<8>();
    let tail = hs - qt.len();
    let done = scores.len() / 4 * 4;
    let mut groups = scores.chunks_exact_mut(4);
    for (g, s) in (&mut groups).enumerate() {
        let k: [&[f32]; 4] = core::array::from_fn(|i| &keys[(4 * g + i) * stride..][..hs]);
        let (c0, c1, c2, c3) = (
            k[0].as_chunks::<8>().0,
            k[1].as_chunks::<8>().0,
            k[2].as_chunks::<8>().0,
            k[3].as_chunks::<8>().0,
        );
        let z = f32x4_splat(0.0);
        let (mut a0, mut b0, mut a1, mut b1, mut a2, mut b2, mut a3, mut b3) =
            (z, z, z, z, z, z, z, z);
        for ((((qc, k0), k1), k2), k3) in q8.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
            let (qa, qb) = (ld(qc, 0), ld(qc, 4));
            a0 = madd(a0, qa, ld(k0, 0));
            b0 = madd(b0, qb, ld(k0, 4));
            a1 = madd(a1, qa, ld(k1, 0));
            b1 = madd(b1, qb, ld(k1, 4));
            a2 = madd(a2, qa, ld(k2, 0));
            b2 = madd(b2, qb, ld(k2, 4));
            a3 = madd(a3, qa, ld(k3, 0));
            b3 = madd(b3, qb, ld(k3, 4));
        }
        for (i, (a, b)) in [(a0, b0), (a1, b1), (a2, b2), (a3, b3)].into_iter().enumerate() {
            s[i] = hsum(f32x4_add(a, b)) + scalar::dot(qt, &k[i][tail..]);
        }
    }
    for (t, s) in groups.into_remainder().iter_mut().enumerate() {
        *s = dot(q, &keys[(done + t) * stride..][..hs]);
    }
}

/// `out` in strips of up to 32 floats kept in registers while every position adds its term:
/// per element the same `madd`s in the same order as one `axpy` per position.
pub fn weighted_sum(out: &mut [f32], att: &[f32], values: &[f32], stride: usize) {
    let n = out.len();
    let (o4, ot) = out.as_chunks_mut::<4>();
    let mut at = 0;
    let (o32, rest) = o4.as_chunks_mut::<8>();
    for o in o32 {
        weighted_strip(o, att, values, stride, at);
        at += 32;
    }
    let (o16, rest) = rest.as_chunks_mut::<4>();
    for o in o16 {
        weighted_strip(o, att, values, stride, at);
        at += 16;
    }
    for o in rest.as_chunks_mut::<1>().0 {
        weighted_strip(o, att, values, stride, at);
        at += 4;
    }
    for (t, &a) in att.iter().enumerate() {
        scalar::axpy(ot, a, &values[t * stride + at..t * stride + n]);
    }
}

/// [`weighted_sum`] of the `4 * M` floats of `out` that start at float `at` of each value row.
#[inline(always)]
fn weighted_strip<const M: usize>(
    out: &mut [[f32; 4]; M],
    att: &[f32],
    values: &[f32],
    stride: usize,
    at: usize,
) {
    let mut acc: [v128; M] = core::array::from_fn(|j| ld(&out[j], 0));
    for (t, &a) in att.iter().enumerate() {
        let v = values[t * stride + at..][..4 * M].as_chunks::<4>().0;
        let av = f32x4_splat(a);
        for (acc, v) in acc.iter_mut().zip(v) {
            *acc = madd(*acc, av, ld(v, 0));
        }
    }
    for (o, acc) in out.iter_mut().zip(acc) {
        // SAFETY: `o` is exactly 4 f32s; v128_store has no alignment need.
        unsafe { v128_store(o.as_mut_ptr() as *mut v128, acc) };
    }
}

pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    let n = out.len().min(v.len());
    let (o4, ot) = out[..n].as_chunks_mut::<4>();
    let (v4, vt) = v[..n].as_chunks::<4>();
    let av = f32x4_splat(a);
    for (o, v) in o4.iter_mut().zip(v4) {
        *o = lanes(madd(ld(o, 0), av, ld(v, 0)));
    }
    scalar::axpy(ot, a, vt);
}

/// Q8_0 matmul: per row and group, the exact i32 dot (weights widened from i8 to i16, `x`
/// already i16; `i32x4.dot_i16x8`), then `val += ival * w_scale * x_scale` per group in order,
/// four rows in the four lanes, one from each quarter of `wq` as in [`matmul`]. (Widening `x`
/// here, once per four rows, made the kernel 1.6x slower in Chromium's V8.)
pub fn matmul_q8(out: &mut [f32], xq: &[i16], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    let n = xq.len();
    if !gs.is_multiple_of(16) || n == 0 {
        return scalar::matmul_q8(out, xq, xs, wq, ws, gs);
    }
    let groups = n / gs;
    let q = out.len() / 4;
    let ([o0, o1, o2, o3], o_left) = quarters_mut(out, q);
    let (w4, w_left) = quarters(wq, q * n);
    let (s4, s_left) = quarters(ws, q * groups);
    let outs = o0.iter_mut().zip(o1.iter_mut()).zip(o2.iter_mut()).zip(o3.iter_mut());
    let [w0, w1, w2, w3] = w4.map(|w| w.chunks_exact(n));
    let rows = w0.zip(w1).zip(w2).zip(w3);
    let [s0, s1, s2, s3] = s4.map(|s| s.chunks_exact(groups));
    let scales = s0.zip(s1).zip(s2).zip(s3);
    for (((((o0, o1), o2), o3), (((r0, r1), r2), r3)), (((s0, s1), s2), s3)) in
        outs.zip(rows).zip(scales)
    {
        let mut val = f32x4_splat(0.0);
        for (g, (xg, &x_scale)) in xq.chunks_exact(gs).zip(xs).enumerate() {
            let span = g * gs..(g + 1) * gs;
            let (c0, c1) =
                (r0[span.clone()].as_chunks::<16>().0, r1[span.clone()].as_chunks::<16>().0);
            let (c2, c3) = (r2[span.clone()].as_chunks::<16>().0, r3[span].as_chunks::<16>().0);
            let mut acc = [i32x4_splat(0); 4];
            for ((((xc, w0), w1), w2), w3) in
                xg.as_chunks::<16>().0.iter().zip(c0).zip(c1).zip(c2).zip(c3)
            {
                let (xl, xh) = ld16(xc);
                for (acc, w) in acc.iter_mut().zip([w0, w1, w2, w3]) {
                    let w = ld8(w);
                    let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), xl);
                    let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), xh);
                    // |i8 * i8| sums fit i32 exactly.
                    *acc = i32x4_add(*acc, i32x4_add(lo, hi));
                }
            }
            let ival = f32x4_convert_i32x4(hsum4_i32(acc[0], acc[1], acc[2], acc[3]));
            let w_scale = f32x4(s0[g], s1[g], s2[g], s3[g]);
            // (ival * w_scale) * x_scale, as runq.c's `((float) ival) * w->s[..] * x->s[..]`.
            val = f32x4_add(val, f32x4_mul(f32x4_mul(ival, w_scale), f32x4_splat(x_scale)));
        }
        [*o0, *o1, *o2, *o3] = lanes(val);
    }
    scalar::matmul_q8(o_left, xq, xs, w_left, s_left, gs);
}

/// [`matmul_q8`] for two activation rows at once (prefill): each weight chunk is loaded and
/// widened once for both. Each output equals `matmul_q8` of its row: same integer dots, same
/// per-group float operations in the same order.
pub fn matmul_q8_pair(
    out: [&mut [f32]; 2],
    xq: [&[i16]; 2],
    xs: [&[f32]; 2],
    wq: &[i8],
    ws: &[f32],
    gs: usize,
) {
    let [o0, o1] = out;
    if !gs.is_multiple_of(16) {
        scalar::matmul_q8(o0, xq[0], xs[0], wq, ws, gs);
        return scalar::matmul_q8(o1, xq[1], xs[1], wq, ws, gs);
    }
    let n = xq[0].len();
    let groups = n / gs;
    for (b, ((p0, p1), wb)) in
        o0.chunks_exact_mut(4).zip(o1.chunks_exact_mut(4)).zip(wq.chunks_exact(4 * n)).enumerate()
    {
        let s = &ws[4 * b * groups..4 * (b + 1) * groups];
        let (mut val0, mut val1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let (r0, rest) = wb.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        for g in 0..groups {
            let span = g * gs..(g + 1) * gs;
            let (c0, c1) =
                (r0[span.clone()].as_chunks::<16>().0, r1[span.clone()].as_chunks::<16>().0);
            let (c2, c3) =
                (r2[span.clone()].as_chunks::<16>().0, r3[span.clone()].as_chunks::<16>().0);
            let (x0, x1) =
                (xq[0][span.clone()].as_chunks::<16>().0, xq[1][span].as_chunks::<16>().0);
            let (mut acc0, mut acc1) = ([i32x4_splat(0); 4], [i32x4_splat(0); 4]);
            for (((((xa, xb), w0), w1), w2), w3) in
                x0.iter().zip(x1).zip(c0).zip(c1).zip(c2).zip(c3)
            {
                let ((al, ah), (bl, bh)) = (ld16(xa), ld16(xb));
                for ((a0, a1), w) in acc0.iter_mut().zip(acc1.iter_mut()).zip([w0, w1, w2, w3]) {
                    let w = ld8(w);
                    let (wl, wh) = (i16x8_extend_low_i8x16(w), i16x8_extend_high_i8x16(w));
                    *a0 =
                        i32x4_add(*a0, i32x4_add(i32x4_dot_i16x8(wl, al), i32x4_dot_i16x8(wh, ah)));
                    *a1 =
                        i32x4_add(*a1, i32x4_add(i32x4_dot_i16x8(wl, bl), i32x4_dot_i16x8(wh, bh)));
                }
            }
            let w_scale = f32x4(s[g], s[groups + g], s[2 * groups + g], s[3 * groups + g]);
            let ival0 = f32x4_convert_i32x4(hsum4_i32(acc0[0], acc0[1], acc0[2], acc0[3]));
            let ival1 = f32x4_convert_i32x4(hsum4_i32(acc1[0], acc1[1], acc1[2], acc1[3]));
            val0 = f32x4_add(val0, f32x4_mul(f32x4_mul(ival0, w_scale), f32x4_splat(xs[0][g])));
            val1 = f32x4_add(val1, f32x4_mul(f32x4_mul(ival1, w_scale), f32x4_splat(xs[1][g])));
        }
        p0.copy_from_slice(&lanes(val0));
        p1.copy_from_slice(&lanes(val1));
    }
    let done = o0.len() / 4 * 4;
    scalar::matmul_q8(&mut o0[done..], xq[0], xs[0], &wq[done * n..], &ws[done * groups..], gs);
    scalar::matmul_q8(&mut o1[done..], xq[1], xs[1], &wq[done * n..], &ws[done * groups..], gs);
}

/// runq.c's quantize with C `round()` (half away from zero): `t = trunc(v)`, plus the sign of
/// `v` where `|v - t| >= 0.5` (exact, unlike `trunc(v + 0.5)`).
pub fn quantize(xq: &mut [i16], xs: &mut [f32], x: &[f32], gs: usize) {
    if !gs.is_multiple_of(16) {
        return scalar::quantize(xq, xs, x, gs);
    }
    for ((q, s), x) in xq.chunks_exact_mut(gs).zip(xs.iter_mut()).zip(x.chunks_exact(gs)) {
        let x4 = x.as_chunks::<4>().0;
        let mut m = f32x4_splat(0.0);
        for c in x4 {
            m = f32x4_pmax(m, f32x4_abs(ld(c, 0))); // NaN-ignoring, as the scalar fold
        }
        let m = f32x4_pmax(m, i32x4_shuffle::<2, 3, 0, 1>(m, m));
        let m = f32x4_pmax(m, i32x4_shuffle::<1, 0, 3, 2>(m, m));
        let scale = f32x4_extract_lane::<0>(m) / 127.0;
        *s = scale;
        let sv = f32x4_splat(scale);
        let round = |c: &[f32; 4]| {
            let v = f32x4_div(ld(c, 0), sv);
            let t = f32x4_trunc(v);
            let up = f32x4_ge(f32x4_abs(f32x4_sub(v, t)), f32x4_splat(0.5));
            let sign = v128_or(v128_and(v, f32x4_splat(-0.0)), f32x4_splat(1.0));
            i32x4_trunc_sat_f32x4(f32x4_add(t, v128_and(up, sign)))
        };
        for (q, c) in q.as_chunks_mut::<8>().0.iter_mut().zip(x.as_chunks::<8>().0) {
            let c: &[[f32; 4]; 2] = c.as_chunks::<4>().0.try_into().expect("8 = 2 x 4");
            // Saturated to i8's range as the scalar `as i8` (never reached: |v| <= 127).
            let v = i16x8_narrow_i32x4(round(&c[0]), round(&c[1]));
            let v = i16x8_min(i16x8_max(v, i16x8_splat(-128)), i16x8_splat(127));
            // SAFETY: `q` is exactly 16 bytes; v128_store has no alignment need.
            unsafe { v128_store(q.as_mut_ptr() as *mut v128, v) };
        }
    }
}
