//! CPU reference of the f16 casts (`ops::precision`): IEEE round-to-nearest-even.

/// f32 → f16, rounded to nearest, ties to even (|x| ≥ 65520 → ±inf).
pub fn to_f16(x: &[f32]) -> Vec<half::f16> {
    x.iter().map(|&v| half::f16::from_f32(v)).collect()
}

/// f16 → f32 (exact).
pub fn to_f32(x: &[half::f16]) -> Vec<f32> {
    x.iter().map(|v| v.to_f32()).collect()
}
