//! The f32 transcendental functions of the forward pass and the sampler, one definition for
//! every target and kernel.
//!
//! Each is computed in f64 and rounded once to f32, which makes it correctly rounded (but for
//! double-rounding cases of probability ~2^-29) and so the same bits natively and in wasm.
//! Rust's own f32 functions are not: natively they call glibc, in wasm a port of musl, and a
//! one-ulp difference in one `expf` is enough to flip a sampled token at temperature 1 (seen:
//! the scalar wasm build diverged from run.c on a golden case). llama2.c calls glibc's
//! `expf`/`powf`/`sinf`/`cosf`, which are within ~0.5 ulp, so they agree with correct rounding
//! almost always: every golden case matches on every build.

/// e^x.
#[inline]
pub fn exp(x: f32) -> f32 {
    (x as f64).exp() as f32
}

/// x^y.
#[inline]
pub fn pow(x: f32, y: f32) -> f32 {
    (x as f64).powf(y as f64) as f32
}

/// (sin x, cos x).
#[inline]
pub fn sin_cos(x: f32) -> (f32, f32) {
    let (s, c) = (x as f64).sin_cos();
    (s as f32, c as f32)
}
