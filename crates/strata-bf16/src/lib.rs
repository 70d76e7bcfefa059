//! Matrix products in bfloat16 with float32 accumulation, on AVX-512 BF16
//! (`vdpbf16ps`: 32 multiply-adds of bf16 pairs into 16 f32 lanes per
//! instruction, twice a float32 FMA's).
//!
//! The weights are rounded to bf16 once, at load, and packed for the
//! kernel: panels of 16 output columns, each a run of `k / 2` 64-byte rows
//! that hold, per column, the pair `(w[2p][j], w[2p + 1][j])`. The
//! activations are rounded to bf16 (round to nearest even) per product;
//! a row-major bf16 row already is a run of such pairs. Every sum is
//! accumulated in f32, so the error is the inputs' rounding (8 bits of
//! mantissa), not the accumulation's: the local embedder's accuracy gate
//! (`crates/strata-embed/tests/local.rs`) holds its vectors to a cosine ≥ 0.999 of the f32
//! engine's per text.
//!
//! [`supported`] says whether this CPU runs the kernel; nothing here may be
//! called where it does not ([`PackedBf16::matmul`] checks).

use rayon::prelude::*;

/// Output columns per panel (one 512-bit register of f32).
const LANES: usize = 16;
/// Rows of the micro-kernel: 6 rows × 2 panels = 12 accumulators.
const ROWS: usize = 6;
/// Most rows per parallel task: a block of activations that stays in L2
/// while every panel passes over it.
const MAX_ROWS_PER_TASK: usize = 96;

/// Rows per task for `rows` rows: about four tasks per thread (so the
/// threads finish together), a multiple of [`ROWS`], at most
/// [`MAX_ROWS_PER_TASK`].
fn rows_per_task(rows: usize) -> usize {
    let tasks = 4 * rayon::current_num_threads().max(1);
    rows.div_ceil(tasks)
        .next_multiple_of(ROWS)
        .clamp(ROWS, MAX_ROWS_PER_TASK)
}

/// Whether this CPU has AVX-512 F and BF16 (the kernel's instructions).
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 → bf16, rounding to nearest even (NaN stays NaN).
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// bf16 → f32 (exact).
pub fn from_bf16(x: u16) -> f32 {
    f32::from_bits(u32::from(x) << 16)
}

/// A `(k, n)` weight matrix rounded to bf16 and packed for the kernel.
#[derive(Debug, Clone)]
pub struct PackedBf16 {
    k: usize,
    n: usize,
    /// Pairs of `k` (`k` rounded up to even, over two).
    pairs: usize,
    /// Panels of [`LANES`] columns, `n` rounded up to an even number of them.
    panels: usize,
    data: Vec<u32>,
}

