//! f16 tensors: upload and read-back, and the casts against the CPU reference (IEEE
//! round-to-nearest-even) on lengths that are not multiples of the 2-element word or of the
//! 256-invocation workgroup.

mod common;

use common::{device, rng};
use half::f16;
use mtdiff_engine::{cpu, DType, Tensor};

/// Values that exercise every case of the cast: ordinary, exact, ties, tiny (f16 subnormal),
/// near and past the largest f16, infinities, NaN, signed zero.
fn hard_values() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -2.5,
        0.1,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        65504.0,
        -65504.0,
        65510.0,
        65519.0,
        65520.0,
        -70000.0,
        1e9,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        6.1e-5,
        3.0e-5,
        6.0e-8,
        1e-9,
        -4.2e-6,
    ];
    let mut r = rng(11);
    v.extend(r.vec_range(1001, -3.0, 3.0));
    v.extend(r.vec_range(300, -60000.0, 60000.0));
    v
}

/// The f16 next to `h` away from zero (its ulp at that magnitude).
fn ulp(h: f16) -> f32 {
    let up = f16::from_bits(h.to_bits().wrapping_add(1)).to_f32();
    (up - h.to_f32()).abs()
}

#[test]
fn to_f16_rounds_to_a_nearest_f16_as_the_reference_does() {
    let dev = device();
    for n in [1usize, 2, 7, 513, 1323] {
        let all = hard_values();
        let x: Vec<f32> = all.iter().cycle().take(n).copied().collect();
        let got = Tensor::from_slice(&dev, &x, &[n])
            .unwrap()
            .to_f16()
            .unwrap()
            .to_vec_f16()
            .unwrap();
        let want = cpu::precision::to_f16(&x);
        for (i, ((g, w), v)) in got.iter().zip(&want).zip(&x).enumerate() {
            if v.is_nan() {
                assert!(g.is_nan(), "n {n}, [{i}]: NaN gave {g}");
            } else if v.abs() >= 65504.0 || *v == 0.0 {
                // The range ends and zero are exact: the kernel handles them itself.
                assert_eq!(g.to_bits(), w.to_bits(), "n {n}, [{i}] = {v}");
            } else if v.abs() < 6.1035156e-5 {
                // f16 subnormals: the adapter may flush them to zero.
                assert!(
                    (g.to_f32() - v).abs() <= 6.1035156e-5,
                    "n {n}, [{i}] = {v}: {g}"
                );
            } else {
                // One of the two f16 values around v: RNE where the adapter rounds so.
                assert!(
                    (g.to_f32() - v).abs() <= ulp(*w).max(ulp(*g)),
                    "n {n}, [{i}] = {v}: got {g}, reference {w}"
                );
            }
        }
    }
}

#[test]
fn to_f32_is_exact_and_f16_round_trips() {
    let dev = device();
    let mut r = rng(12);
    for n in [1usize, 3, 514, 1025] {
        // Every kind of f16 bit pattern, NaNs aside (compared apart).
        let bits: Vec<u16> = (0..n).map(|_| (r.below(65536) as u16) & 0xfbff).collect();
        let h: Vec<f16> = bits.iter().map(|&b| f16::from_bits(b)).collect();
        let t = Tensor::from_f16(&dev, &h, &[n]).unwrap();
        assert_eq!(t.dtype(), DType::F16);
        let back = t.to_vec_f16().unwrap();
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            bits,
            "upload and read-back, n {n}"
        );
        let f = t.to_f32().unwrap().to_vec().unwrap();
        let want = cpu::precision::to_f32(&h);
        for (i, (a, b)) in f.iter().zip(&want).enumerate() {
            assert!(
                a.to_bits() == b.to_bits()
                    || (a.is_nan() && b.is_nan())
                    || (*a == 0.0 && *b == 0.0),
                "n {n}, [{i}]: {a} vs {b}"
            );
        }
        // f32 → f16 → f32 is exact for values that are f16 already (normal ones).
        let normal: Vec<f32> = want
            .iter()
            .copied()
            .filter(|v| v.is_finite() && v.abs() >= 6.1035156e-5)
            .collect();
        let round = Tensor::from_slice(&dev, &normal, &[normal.len()])
            .unwrap()
            .to_f16()
            .unwrap()
            .to_f32()
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(round, normal, "n {n}");
    }
}

#[test]
fn f16_misuse_is_refused_with_a_message() {
    let dev = device();
    let h = Tensor::from_f16(&dev, &[f16::ONE; 6], &[2, 3]).unwrap();
    assert!(h.to_vec().unwrap_err().to_string().contains("F16"));
    assert!(h
        .to_f16()
        .unwrap_err()
        .to_string()
        .contains("expected a F32"));
    assert!(h.narrow(0, 1).unwrap_err().to_string().contains("f16"));
    let labels = Tensor::from_u32(&dev, &[1, 2], &[2]).unwrap();
    assert!(labels.to_f16().is_err());
    assert!(Tensor::from_f16(&dev, &[f16::ONE; 5], &[2, 3]).is_err());
}

#[test]
fn the_casts_pass_the_gradient_through_rounded_to_f16() {
    let dev = device();
    let mut r = rng(13);
    let n = 517;
    let xv = r.vec_range(n, -2.0, 2.0);
    let wv = r.vec_range(n, -3.0, 3.0);
    let x = Tensor::from_slice(&dev, &xv, &[n]).unwrap().with_grad();
    let w = Tensor::from_slice(&dev, &wv, &[n]).unwrap();
    // loss = Σ w · f32(f16(x)): the straight-through gradient is w rounded to f16 (the gradient
    // of to_f32, an f16 tensor), cast back to f32 (the gradient of to_f16).
    let loss = x
        .to_f16()
        .unwrap()
        .to_f32()
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = loss.backward().unwrap();
    let gx = g.get(&x).unwrap();
    assert_eq!(gx.dtype(), DType::F32);
    let want = cpu::precision::to_f32(&cpu::precision::to_f16(&wv));
    let got = gx.to_vec().unwrap();
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!((a - b).abs() <= 1e-3 * b.abs(), "[{i}]: {a} vs {b}");
    }
    // The loss itself sees x rounded to f16.
    let xr = cpu::precision::to_f32(&cpu::precision::to_f16(&xv));
    let want_loss: f64 = xr
        .iter()
        .zip(&wv)
        .map(|(a, b)| (*a as f64) * (*b as f64))
        .sum();
    let l = loss.to_scalar().unwrap() as f64;
    assert!(
        (l - want_loss).abs() <= 1e-3 * want_loss.abs().max(1.0),
        "{l} vs {want_loss}"
    );
}
