//! Distance kernels.
//!
//! The hot loop of every search is a 384-ish-dimensional inner product, so
//! these pick the widest SIMD the CPU has at run time (AVX-512F, else
//! AVX2+FMA, else portable code the compiler vectorises for the baseline
//! target). This is the only module of the crate that uses `unsafe`: calling
//! a `#[target_feature]` function after checking that the CPU has it, and a
//! cache prefetch hint.
#![allow(unsafe_code)]

use std::sync::OnceLock;

type Kernel = fn(&[f32], &[f32]) -> f32;
type KernelI8 = fn(&[i8], &[i8]) -> i32;

struct Kernels {
    dot: Kernel,
    l2: Kernel,
    dot_i8: KernelI8,
    name: &'static str,
}

fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                return Kernels {
                    dot: x86::dot_avx512_safe,
                    l2: x86::l2_avx512_safe,
                    dot_i8: x86::dot_i8_avx512_safe,
                    name: "avx512f+bw",
                };
            }
            if avx2 {
                return Kernels {
                    dot: x86::dot_avx2_safe,
                    l2: x86::l2_avx2_safe,
                    dot_i8: x86::dot_i8_avx2_safe,
                    name: "avx2+fma",
                };
            }
        }
        Kernels {
            dot: dot_portable,
            l2: l2_portable,
            dot_i8: dot_i8_portable,
            name: "portable",
        }
    })
}

/// Which kernel set this CPU uses.
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// Inner product. Panics in debug builds if the lengths differ.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().dot)(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().l2)(a, b)
}

/// Inner product of two i8 vectors, exact in i32 (dimension ≤ 65,536).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().dot_i8)(a, b)
}

/// Portable i8 inner product.
pub fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += *x as i32 * *y as i32;
    }
    s
}

/// Hints the CPU to start loading the cache lines of `v` (a no-op elsewhere).
#[inline(always)]
pub fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr() as *const i8;
        let bytes = std::mem::size_of_val(v);
        // SAFETY: prefetch is a hint; it never faults, even on invalid
        // addresses, and these are inside `v` anyway.
        unsafe {
            _mm_prefetch(p, _MM_HINT_T0);
            if bytes > 64 {
                _mm_prefetch(p.add(64), _MM_HINT_T0);
            }
            if bytes > 128 {
                _mm_prefetch(p.add(128), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Portable inner product in 8 independent lanes (vectorises on SSE2).
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// Portable squared Euclidean distance.
pub fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        s += d * d;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub fn dot_avx512_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only installed after `is_x86_feature_detected!("avx512f")`.
        unsafe { dot_avx512(a, b) }
    }
    pub fn l2_avx512_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { l2_avx512(a, b) }
    }
    pub fn dot_avx2_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only installed after checking avx2 and fma.
        unsafe { dot_avx2(a, b) }
    }
    pub fn l2_avx2_safe(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        unsafe { l2_avx2(a, b) }
    }

    pub fn dot_i8_avx512_safe(a: &[i8], b: &[i8]) -> i32 {
        // SAFETY: only installed after checking avx512f and avx512bw.
        unsafe { dot_i8_avx512(a, b) }
    }
    pub fn dot_i8_avx2_safe(a: &[i8], b: &[i8]) -> i32 {
        // SAFETY: only installed after checking avx2.
        unsafe { dot_i8_avx2(a, b) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn dot_i8_avx512(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm512_setzero_si512();
        let mut s1 = _mm512_setzero_si512();
        let mut i = 0;
        // SAFETY (loads): i + 64 <= n, resp. i + 32 <= n.
        while i + 64 <= n {
            let a0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pa.add(i) as *const __m256i));
            let b0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pb.add(i) as *const __m256i));
            let a1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pa.add(i + 32) as *const __m256i));
            let b1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pb.add(i + 32) as *const __m256i));
            s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
            s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(a1, b1));
            i += 64;
        }
        if i + 32 <= n {
            let a0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pa.add(i) as *const __m256i));
            let b0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pb.add(i) as *const __m256i));
            s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(a0, b0));
            i += 32;
        }
        let mut s = _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
        while i < n {
            s += *pa.add(i) as i32 * *pb.add(i) as i32;
            i += 1;
        }
        s
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm256_setzero_si256();
        let mut i = 0;
        // SAFETY (loads): i + 16 <= n.
        while i + 16 <= n {
            let a0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pa.add(i) as *const __m128i));
            let b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i) as *const __m128i));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
            i += 16;
        }
        let mut lanes = [0i32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, s0);
        let mut s: i32 = lanes.iter().sum();
        while i < n {
            s += *pa.add(i) as i32 * *pb.add(i) as i32;
            i += 1;
        }
        s
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut i = 0;
        // SAFETY (all loads): i + 32 <= n, resp. i + 16 <= n, and the
        // masked load reads only the n - i remaining lanes.
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                s1,
            );
            i += 32;
        }
        if i + 16 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)) as u16 - 1;
            s1 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
                s1,
            );
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn l2_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            let d1 = _mm512_sub_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
            );
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
            i += 32;
        }
        if i + 16 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)) as u16 - 1;
            let d = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            );
            s1 = _mm512_fmadd_ps(d, d, s1);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            i += 16;
        }
        let mut s = hsum256(_mm256_add_ps(s0, s1));
        while i < n {
            s += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
            );
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
            i += 16;
        }
        let mut s = hsum256(_mm256_add_ps(s0, s1));
        while i < n {
            let d = *pa.add(i) - *pb.add(i);
            s += d * d;
            i += 1;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vecs(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn kernels_agree_with_portable_code_for_every_length() {
        for n in 0..100 {
            let (a, b) = (vecs(n, 1), vecs(n, 7));
            let (d, p) = (dot(&a, &b), dot_portable(&a, &b));
            assert!(
                (d - p).abs() <= 1e-3 * (1.0 + p.abs()),
                "dot n={n}: {d} vs {p}"
            );
            let (d, p) = (l2_sq(&a, &b), l2_portable(&a, &b));
            assert!(
                (d - p).abs() <= 1e-3 * (1.0 + p.abs()),
                "l2 n={n}: {d} vs {p}"
            );
        }
        for n in [0, 1, 15, 16, 31, 32, 63, 64, 65, 100, 384] {
            let a: Vec<i8> = (0..n)
                .map(|i| (i * 37 + 11) % 255 - 127)
                .map(|x| x as i8)
                .collect();
            let b: Vec<i8> = (0..n)
                .map(|i| (i * 91 + 5) % 255 - 127)
                .map(|x| x as i8)
                .collect();
            let naive: i32 = a.iter().zip(&b).map(|(x, y)| *x as i32 * *y as i32).sum();
            assert_eq!(dot_i8(&a, &b), naive, "n={n}");
            assert_eq!(dot_i8_portable(&a, &b), naive, "n={n}");
        }
        let (a, b) = (vecs(384, 3), vecs(384, 5));
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-2);
        assert!(!kernel_name().is_empty());
    }
}