impl PackedBf16 {
    /// Packs `w`, a row-major `(k, n)` matrix.
    ///
    /// # Panics
    /// When `w.len() != k * n` (a caller's bug: the loader checks shapes).
    pub fn pack(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "weight matrix shape");
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(LANES).next_multiple_of(2);
        let mut data = vec![0u32; panels * pairs * LANES];
        for (panel, out) in data.chunks_exact_mut(pairs * LANES).enumerate() {
            for p in 0..pairs {
                for j in 0..LANES {
                    let col = panel * LANES + j;
                    if col >= n {
                        continue;
                    }
                    let at = |row: usize| {
                        if row < k {
                            u32::from(to_bf16(w[row * n + col]))
                        } else {
                            0
                        }
                    };
                    out[p * LANES + j] = at(2 * p) | (at(2 * p + 1) << 16);
                }
            }
        }
        PackedBf16 {
            k,
            n,
            pairs,
            panels,
            data,
        }
    }

    /// Input width.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output width.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `x · w` for a row-major `(rows, k)` matrix `x`: a row-major
    /// `(rows, n)` result, computed in parallel over blocks of rows.
    ///
    /// # Panics
    /// When `x.len()` is not a multiple of `k`, or when the CPU lacks the
    /// kernel's instructions (see [`supported`]).
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        assert!(supported(), "the bf16 kernel needs AVX-512 BF16");
        assert!(self.k > 0 && x.len().is_multiple_of(self.k), "input shape");
        let rows = x.len() / self.k;
        let mut out = vec![0f32; rows * self.n];
        if rows == 0 || self.n == 0 {
            return out;
        }
        let per_task = rows_per_task(rows);
        out.par_chunks_mut(per_task * self.n)
            .zip(x.par_chunks(per_task * self.k))
            .for_each_init(Vec::new, |a, (out, x)| {
                let block = x.len() / self.k;
                // The block's rows in bf16, each padded to whole pairs.
                a.clear();
                a.resize(block * self.pairs, 0u32);
                for (dst, src) in a.chunks_exact_mut(self.pairs).zip(x.chunks_exact(self.k)) {
                    // Whole 32-float runs with the vector conversion, the
                    // rest (and odd `k`'s half pair) here.
                    let done = convert_row(src, dst);
                    for (d, s) in dst[done / 2..].iter_mut().zip(src[done..].chunks(2)) {
                        let lo = u32::from(to_bf16(s[0]));
                        let hi = s.get(1).map_or(0, |&v| u32::from(to_bf16(v)));
                        *d = lo | (hi << 16);
                    }
                }
                #[cfg(target_arch = "x86_64")]
                #[allow(unsafe_code)]
                // SAFETY: `supported()` was checked above; the slices have
                // the sizes the kernel reads and writes (block × pairs,
                // panels × pairs × LANES, block × n).
                unsafe {
                    kernel(a, block, self, out)
                };
            });
        out
    }
}

/// Converts the leading multiple of 32 of `src` into bf16 pairs in `dst`
/// (`vcvtne2ps2bf16`: round to nearest even, as [`to_bf16`], except that
/// denormal inputs become zero); returns how many floats it converted.
fn convert_row(src: &[f32], dst: &mut [u32]) -> usize {
    let whole = (src.len() / 32) * 32;
    debug_assert!(dst.len() * 2 >= whole);
    #[cfg(target_arch = "x86_64")]
    {
        if whole > 0 && dst.len() * 2 >= whole {
            #[allow(unsafe_code)]
            // SAFETY: only reached from `matmul`, after `supported()`; it
            // reads `whole <= src.len()` floats and writes `whole / 2 <=
            // dst.len()` words.
            unsafe {
                convert(src.as_ptr(), dst.as_mut_ptr(), whole)
            };
            return whole;
        }
    }
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(unsafe_code)]
unsafe fn convert(src: *const f32, dst: *mut u32, len: usize) {
    use std::arch::x86_64::*;
    let mut i = 0;
    while i < len {
        let lo = _mm512_loadu_ps(src.add(i));
        let hi = _mm512_loadu_ps(src.add(i + 16));
        // The low half of the result comes from the second operand.
        let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(dst.add(i / 2) as *mut __m512i, v);
        i += 32;
    }
}

