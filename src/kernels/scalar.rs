//! Plain scalar kernels in run.c's own summation order: always compiled, and the oracle
//! that the SIMD kernels are tested against.

pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o = dot(row, x);
    }
}

pub fn matmul_q8(out: &mut [f32], xq: &[i16], xs: &[f32], wq: &[i8], ws: &[f32], gs: usize) {
    let n = xq.len();
    let groups = n / gs;
    for (i, o) in out.iter_mut().enumerate() {
        let row = &wq[i * n..(i + 1) * n];
        let row_s = &ws[i * groups..(i + 1) * groups];
        let mut val = 0.0f32;
        for g in 0..groups {
            let span = g * gs..(g + 1) * gs;
            let ival: i32 =
                row[span.clone()].iter().zip(&xq[span]).map(|(&a, &b)| a as i32 * b as i32).sum();
            val += ival as f32 * row_s[g] * xs[g];
        }
        *o = val;
    }
}

pub fn quantize(xq: &mut [i16], xs: &mut [f32], x: &[f32], gs: usize) {
    for ((q, s), x) in xq.chunks_exact_mut(gs).zip(xs.iter_mut()).zip(x.chunks_exact(gs)) {
        let wmax = x.iter().fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let scale = wmax / 127.0;
        *s = scale;
        for (q, &v) in q.iter_mut().zip(x) {
            // An all-zero group gives 0/0 = NaN, which C's (int8_t) turns into 0, as `as` does.
            *q = (v / scale).round() as i8 as i16;
        }
    }
}

pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32]) {
    let mut ss = 0.0f32;
    for &v in x {
        ss += v * v;
    }
    ss /= x.len() as f32;
    ss += 1e-5;
    let ss = 1.0 / ss.sqrt();
    for ((o, &w), &v) in out.iter_mut().zip(w).zip(x) {
        *o = w * (ss * v);
    }
}

pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = super::math::exp(*v - max);
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (&a, &b) in a.iter().zip(b) {
        sum += a * b;
    }
    sum
}

pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    for (o, &v) in out.iter_mut().zip(v) {
        *o += a * v;
    }
}