/// The micro-kernel over every panel pair and every [`ROWS`] rows of the
/// block; panels past `n` (padding) are computed into a scratch tile and
/// dropped.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(unsafe_code)]
unsafe fn kernel(a: &[u32], rows: usize, w: &PackedBf16, out: &mut [f32]) {
    use std::arch::x86_64::*;
    let (kp, n) = (w.pairs, w.n);
    debug_assert!(a.len() >= rows * kp && out.len() >= rows * n);
    let mut panel = 0;
    while panel < w.panels {
        let w0 = w.data.as_ptr().add(panel * kp * LANES);
        let w1 = w.data.as_ptr().add((panel + 1) * kp * LANES);
        let col = panel * LANES;
        let mut i = 0;
        while i < rows {
            let r_here = (rows - i).min(ROWS);
            let mut acc0 = [_mm512_setzero_ps(); ROWS];
            let mut acc1 = [_mm512_setzero_ps(); ROWS];
            let ap = a.as_ptr().add(i * kp);
            // One pass over the pairs for `rows_here` rows; called with the
            // constant ROWS for whole groups, so that loop is unrolled and
            // the accumulators stay in registers.
            let mut pass = |rows_here: usize| {
                for p in 0..kp {
                    let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(
                        w0.add(p * LANES) as *const __m512i
                    ));
                    let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(
                        w1.add(p * LANES) as *const __m512i
                    ));
                    for r in 0..rows_here {
                        let av: __m512bh =
                            std::mem::transmute(_mm512_set1_epi32(*ap.add(r * kp + p) as i32));
                        acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
                        acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
                    }
                }
            };
            if r_here == ROWS {
                pass(ROWS);
            } else {
                pass(r_here);
            }
            for r in 0..r_here {
                let row = out.as_mut_ptr().add((i + r) * n);
                for (half, acc) in [(0, acc0[r]), (LANES, acc1[r])] {
                    let c = col + half;
                    if c + LANES <= n {
                        _mm512_storeu_ps(row.add(c), acc);
                    } else if c < n {
                        let mut tile = [0f32; LANES];
                        _mm512_storeu_ps(tile.as_mut_ptr(), acc);
                        std::ptr::copy_nonoverlapping(tile.as_ptr(), row.add(c), n - c);
                    }
                }
            }
            i += ROWS;
        }
        panel += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's CPU, as a facility: under CI a CPU without AVX-512 BF16
    /// fails these tests instead of skipping them.
    fn cpu_has_bf16(test: &str) -> bool {
        strata_testkit::facility(
            test,
            (!supported()).then(|| "this CPU has no AVX-512 BF16".to_owned()),
        )
    }

    fn naive(x: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f32> {
        let rows = x.len() / k;
        let mut out = vec![0f32; rows * n];
        for i in 0..rows {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|t| from_bf16(to_bf16(x[i * k + t])) * from_bf16(to_bf16(w[t * n + j])))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to even.
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        // 1 + 3·2^-8 is halfway too; the even neighbour is above.
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert_eq!(to_bf16(-2.5), 0xC020);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn the_vector_conversion_rounds_as_the_scalar_one() {
        if !cpu_has_bf16("the_vector_conversion_rounds_as_the_scalar_one") {
            return;
        }
        // Ties both ways, negatives, large and small normal values, 70
        // floats: two vector runs and a scalar tail of 6.
        let src: Vec<f32> = (0..70)
            .map(|i| match i % 5 {
                0 => 1.0 + (i as f32) / 256.0,
                1 => -(i as f32) * 1.234_567,
                2 => 3.0e30 / (i as f32 + 1.0),
                3 => 1.0e-30 * (i as f32 + 1.0),
                _ => (i as f32).sin(),
            })
            .collect();
        let mut dst = vec![0u32; 35];
        assert_eq!(convert_row(&src, &mut dst), 64);
        for (p, &pair) in dst[..32].iter().enumerate() {
            assert_eq!(pair as u16, to_bf16(src[2 * p]), "element {}", 2 * p);
            assert_eq!(
                (pair >> 16) as u16,
                to_bf16(src[2 * p + 1]),
                "element {}",
                2 * p + 1
            );
        }
    }

    #[test]
    fn products_equal_the_rounded_inputs_product() {
        if !cpu_has_bf16("products_equal_the_rounded_inputs_product") {
            return;
        }
        // Odd and ragged shapes: a half pair, a partial panel, partial row
        // groups and more than one task.
        for &(rows, k, n) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 384, 40),
            (200, 33, 96),
            (5, 64, 3),
        ] {
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
                .collect();
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729 % 997) as f32 / 498.5) - 1.0)
                .collect();
            let got = PackedBf16::pack(&w, k, n).matmul(&x);
            let want = naive(&x, &w, k, n);
            assert_eq!(got.len(), want.len());
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-4 * (1.0 + e.abs()) * k as f32,
                    "{rows}×{k}×{n}: {g} against {e}"
                );
            }
        }
    }
}
